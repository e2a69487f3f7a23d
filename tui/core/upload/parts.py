"""Sending the parts: one S3 object per byte range, in parallel, verified, resumable.

- parallel: `workers` threads each PUT one part at a time; a part is never held whole: its MD5
  is taken in a first pass of `os.pread` chunks, then its body streams from the file
  (`RangeBody`), so memory stays flat at any concurrency, part size and image size, and
  only a small window of futures is queued;
- integrity: every PUT carries Content-MD5 (S3 refuses a body that does not match) and the
  ETag S3 returns is compared with our MD5 where it is one (not under SSE-KMS or SSE-C);
- retries: one budget per part, PART_POLICY, and no other: the client makes one try
  (`tui.core.aws.part_budget`, whose socket timeout aborts a stalled try), and 5xx,
  throttling, connection errors and integrity failures are retried here until PART_ATTEMPTS
  or PART_DEADLINE_S, so a frozen network fails a part within about two minutes;
- resume: one ListObjectsV2 of the run's folder (`list_folder`) gives every object's size and
  ETag; a part the journal confirmed (with its MD5) whose listing matches is not even read, any
  other part present is read and hashed, and sent only when it differs (under SSE-KMS or SSE-C
  the ETag is no MD5: then our `md5` metadata, by HEAD, decides); a new run's folder is empty,
  so it neither lists nor HEADs;
- verification: `check(index)` (the part's presigned URLs, tried as EC2 will) runs on a pool
  of its own as soon as a part is stored, beside the uploads still running;
- slow links: after a part's last byte is written, what the kernel still holds for it (up to
  its largest send buffer) drains at the connection's share of the link before S3 can answer,
  and the socket timeout runs meanwhile. `LinkPace` measures that share from the parts sent
  and gives each try a client whose read timeout allows the drain (`part_client`), so a
  20 Mbit/s link shared by 16 parts is slow, not dead; a fast link keeps the short timeout
  that finds a frozen network quickly;
- cancel: no new part starts, the ones in flight finish, `Cancelled` is raised.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from tui.core.errors import AwsError, ImageChanged, Interrupted, WizardError
from tui.core.retry import Retry, RetryPolicy, http_status, is_transient

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PROGRESS_INTERVAL_S = 0.25  # at most a few progress events a second
# Sized so that even the fault suite's S3 failing half of all part PUTs loses a part about
# once in 4,000, while a network frozen for good fails the part within PART_DEADLINE_S plus
# one try's socket timeout.
PART_ATTEMPTS = 12
PART_DEADLINE_S = 60.0
# S3's answers when the body it received is not the one we sent.
INTEGRITY_CODES = frozenset({"BadDigest", "IncompleteBody"})
_MD5_HEX = re.compile(r"[0-9a-f]{32}")
# Under these, S3's ETag is not the MD5 of the body.
_OPAQUE_ETAG_SSE = ("aws:kms", "aws:kms:dsse")


def _largest_send_buffer() -> int:
    """The most a TCP socket may hold unsent or unacknowledged (Linux's tcp_wmem maximum)."""
    try:
        return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 << 20  # Linux's default maximum


SEND_BUFFER = _largest_send_buffer()
# Before a part has been measured, a connection is assumed to carry at least this much (16
# parts in flight on an 8 Mbit/s link); measured parts then set the pace.
INITIAL_RATE = 64 * 1024  # bytes/s
DRAIN_SAFETY = 3.0  # a measured pace varies: allow three times the drain it predicts
# Allowances are rounded up to one of these (seconds), so a run uses a few clients, not one
# per part; the longest bounds a try on the slowest link we wait for. A drain the socket's
# own timeout covers with room (DRAIN_SLACK) needs none.
DRAIN_TIERS = (0.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0)
DRAIN_SLACK = 6.0
PACE_SAMPLES = 4  # the slowest of the last few parts decides


class LinkPace:
    """The bytes per second one connection carries, from the last parts sent (first byte to
    S3's answer). Until a part has been answered, a try whose whole body went out but whose
    answer had not come after t seconds says the link is slower than that; once one has, such
    a try is a network that froze, which must fail in the time it always did, not wait longer.
    """

    def __init__(self) -> None:
        self._rates: deque[float] = deque(maxlen=PACE_SAMPLES)
        self._answered = False
        self._lock = threading.Lock()

    def record(self, nbytes: int, seconds: float, *, answered: bool = True) -> None:
        if nbytes <= 0 or seconds <= 0:
            return
        with self._lock:
            if answered or not self._answered:
                self._rates.append(nbytes / seconds)
            self._answered = self._answered or answered

    def drain_allowance(self, length: int) -> float:
        """Seconds a part of `length` bytes may take, after its last write, to be answered."""
        with self._lock:
            measured = min(self._rates) if self._rates else None
        buffered = min(length, SEND_BUFFER)
        need = buffered / INITIAL_RATE if measured is None else DRAIN_SAFETY * buffered / measured
        return next((t for t in DRAIN_TIERS if t >= need - DRAIN_SLACK), DRAIN_TIERS[-1])


class Cancelled(Interrupted):
    """The upload stopped because its cancel event was set; what was sent is kept."""


class IntegrityError(Exception):
    """S3 stored something other than what we sent (retried, then reported)."""


def is_integrity_error(exc: BaseException) -> bool:
    """S3 did not store the bytes we sent: a wrong ETag, or S3's own BadDigest/IncompleteBody."""
    from tui.core.aws import error_code

    return isinstance(exc, IntegrityError) or error_code(exc) in INTEGRITY_CODES


def _timed_out(exc: BaseException) -> bool:
    from botocore.exceptions import ReadTimeoutError

    return isinstance(exc, ReadTimeoutError)


def is_part_retryable(exc: BaseException) -> bool:
    """A blip of S3 or the network, or S3 storing other bytes than we sent: PUT it again."""
    return is_integrity_error(exc) or is_transient(exc)


PART_POLICY = RetryPolicy(
    retryable=is_part_retryable,
    attempts=PART_ATTEMPTS,
    base_delay=0.2,
    max_delay=5.0,
    deadline=PART_DEADLINE_S,
)


@dataclass(frozen=True)
class UploadProgress:
    parts_done: int
    parts_total: int
    bytes_done: int  # bytes known to be in S3 (sent or found present)
    bytes_total: int
    bytes_per_s: float  # sent this run / time sending
    eta_s: float | None  # None until there is a rate to go by


class _Skipped(Exception):
    """A part that did not start (or was not retried) because the upload is stopping."""


@dataclass(frozen=True)
class Listed:
    """An object as ListObjectsV2 (or HEAD) tells it."""

    size: int
    etag: str  # without its quotes


def list_folder(
    s3: S3Client,
    bucket: str,
    folder: str,
    cancel: threading.Event,
    policy: RetryPolicy = PART_POLICY,
) -> dict[str, Listed]:
    """Every object under `folder`/ by key: one ListObjectsV2 pass, page by page (1,000 keys a
    page), each page retried by `policy` (the client makes one try, as for the parts)."""
    found: dict[str, Listed] = {}
    token: str | None = None
    while True:
        params: dict[str, str] = {"Bucket": bucket, "Prefix": f"{folder}/"}
        if token:
            params["ContinuationToken"] = token
        try:
            page = policy.call(lambda p=params: s3.list_objects_v2(**p), cancel=cancel)  # type: ignore[misc]
        except Interrupted:
            raise Cancelled("upload cancelled while listing what S3 holds") from None
        except Exception as exc:
            from tui.core.aws import map_error

            raise map_error(exc) from None
        for item in page.get("Contents", []):
            found[item["Key"]] = Listed(int(item["Size"]), str(item.get("ETag", "")).strip('"'))
        token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
        if not token:
            return found


class RangeBody(io.RawIOBase):
    """A byte range of the image as a seekable, read-only file: botocore streams it (and seeks
    back to hash or resend it) without the part ever being in memory whole. Reads go through
    `os.pread`, so the workers share one descriptor without sharing an offset."""

    CHUNK = 256 * 1024  # our MD5 pass: a few pages per worker, whatever the part size

    def __init__(self, fd: int, start: int, length: int, path: Path):
        super().__init__()
        self._fd, self._start, self._length, self._path = fd, start, length, path
        self._pos = 0

    def __len__(self) -> int:
        return self._length

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._length}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        left = self._length - self._pos
        n = left if size is None or size < 0 else min(size, left)
        if n <= 0:
            return b""
        data = os.pread(self._fd, n, self._start + self._pos)
        if len(data) != n:
            raise ImageChanged(str(self._path), "shrank")
        self._pos += n
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def chunks(self) -> Iterator[bytes]:
        while chunk := self.read(self.CHUNK):
            yield chunk


