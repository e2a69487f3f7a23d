"""Upload a disk image to S3 as part objects plus a VM Import Manifest; presign; delete.

The wire layout is import-protocol.md sections 2-3: every byte range is its own S3 object
(`<prefix>/<run id>/<basename>.part<N>`), the manifest lists presigned HEAD/GET/DELETE URLs
of each part, and EC2 gets a presigned GET URL of the manifest.

`upload_image` is the one uploader (the pipeline and the TUI call it):

- parallel: `workers` threads each PUT one part at a time; parts are read with `os.pread`
  when a worker starts them, so at most `workers` x `part_size` bytes are held, whatever the
  image size (the file is never read whole, and only a small window of futures is queued);
- integrity: every PUT carries Content-MD5 (S3 refuses a body that does not match) and the
  ETag S3 returns is compared with our MD5 where it is one (SSE-KMS ETags are not);
- retries: 5xx, throttling, bad digests and connection errors are retried with exponential
  backoff and full jitter, on top of botocore's own retries;
- resume: a part already in S3 with the right size and MD5 (ETag or our `md5` metadata) is
  not sent again, found by HEAD; `skip_parts` (from the run journal) are trusted outright;
- cancel: set the `cancel` event; no new part starts, the ones in flight finish, and
  `Cancelled` is raised (everything sent so far is kept for resume);
- presigned URLs are SigV4 (required: the client must sign s3v4, as `tui.core.aws.client`
  does) and live 1..7 days; after the manifest is written every presigned part HEAD URL and
  the manifest GET URL are tried once, so a URL EC2 could not use fails here, not an hour
  into a conversion.

`delete_upload(s3, bucket, manifest_key)` removes everything of one upload (parts and
manifest), also when the manifest was never written (a cancelled upload).
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import re
import stat
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from tui.core import s3keys
from tui.core.errors import AwsError, InputError, Interrupted, RefusedError
from tui.core.facts import DEFAULT_PART_SIZE, MAX_IMAGE_BYTES, MIB
from tui.core.facts import MAX_URL_EXPIRY_DAYS as MAX_EXPIRY_DAYS
from tui.core.manifest import (
    FILE_FORMATS,
    Manifest,
    ManifestError,
    ManifestPart,
    parse_manifest,
    plan_parts,
)

MIN_PART_SIZE = 64 * 1024
MAX_PART_SIZE = 5 * 1024 * MIB  # S3's limit for one PUT
DEFAULT_WORKERS = 4
MAX_WORKERS = 64
DEFAULT_ATTEMPTS = 6
BACKOFF_BASE_S = 0.2
BACKOFF_CAP_S = 10.0
PROGRESS_INTERVAL_S = 0.25  # at most a few progress events a second

# Error codes worth another try (besides any HTTP 5xx).
RETRYABLE_CODES = frozenset(
    {
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "BadDigest",
        "IncompleteBody",
    }
)
_MD5_HEX = re.compile(r"[0-9a-f]{32}")


class Cancelled(Interrupted):
    """The upload stopped because its cancel event was set; what was sent is kept."""


class IntegrityError(Exception):
    """S3 stored something other than what we sent (retried, then reported)."""


@dataclass(frozen=True)
class UploadProgress:
    parts_done: int
    parts_total: int
    bytes_done: int  # bytes known to be in S3 (sent or found present)
    bytes_total: int
    bytes_per_s: float  # sent this run / time sending
    eta_s: float | None  # None until there is a rate to go by


@dataclass(frozen=True)
class UploadResult:
    bucket: str
    manifest_key: str
    manifest_url: str  # presigned GET of the manifest: DiskImage.N.Image.ImportManifestUrl
    manifest: Manifest
    parts: int
    bytes: int  # = Image.Bytes
    parts_sent: int
    parts_skipped: int
    retries: int
    expires_at: datetime
    seconds: float

    @property
    def s3_url(self) -> str:
        return f"s3://{self.bucket}/{self.manifest_key}"


@dataclass
class DeleteReport:
    bucket: str
    manifest_key: str
    deleted: list[str] = field(default_factory=list)
    manifest_found: bool = True


# ---------------------------------------------------------------------------------------------
# Upload


def upload_image(
    s3: Any,
    image_path: str | os.PathLike[str],
    bucket: str,
    key_prefix: str,
    run_id: str,
    *,
    file_format: str,
    volume_size: int,
    part_size: int = DEFAULT_PART_SIZE,
    workers: int = DEFAULT_WORKERS,
    expiry_days: int = MAX_EXPIRY_DAYS,
    on_progress: Callable[[UploadProgress], None] | None = None,
    on_part_done: Callable[[int], None] | None = None,
    cancel: threading.Event | None = None,
    skip_parts: set[int] | None = None,
    check_existing: bool = True,
    verify_urls: bool = True,
    max_attempts: int = DEFAULT_ATTEMPTS,
) -> UploadResult:
    """Upload `image_path` as parts and a manifest; return where the manifest is.

    `file_format` (RAW | VHD | VMDK) and `volume_size` (GiB) go into the manifest: take them
    from `tui.core.plan.plan_import`, which probed the image. Callbacks run on the calling
    thread: `on_part_done(index)` once per part confirmed in S3 during this call (sent, or
    found by HEAD; not for `skip_parts`), `on_progress` after parts complete, throttled.

    Raises InputError (bad arguments, unreadable or changing file), AwsError (S3 refused or
    the network failed after retries), Cancelled (the `cancel` event was set).
    """
    _check_args(file_format, volume_size, part_size, workers, expiry_days)
    _require_sigv4(s3, bucket)
    path = Path(image_path)
    size, mtime = _image_size(path)
    if size == 0:
        raise InputError(f"{path}: the image is empty")
    if size >= MAX_IMAGE_BYTES:
        raise InputError(f"{path}: {size} bytes is not under 16 TiB")
    ranges = plan_parts(size, part_size)
    keys = [s3keys.part_key(key_prefix, run_id, str(path), i) for i in range(len(ranges))]
    manifest_key = s3keys.manifest_key(key_prefix, run_id, str(path))
    skip = {i for i in (skip_parts or set()) if 0 <= i < len(ranges)}
    cancel = cancel or threading.Event()
    started = time.monotonic()

    sender = _PartSender(s3, bucket, path, ranges, keys, check_existing, max_attempts, cancel)
    try:
        sender.fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InputError(f"{path}: cannot read the image: {exc.strerror or exc}") from None
    try:
        sent = _run_parts(
            sender, [i for i in range(len(ranges)) if i not in skip], skip, workers,
            ranges, size, on_progress, on_part_done, cancel,
        )  # fmt: skip
    finally:
        os.close(sender.fd)
    if _image_size(path) != (size, mtime):
        raise InputError(f"{path}: the image changed during the upload; upload it again")

    # Every part is in S3: presign, write the manifest, then prove the URLs work.
    expires_in = expiry_days * 86400
    expires_at = datetime.now(UTC) + timedelta(seconds=expires_in)
    presign = _Presigner(s3, bucket, expires_in)
    manifest = Manifest(
        file_format=file_format,
        size=size,
        volume_size=volume_size,
        parts=[
            ManifestPart(
                index=i,
                start=start,
                end=end,
                key=keys[i],
                head_url=presign("head_object", keys[i]),
                get_url=presign("get_object", keys[i]),
                delete_url=presign("delete_object", keys[i]),
            )
            for i, (start, end) in enumerate(ranges)
        ],
        self_destruct_url=presign("delete_object", manifest_key),
    )
    body = manifest.to_xml()
    sender.put(manifest_key, body, content_type="application/xml")
    manifest_url = presign("get_object", manifest_key)
    if verify_urls:
        _verify_urls(manifest, manifest_url, body, workers, cancel)
    return UploadResult(
        bucket=bucket,
        manifest_key=manifest_key,
        manifest_url=manifest_url,
        manifest=manifest,
        parts=len(ranges),
        bytes=size,
        parts_sent=sent,
        parts_skipped=len(ranges) - sent,
        retries=sender.retries,
        expires_at=expires_at,
        seconds=time.monotonic() - started,
    )


def _check_args(
    file_format: str, volume_size: int, part_size: int, workers: int, expiry_days: int
) -> None:
    if file_format not in FILE_FORMATS:
        raise InputError(f"image format {file_format!r} is not one of {', '.join(FILE_FORMATS)}")
    if volume_size < 1:
        raise InputError(f"volume size {volume_size} GiB must be at least 1")
    if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
        raise InputError(f"part size {part_size} must be between {MIN_PART_SIZE} and 5 GiB")
    if not 1 <= workers <= MAX_WORKERS:
        raise InputError(f"workers {workers} must be between 1 and {MAX_WORKERS}")
    if not 1 <= expiry_days <= MAX_EXPIRY_DAYS:
        raise InputError(
            f"URL expiry of {expiry_days} days is out of range: SigV4 presigned URLs live 1 to 7 "
            "days",
            field="source.url_expiry_days",
        )


def _require_sigv4(s3: Any, bucket: str) -> None:
    # Ask for a URL and look: `meta.config.signature_version` says "s3v4" even on a default
    # client that presigns SigV2 in us-east-1 and other legacy regions (import-protocol.md s3).
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "probe"}, ExpiresIn=60
    )
    if "X-Amz-Signature=" not in url:
        raise ValueError(
            "the S3 client presigns SigV2 URLs; the manifest needs SigV4 ones: make the "
            "client with tui.core.aws.client or Config(signature_version='s3v4')"
        )


def _image_size(path: Path) -> tuple[int, int]:
    """(size, mtime_ns); block devices are sized by seeking to their end."""
    try:
        st = os.stat(path)
        if stat.S_ISREG(st.st_mode):
            return st.st_size, st.st_mtime_ns
        if stat.S_ISBLK(st.st_mode):
            fd = os.open(path, os.O_RDONLY)
            try:
                return os.lseek(fd, 0, os.SEEK_END), st.st_mtime_ns
            finally:
                os.close(fd)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the image: {exc.strerror or exc}") from None
    raise InputError(f"{path}: not a regular file or block device")


def _run_parts(
    sender: _PartSender,
    todo: list[int],
    skip: set[int],
    workers: int,
    ranges: list[tuple[int, int]],
    size: int,
    on_progress: Callable[[UploadProgress], None] | None,
    on_part_done: Callable[[int], None] | None,
    cancel: threading.Event,
) -> int:
    """Run the parts through a thread pool, a bounded window of futures at a time."""
    total = len(ranges)
    done_parts = len(skip)
    done_bytes = sum(ranges[i][1] - ranges[i][0] + 1 for i in skip)
    sent_parts = sent_bytes = 0
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
    queue: Iterator[int] = iter(todo)
    pending: dict[Future[bool], int] = {}
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="upload")
    failure: BaseException | None = None
    try:
        while True:
            # Keep a small window queued so a 1.6M-part image never holds 1.6M futures.
            while failure is None and not cancel.is_set() and len(pending) < 2 * workers:
                index = next(queue, None)
                if index is None:
                    break
                if send_started is None:
                    send_started = time.monotonic()
                pending[pool.submit(sender.send, index)] = index
            if not pending:
                break
            finished, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in finished:
                index = pending.pop(fut)
                try:
                    was_sent = fut.result()
                except _Skipped:
                    continue
                except BaseException as exc:
                    if failure is None:
                        failure = exc
                        sender.stop.set()
                    continue
                start, end = ranges[index]
                done_parts += 1
                done_bytes += end - start + 1
                if was_sent:
                    sent_parts += 1
                    sent_bytes += end - start + 1
                if on_part_done is not None:
                    on_part_done(index)
                emit(force=done_parts == total)
            if cancel.is_set():
                sender.stop.set()
    except BaseException:
        # KeyboardInterrupt or a callback raised: stop starting parts, let in-flight ones end.
        sender.stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if failure is not None:
        if isinstance(failure, InputError | AwsError):
            raise failure
        from tui.core.aws import map_error

        raise map_error(failure) from None
    if done_parts < total:
        raise Cancelled(
            f"upload cancelled: {done_parts} of {total} parts are in S3; resuming sends only "
            "the rest"
        )
    return sent_parts


class _Skipped(Exception):
    """A queued part that did not start because the upload is stopping."""


class _PartSender:
    """The per-part work, run on pool threads; everything it shares is read-only or locked."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        path: Path,
        ranges: list[tuple[int, int]],
        keys: list[str],
        check_existing: bool,
        max_attempts: int,
        cancel: threading.Event,
    ):
        self.s3 = s3
        self.bucket = bucket
        self.path = path
        self.ranges = ranges
        self.keys = keys
        self.check_existing = check_existing
        self.max_attempts = max(1, max_attempts)
        self.cancel = cancel
        self.stop = threading.Event()  # set on the first failure or on cancel
        self.fd = -1
        self.retries = 0
        self._lock = threading.Lock()

    def _stopping(self) -> bool:
        return self.stop.is_set() or self.cancel.is_set()

    def read(self, index: int) -> bytes:
        start, end = self.ranges[index]
        length = end - start + 1
        data = os.pread(self.fd, length, start)
        if len(data) != length:
            raise InputError(f"{self.path}: the image shrank during the upload; upload it again")
        return data

    def send(self, index: int) -> bool:
        """Make sure part `index` is in S3; True when it was sent, False when found there."""
        if self._stopping():
            raise _Skipped
        data: bytes | None = None
        digest = ""

        def attempt() -> bool:
            nonlocal data, digest
            if data is None:
                data = self.read(index)
                digest = hashlib.md5(data, usedforsecurity=False).hexdigest()
            if self.check_existing and self._present(self.keys[index], len(data), digest):
                return False
            self.put(self.keys[index], data, md5_hex=digest, retry=False)
            return True

        return self._retrying(attempt, f"part {index}")

    def _present(self, key: str, length: int, digest: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404 or exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                return False
            raise
        if head.get("ContentLength") != length:
            return False
        etag = str(head.get("ETag", "")).strip('"')
        return etag == digest or head.get("Metadata", {}).get("md5") == digest

    def put(
        self,
        key: str,
        data: bytes,
        *,
        md5_hex: str | None = None,
        content_type: str = "application/octet-stream",
        retry: bool = True,
    ) -> None:
        md5_hex = md5_hex or hashlib.md5(data, usedforsecurity=False).hexdigest()

        def attempt() -> None:
            response = self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentMD5=base64.b64encode(bytes.fromhex(md5_hex)).decode("ascii"),
                ContentType=content_type,
                # Kept so resume can check the part even when the ETag is not an MD5 (SSE-KMS).
                Metadata={"md5": md5_hex},
            )
            etag = str(response.get("ETag", "")).strip('"')
            if _MD5_HEX.fullmatch(etag) and etag != md5_hex:
                raise IntegrityError(f"S3 reports MD5 {etag} for {key}, we sent {md5_hex}")

        if retry:
            self._retrying(attempt, key)
        else:
            attempt()

    def _retrying(self, fn: Callable[[], Any], what: str) -> Any:
        for attempt in range(1, self.max_attempts + 1):
            try:
                return fn()
            except Exception as exc:
                if attempt >= self.max_attempts or not is_retryable(exc):
                    if isinstance(exc, IntegrityError):
                        raise AwsError(f"{what}: {exc}", code="IntegrityError") from None
                    raise
                with self._lock:
                    self.retries += 1
                # Full jitter: spread the workers out instead of retrying in lockstep.
                delay = random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt))
                if self.cancel.wait(delay) or self.stop.is_set():
                    raise _Skipped from None
        raise AssertionError("unreachable")