class PartSender:
    """The per-part work, run on pool threads; what it shares is read-only or locked."""

    def __init__(
        self,
        s3: S3Client,
        bucket: str,
        path: Path,
        fd: int,
        ranges: list[tuple[int, int]],
        keys: list[str],
        *,
        cancel: threading.Event,
        policy: RetryPolicy = PART_POLICY,
        offset: int = 0,
        part_client: Callable[[float], S3Client] | None = None,
    ):
        self.s3 = s3
        # The client for a part PUT whose answer may take this many seconds more to drain.
        self.part_client = part_client or (lambda _drain: s3)
        self.pace = LinkPace()
        self.offset = offset  # where the image starts in the file (an OVA's disk member)
        self.bucket = bucket
        self.path = path
        self.fd = fd
        self.ranges = ranges
        self.keys = keys
        self.cancel = cancel
        self.policy = policy
        self.stop = threading.Event()  # set on the first failure or on cancel
        self.retries = 0  # botocore's, read from its answers, and ours
        self._lock = threading.Lock()

    def _stopping(self) -> bool:
        return self.stop.is_set() or self.cancel.is_set()

    def _count(self, retries: int) -> None:
        if retries:
            with self._lock:
                self.retries += retries

    def _on_retry(self, _: Retry) -> None:
        self._count(1)

    def _count_sdk_retries(self, metadata: Mapping[str, object]) -> None:
        attempts = metadata.get("RetryAttempts")
        self._count(attempts if isinstance(attempts, int) else 0)

    def digest(self, index: int) -> str:
        """The MD5 (hex) of part `index`, read in chunks from the file."""
        start, end = self.ranges[index]
        md5 = hashlib.md5(usedforsecurity=False)
        for chunk in RangeBody(self.fd, self.offset + start, end - start + 1, self.path).chunks():
            md5.update(chunk)
        return md5.hexdigest()

    def send(self, index: int, listed: Listed | None, known: str | None) -> tuple[str, bool]:
        """Make sure part `index` is in S3: (its MD5, True when it was sent, False when found
        there). `listed`: what the listing says is at its key; `known`: the MD5 the journal
        holds for it (the part was confirmed by an earlier run of this image)."""
        if self._stopping():
            raise _Skipped
        key = self.keys[index]
        start, end = self.ranges[index]
        # Confirmed before, and its ETag is not our MD5 (SSE-KMS or SSE-C): our metadata tells,
        # without reading the part.
        if (
            listed is not None
            and known is not None
            and listed.size == end - start + 1
            and self._call(index, lambda: self._present(key, listed.size, known))
        ):
            return known, False
        length = end - start + 1
        digest = self.digest(index)
        if listed is not None and listed.size == length:
            if listed.etag == digest:
                return digest, False
            if known is None and self._call(index, lambda: self._present(key, length, digest)):
                return digest, False

        def attempt() -> bool:
            # A fresh stream per try: a failed try may have read part of the last one.
            body = RangeBody(self.fd, self.offset + start, length, self.path)
            s3 = self.part_client(self.pace.drain_allowance(length))
            began = time.monotonic()
            try:
                self._put(key, body, digest, "application/octet-stream", s3)
            except Exception as exc:
                if body.tell() >= length and _timed_out(exc):  # sent whole, not answered
                    self.pace.record(length, time.monotonic() - began, answered=False)
                raise
            self.pace.record(length, time.monotonic() - began)
            return True

        return digest, self._call(index, attempt)

    def _call(self, index: int, attempt: Callable[[], bool]) -> bool:
        """`attempt()` within the part's one budget, its failures as the user reads them."""
        tries = [1]

        def once() -> bool:
            if self._stopping():  # another part failed, or cancel, while this one waited
                raise _Skipped
            return attempt()

        def on_retry(retry: Retry) -> None:
            tries[0] += 1
            self._on_retry(retry)

        started = time.monotonic()
        try:
            return self.policy.call(once, cancel=self.cancel, on_retry=on_retry)
        except _Skipped:
            raise
        except Interrupted:
            raise _Skipped from None
        except IntegrityError as exc:
            raise AwsError(f"part {index}: {exc}", code="IntegrityError") from None
        except ImageChanged:
            raise  # the body, read as it is sent, came up short: not S3's doing
        except Exception as exc:
            if self._stopping():
                raise _Skipped from None
            from tui.core.aws import map_error

            error = map_error(exc)
            raise AwsError(
                f"part {index} was not stored after {tries[0]} tries in "
                f"{time.monotonic() - started:.0f} s: {error.message}",
                code=error.code if isinstance(error, AwsError) else None,
            ) from None

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """PUT one object (the manifest) with the same integrity checks and retries."""
        digest = hashlib.md5(data, usedforsecurity=False).hexdigest()
        try:
            self.policy.call(
                lambda: self._put(key, data, digest, content_type),
                cancel=self.cancel,
                on_retry=self._on_retry,
            )
        except Interrupted:
            raise Cancelled(f"upload cancelled while writing {key}") from None
        except IntegrityError as exc:
            raise AwsError(f"{key}: {exc}", code="IntegrityError") from None

    def _present(self, key: str, length: int, digest: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if http_status(exc) == 404 or exc.response.get("Error", {}).get("Code") in (
                "404",
                "NoSuchKey",
            ):
                return False
            raise
        self._count_sdk_retries(head.get("ResponseMetadata", {}))
        if head.get("ContentLength") != length:
            return False
        etag = str(head.get("ETag", "")).strip('"')
        return etag == digest or head.get("Metadata", {}).get("md5") == digest

    def _put(
        self,
        key: str,
        data: bytes | RangeBody,
        md5_hex: str,
        content_type: str,
        s3: S3Client | None = None,
    ) -> None:
        response = (s3 or self.s3).put_object(
            Bucket=self.bucket,
            Key=key,
            Body=cast("IO[bytes]", data),  # RangeBody is a file; the stubs want IO
            ContentMD5=base64.b64encode(bytes.fromhex(md5_hex)).decode("ascii"),
            ContentType=content_type,
            # Kept so resume can check the part even when the ETag is not an MD5 (SSE-KMS).
            Metadata={"md5": md5_hex},
        )
        self._count_sdk_retries(response.get("ResponseMetadata", {}))
        etag = str(response.get("ETag", "")).strip('"')
        opaque = (
            response.get("ServerSideEncryption") in _OPAQUE_ETAG_SSE
            or "SSECustomerAlgorithm" in response
        )
        if not opaque and _MD5_HEX.fullmatch(etag) and etag != md5_hex:
            raise IntegrityError(f"S3 reports MD5 {etag} for {key}, we sent {md5_hex}")


def run_parts(
    sender: PartSender,
    *,
    workers: int,
    trusted: Mapping[int, str],
    listed: Mapping[int, Listed],
    known: Mapping[int, str],
    on_progress: Callable[[UploadProgress], None] | None,
    on_part_done: Callable[[int, str], None] | None,
    check: Callable[[int], None] | None,
) -> int:
    """Make every part be in S3 through a pool of `workers` threads, a bounded window of
    futures at a time, and run `check(index)` on a second pool as each part is (trusted ones
    included); the number sent. `trusted` parts (index: MD5) are neither read nor sent;
    `listed` and `known` are `PartSender.send`'s. Callbacks run on the calling thread:
    `on_part_done(index, md5)` for each part confirmed here (not the trusted ones)."""
    ranges, cancel = sender.ranges, sender.cancel
    total = len(ranges)
    size = ranges[-1][1] + 1 if ranges else 0
    done_parts = len(trusted)
    done_bytes = sum(ranges[i][1] - ranges[i][0] + 1 for i in trusted)
    sent_parts = sent_bytes = checked = 0
    send_started: float | None = None
    last_emit = 0.0

    def emit(force: bool = False) -> None:
        nonlocal last_emit
        if on_progress is None:
            return
        now = time.monotonic()
        if not force and now - last_emit < PROGRESS_INTERVAL_S:
            return
        last_emit = now
        elapsed = now - send_started if send_started is not None else 0.0
        rate = sent_bytes / elapsed if elapsed > 0 and sent_bytes else 0.0
        eta = (size - done_bytes) / rate if rate > 0 else None
        on_progress(UploadProgress(done_parts, total, done_bytes, size, rate, eta))

    emit(force=True)
    queue: Iterator[int] = (i for i in range(total) if i not in trusted)
    # Parts stored and not yet checked: the trusted ones first (they are ready now).
    to_check: deque[int] = deque(sorted(trusted) if check is not None else ())
    sending: dict[Future[tuple[str, bool]], int] = {}
    checking: dict[Future[None], int] = {}
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="upload")
    checks = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify")
    failure: BaseException | None = None

    def fail(exc: BaseException) -> None:
        nonlocal failure
        if failure is None:
            failure = exc
            sender.stop.set()

    try:
        while True:
            # Small windows, so a 1.6M-part image never holds 1.6M futures.
            while failure is None and not cancel.is_set() and len(sending) < 2 * workers:
                index = next(queue, None)
                if index is None:
                    break
                if send_started is None:
                    send_started = time.monotonic()
                sending[pool.submit(sender.send, index, listed.get(index), known.get(index))] = (
                    index
                )
            while failure is None and not cancel.is_set() and to_check:
                if len(checking) >= 2 * workers:
                    break
                assert check is not None
                index = to_check.popleft()
                checking[checks.submit(check, index)] = index
            if not sending and not checking:
                break
            running: list[Future[Any]] = [*sending, *checking]
            finished, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in finished:
                if fut in checking:
                    checking.pop(fut)
                    try:
                        fut.result()
                        checked += 1
                    except BaseException as exc:
                        fail(exc)
                    continue
                index = sending.pop(fut)
                try:
                    digest, was_sent = fut.result()
                except _Skipped:
                    continue
                except BaseException as exc:
                    fail(exc)
                    continue
                start, end = ranges[index]
                done_parts += 1
                done_bytes += end - start + 1
                if was_sent:
                    sent_parts += 1
                    sent_bytes += end - start + 1
                if on_part_done is not None:
                    on_part_done(index, digest)
                if check is not None:
                    to_check.append(index)
                emit(force=done_parts == total)
            if cancel.is_set():
                sender.stop.set()
    except BaseException:
        # KeyboardInterrupt or a callback raised: stop starting parts, let in-flight ones end.
        sender.stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        checks.shutdown(wait=True, cancel_futures=True)
    if failure is not None:
        if isinstance(failure, WizardError):
            raise failure
        from tui.core.aws import map_error

        raise map_error(failure) from None
    if done_parts < total:
        raise Cancelled(
            f"upload cancelled: {done_parts} of {total} parts are in S3; resuming sends only "
            "the rest"
        )
    if check is not None and checked < total:
        raise Cancelled("upload cancelled while checking the presigned URLs")
    return sent_parts