def is_retryable(exc: BaseException) -> bool:
    """5xx, throttling, bad digests, integrity mismatches and connection errors."""
    from botocore import exceptions as bx

    if isinstance(exc, IntegrityError):
        return True
    if isinstance(exc, bx.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        code = exc.response.get("Error", {}).get("Code", "")
        return status >= 500 or code in RETRYABLE_CODES
    return isinstance(exc, bx.ConnectionError | bx.HTTPClientError | ConnectionError)


class _Presigner:
    def __init__(self, s3: Any, bucket: str, expires_in: int):
        self.s3 = s3
        self.bucket = bucket
        self.expires_in = expires_in

    def __call__(self, method: str, key: str) -> str:
        return str(
            self.s3.generate_presigned_url(
                method, Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.expires_in
            )
        )


def _verify_urls(
    manifest: Manifest, manifest_url: str, body: bytes, workers: int, cancel: threading.Event
) -> None:
    """HEAD every part through its presigned URL and GET the manifest, as EC2 will."""

    def head(part: ManifestPart) -> None:
        if cancel.is_set():
            return
        status, length = _http(part.head_url, "HEAD")
        if status != 200 or length != part.size:
            raise AwsError(
                f"part {part.index}: its presigned HEAD URL answered HTTP {status} "
                f"(length {length}, expected {part.size}); EC2 could not read it",
                code="PresignedUrlCheck",
            )

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify") as pool:
        for fut in [pool.submit(head, p) for p in manifest.parts]:
            fut.result()
    status, _ = _http(manifest_url, "GET", expect=body)
    if status != 200:
        raise AwsError(
            f"the manifest's presigned GET URL answered HTTP {status}", code="PresignedUrlCheck"
        )
    if cancel.is_set():
        raise Cancelled("upload cancelled while checking the presigned URLs")


def _http(url: str, method: str, expect: bytes | None = None) -> tuple[int, int | None]:
    """(status, content length) of a presigned URL; a GET must return `expect` exactly."""
    request = urllib.request.Request(url, method=method)
    last: Exception | None = None
    for attempt in range(3):
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                length = response.headers.get("Content-Length")
                if expect is not None and response.read() != expect:
                    return 0, None
                return response.status, int(length) if length is not None else None
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return exc.code, None
            last = exc
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(BACKOFF_BASE_S * 2**attempt)
    raise AwsError(f"cannot reach a presigned URL: {last}", code="NetworkError")


# ---------------------------------------------------------------------------------------------
# Bucket and credentials checks


def check_bucket(s3: Any, bucket: str, region: str, create: bool = False) -> bool:
    """The bucket exists and is in `region` (EC2 fails otherwise: "The given S3 bucket is not
    local to the Region"). With `create`, a missing bucket is made there. True if created."""
    from botocore.exceptions import ClientError

    try:
        response = s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 404 or exc.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket"):
            if not create:
                raise InputError(
                    f"bucket {bucket!r} does not exist: create it in {region} first",
                    field="source.bucket",
                ) from None
            _create_bucket(s3, bucket, region)
            return True
        if status == 403:
            raise AwsError(
                f"no access to bucket {bucket!r} (it may belong to another account)",
                code="AccessDenied",
            ) from None
        if status == 301:
            where = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            _wrong_region(bucket, where.get("x-amz-bucket-region", "another region"), region)
        raise
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    actual = headers.get("x-amz-bucket-region") or _bucket_location(s3, bucket)
    if actual and actual != region:
        _wrong_region(bucket, actual, region)
    return False


def _wrong_region(bucket: str, actual: str, region: str) -> None:
    raise InputError(
        f"bucket {bucket!r} is in {actual}, not in the import region {region}: EC2 would fail "
        "with 'The given S3 bucket is not local to the Region'; use a bucket in "
        f"{region} or import in {actual}",
        field="source.bucket",
    )


def _bucket_location(s3: Any, bucket: str) -> str | None:
    try:
        constraint = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
    except Exception:
        return None
    # Legacy answers: None means us-east-1, "EU" means eu-west-1.
    return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(constraint, constraint)


def _create_bucket(s3: Any, bucket: str, region: str) -> None:
    params: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":  # us-east-1 refuses an explicit LocationConstraint
        params["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**params)


def temporary_credentials_warning(session: Any) -> str | None:
    """A warning when the credentials carry a session token (SSO, STS, instance roles):
    presigned URLs stop working when those credentials expire, possibly mid-conversion."""
    try:
        credentials = session.get_credentials()
        token = credentials.get_frozen_credentials().token if credentials is not None else None
    except Exception:
        return None
    if not token:
        return None
    return (
        "the AWS credentials are temporary (they carry a session token): the presigned URLs in "
        "the manifest stop working when they expire, and the import then fails; use long-term "
        "credentials for imports that run for hours"
    )


# ---------------------------------------------------------------------------------------------
# Finding and deleting an upload


def parse_s3_url(url: str) -> tuple[str, str]:
    """(bucket, key) of an S3 object URL: virtual-hosted (`https://BUCKET.s3.REGION.
    amazonaws.com/KEY`) or path style (`https://s3.amazonaws.com/BUCKET/KEY`, local ones)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    path = unquote(parts.path)
    if parts.scheme == "s3":
        bucket, key = parts.netloc, path.lstrip("/")
    else:
        m = re.match(r"^(?P<bucket>.+?)\.s3(?:[.-][a-z0-9-]+)*\.amazonaws\.com(?:\.cn)?$", host)
        if m:
            bucket, key = m.group("bucket"), path.lstrip("/")
        else:
            bucket, _, key = path.lstrip("/").partition("/")
    if not bucket or not key:
        raise InputError(f"not an S3 object URL: {_short(url)}")
    return bucket, key


def _short(url: str) -> str:
    return url.split("?", 1)[0]


def delete_upload(s3: Any, bucket: str, manifest_key: str) -> DeleteReport:
    """Delete the parts and the manifest of one upload.

    The part keys come from the manifest; when the manifest is missing (an upload cancelled
    before it was written), from a listing of `<folder>/<basename>.part<N>`. Only keys in the
    manifest's own folder are deleted, so a doctored manifest cannot aim this elsewhere.
    """
    from botocore.exceptions import ClientError

    if not manifest_key.endswith("manifest.xml"):
        raise InputError(f"{manifest_key!r} is not a manifest key (…manifest.xml)")
    folder = str(PurePosixPath(manifest_key).parent)
    folder = "" if folder == "." else folder + "/"
    report = DeleteReport(bucket, manifest_key)
    try:
        data = s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
            raise
        data = None
    if data is not None:
        try:
            manifest = parse_manifest(data)
        except ManifestError as exc:
            raise RefusedError(
                f"s3://{bucket}/{manifest_key} is not a valid manifest ({exc}): not deleting "
                "anything"
            ) from None
        keys = [p.key for p in manifest.parts]
        outside = [k for k in keys if not k.startswith(folder) or "/" in k[len(folder) :]]
        if outside:
            raise RefusedError(
                f"the manifest lists {outside[0]!r}, outside its folder {folder!r}: not "
                "deleting anything"
            )
    else:
        report.manifest_found = False
        stem = PurePosixPath(manifest_key).name[: -len("manifest.xml")]
        pattern = re.compile(re.escape(folder + stem) + r"\.part\d+")
        paginator = s3.get_paginator("list_objects_v2")
        keys = [
            obj["Key"]
            for page in paginator.paginate(Bucket=bucket, Prefix=folder + stem + ".part")
            for obj in page.get("Contents", [])
            if pattern.fullmatch(obj["Key"])
        ]
    # The manifest goes last: if this is interrupted the manifest still lists what remains.
    for batch_start in range(0, len(keys), 1000):
        batch = keys[batch_start : batch_start + 1000]
        _delete_batch(s3, bucket, batch)
        report.deleted.extend(batch)
    if data is not None:
        s3.delete_object(Bucket=bucket, Key=manifest_key)
        report.deleted.append(manifest_key)
    return report


def _delete_batch(s3: Any, bucket: str, keys: list[str]) -> None:
    if not keys:
        return
    response = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
    )
    errors = [e for e in response.get("Errors", []) if e.get("Code") != "NoSuchKey"]
    if errors:
        first = errors[0]
        raise AwsError(
            f"could not delete {len(errors)} object(s), e.g. {first.get('Key')}: "
            f"{first.get('Message')}",
            code=first.get("Code"),
        )
