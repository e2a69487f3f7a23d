"""Conversion tasks and their emulation: what EC2 does between ImportInstance and `completed`.

Each task gets a worker thread that does what EC2 does with the request, through the same URLs:
fetch the manifest (absent: keep waiting until ExpirationTime), validate it, HEAD and GET every
part (absent: keep waiting; expired URL: fail), check ranges and sizes, check the reassembled
image's format against `file-format`, then "convert" at the configured rate and create the volume
in moto. Failures end `cancelled` with a `ClientError: ...` message, as in AWS.
"""

from __future__ import annotations

import ipaddress
import secrets
import string
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tui.core.vmdkstream import StreamVmdkChecker
from tui.sandbox import moto_adapter

MiB = 1 << 20
DEFAULT_RATE = 4 * MiB  # bytes/s of BytesConverted when --rate is not given
# Without an explicit --rate each phase lasts at least this long, so a demo image (often well
# under a MiB once stream-optimized) shows Pending, Downloaded and Progress on screen.
DEMO_MIN_PHASE_S = 1.5
TASK_TTL = timedelta(days=7)  # ExpirationTime = creation + 7 days
PROBE_WINDOW = 64 * 1024  # head and tail handed to the disk probe
TICK_S = 0.1  # how often progress is published

_ID_CHARS = string.ascii_lowercase + string.digits


def new_task_id(kind: str) -> str:
    prefix = "import-i-" if kind == "instance" else "import-vol-"
    return prefix + "".join(secrets.choice(_ID_CHARS) for _ in range(8))


def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


NETWORK_BLIPS_TOLERATED = 5  # dropped connections in a row while reading one object


class _NetworkBlip(Exception):
    """A presigned URL could not be reached this time (a reset, a timeout)."""


class TaskFailed(Exception):
    """Ends a task `cancelled` with this message (already prefixed `ClientError: `)."""


class TaskCancelled(Exception):
    """CancelConversionTask (or shutdown) arrived while the worker was busy."""


@dataclass
class VolumeJob:
    zone: str
    image_format: str
    image_bytes: int
    manifest_url: str
    volume_size: int
    description: str | None = None
    bytes_converted: int = 0
    status: str = "active"
    status_message: str = "Pending"
    volume_id: str | None = None
    zone_id: str | None = None

    def to_dict(self, *, with_status: bool) -> dict[str, Any]:
        d: dict[str, Any] = {
            "availabilityZone": self.zone,
            "availabilityZoneId": self.zone_id,
            "bytesConverted": self.bytes_converted,
            "description": self.description or "",
            "image": {
                "format": self.image_format,
                "size": self.image_bytes,
                "importManifestUrl": self.manifest_url,
            },
            "volume": {"id": self.volume_id, "size": self.volume_size},
        }
        if with_status:
            d["status"] = self.status
            d["statusMessage"] = self.status_message
        return d


@dataclass
class ConversionTask:
    task_id: str
    kind: str  # "instance" | "volume"
    account: str
    region: str
    created: datetime
    expires: datetime
    volumes: list[VolumeJob]
    description: str | None = None
    platform: str | None = None
    instance_id: str | None = None
    state: str = "active"
    status_message: str = "Pending"
    cancel_reason: str | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "conversionTaskId": self.task_id,
            "expirationTime": iso(self.expires),
            "state": self.state,
            "statusMessage": self.status_message,
        }
        if self.kind == "instance":
            d["importInstance"] = {
                "description": self.description or "",
                "instanceId": self.instance_id,
                "platform": self.platform,
                "volumes": [v.to_dict(with_status=True) for v in self.volumes],
            }
        else:
            d["importVolume"] = self.volumes[0].to_dict(with_status=False)
            d["importVolume"]["description"] = self.description or ""
        d["tagSet"] = []
        return d


@dataclass
class Pacing:
    rate: float = DEFAULT_RATE
    min_phase_s: float = DEMO_MIN_PHASE_S
    poll_s: float = 0.5  # retry interval while the manifest or a part is missing
    ttl: timedelta = TASK_TTL

    @classmethod
    def for_rate(cls, rate: float | None, **kw: Any) -> Pacing:
        if rate is None:
            return cls(**kw)
        return cls(rate=rate, min_phase_s=0.0, **kw)


class TaskStore:
    """Every conversion task of this sandbox, behind one lock (read by request threads,
    written by workers)."""

    def __init__(self, pacing: Pacing):
        self.pacing = pacing
        self.lock = threading.RLock()
        self.tasks: dict[str, ConversionTask] = {}
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def active_count(self, account: str) -> int:
        with self.lock:
            return sum(
                1 for t in self.tasks.values() if t.account == account and t.state == "active"
            )

    def add(self, task: ConversionTask) -> None:
        with self.lock:
            self.tasks[task.task_id] = task
        worker = threading.Thread(
            target=Converter(task, self).run, name=f"sandbox-{task.task_id}", daemon=True
        )
        self._threads.append(worker)
        worker.start()

    def get(self, task_id: str, account: str, region: str) -> ConversionTask | None:
        with self.lock:
            t = self.tasks.get(task_id)
            return t if t and t.account == account and t.region == region else None

    def listing(self, account: str, region: str) -> list[ConversionTask]:
        with self.lock:
            return [t for t in self.tasks.values() if t.account == account and t.region == region]

    def snapshot(self, task: ConversionTask) -> dict[str, Any]:
        with self.lock:
            return task.to_dict()

    def cancel(self, task: ConversionTask, reason: str | None) -> None:
        with self.lock:
            task.state = "cancelling"
            task.cancel_reason = reason
            task.cancel_event.set()

    def stop(self) -> None:
        self._stopping.set()
        for t in list(self.tasks.values()):
            t.cancel_event.set()
        for th in self._threads:
            th.join(timeout=2)


def _opener_for(url: str) -> urllib.request.OpenerDirector:
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    # A proxy from the environment must not swallow requests to the sandbox itself.
    handlers = [urllib.request.ProxyHandler({})] if loopback else []
    return urllib.request.build_opener(*handlers)


def _s3_error_code(body: bytes) -> str:
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(body)
        code = root.findtext("Code") or ""
        message = root.findtext("Message") or ""
        return f"{code}: {message}" if message else code
    except ET.ParseError:
        return ""


def _looks_like_an_image(data: bytes) -> bool:
    """Binary data, not XML: what a disk image's URL answers (text that is not XML is a broken
    manifest, cancelled as such)."""
    if not data or data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return False
    return data.startswith((b"KDMV", b"conectix")) or b"\x00" in data[:PROBE_WINDOW]


class Converter:
    """One task's worker."""

    def __init__(self, task: ConversionTask, store: TaskStore):
        self.task = task
        self.store = store
        self.pacing = store.pacing

    # -- state changes (under the store's lock, so a describe never sees half an update)

    def _set(self, fn: Callable[[ConversionTask], None]) -> None:
        with self.store.lock:
            if self.task.state == "active":
                fn(self.task)

    def _set_message(self, job: VolumeJob, message: str) -> None:
        with self.store.lock:
            if self.task.state == "active":
                job.status_message = message

    def _check(self) -> None:
        if self.task.cancel_event.is_set():
            raise TaskCancelled
        if datetime.now(UTC) >= self.task.expires:
            raise TaskFailed(
                "ClientError: the task expired before the import manifest and "
                "every part could be read"
            )

    def _sleep(self, seconds: float) -> None:
        if self.task.cancel_event.wait(max(0.0, seconds)):
            raise TaskCancelled

    # -- the run

    def run(self) -> None:
        try:
            for job in self.task.volumes:
                self._convert(job)
            self._complete()
        except TaskCancelled:
            self._finish_cancelled(self.task.cancel_reason or "Cancelled by user", user=True)
        except TaskFailed as exc:
            self._finish_cancelled(str(exc), user=False)
        except Exception as exc:  # a bug here must still end the task, not hang it
            self._finish_cancelled(f"ClientError: internal sandbox error: {exc}", user=False)

    def _fetch(self, url: str, what: str, method: str = "GET") -> tuple[int, dict[str, str], Any]:
        """One request through a presigned URL: 404 (and a refused connection) means "not
        there yet" and returns None; 403 and other errors fail the task as EC2 would."""
        req = urllib.request.Request(url, method=method)
        try:
            resp = _opener_for(url).open(req, timeout=30)
            return resp.status, dict(resp.headers.items()), resp
        except urllib.error.HTTPError as exc:
            body = exc.read() if method != "HEAD" else b""
            if exc.code == 404:
                return 404, {}, None
            detail = _s3_error_code(body) or exc.reason
            raise TaskFailed(
                f"ClientError: could not read the {what}: HTTP {exc.code} {detail}"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            if isinstance(getattr(exc, "reason", None), ConnectionRefusedError):
                return 404, {}, None
            raise _NetworkBlip(f"ClientError: could not read the {what}: {exc}") from None

    def _wait_for(self, url: str, what: str, method: str = "GET") -> tuple[dict[str, str], Any]:
        blips = 0
        while True:
            self._check()
            try:
                status, headers, resp = self._fetch(url, what, method)
            except _NetworkBlip as exc:
                # Our reading: EC2 reads S3 from inside AWS and rides out a dropped
                # connection; a link that keeps failing fails the task.
                blips += 1
                if blips >= NETWORK_BLIPS_TOLERATED:
                    raise TaskFailed(str(exc)) from None
                self._sleep(self.pacing.poll_s)
                continue
            if status == 404:
                self._sleep(self.pacing.poll_s)  # not uploaded yet: EC2 keeps waiting
                continue
            return headers, resp

    def _convert(self, job: VolumeJob) -> None:
        from tui.core.manifest import ManifestError, parse_manifest

        _, resp = self._wait_for(job.manifest_url, "import manifest")
        with resp:
            data = resp.read(16 * MiB)
        if _looks_like_an_image(data):
            # The image's own URL given as the manifest: EC2 leaves the task Pending with no
            # error (docs/protocol.md section 2), until it expires or is cancelled.
            while True:
                self._check()
                self._sleep(self.pacing.poll_s)
        try:
            manifest = parse_manifest(data)
        except ManifestError as exc:
            raise TaskFailed(f"ClientError: invalid import manifest: {exc}") from None
        if manifest.file_format != job.image_format:
            raise TaskFailed(
                f"ClientError: the manifest's file-format is {manifest.file_format} but the "
                f"request says {job.image_format}"
            )
        if manifest.size != job.image_bytes:
            raise TaskFailed(
                f"ClientError: the manifest's size is {manifest.size} bytes but Image.Bytes is "
                f"{job.image_bytes}"
            )
        if manifest.volume_size > job.volume_size:
            raise TaskFailed(
                f"ClientError: the manifest's volume-size ({manifest.volume_size} GiB) is larger "
                f"than Volume.Size ({job.volume_size} GiB)"
            )
        self._set_message(job, "Pending : Downloaded 0")

        head = bytearray()
        tail = bytearray()
        # A stream-optimized VMDK is inflated grain by grain as it comes, as EC2 reads it.
        grains = StreamVmdkChecker() if manifest.file_format == "VMDK" else None
        downloaded = 0
        phase_start = time.monotonic()
        phase_s = max(manifest.size / self.pacing.rate, self.pacing.min_phase_s)
        for part in manifest.parts:
            what = f"part {part.index} ({part.key})"
            headers, _ = self._wait_for(part.head_url, what, method="HEAD")
            length = int(headers.get("Content-Length", "-1"))
            if length != part.size:
                raise TaskFailed(
                    f"ClientError: {what} is {length} bytes but its byte-range "
                    f"{part.start}-{part.end} is {part.size}"
                )
            _, resp = self._wait_for(part.get_url, what)
            got = 0
            with resp:
                while chunk := resp.read(256 * 1024):
                    got += len(chunk)
                    if len(head) < PROBE_WINDOW:
                        head += chunk[: PROBE_WINDOW - len(head)]
                    tail += chunk
                    del tail[:-PROBE_WINDOW]
                    if grains is not None:
                        grains.feed(chunk)
                    downloaded += len(chunk)
                    self._pace(phase_start, phase_s, downloaded / manifest.size)
                    self._set_message(job, f"Pending : Downloaded {downloaded}")
            if got != part.size:
                raise TaskFailed(f"ClientError: {what} returned {got} bytes, expected {part.size}")
        self._pace(phase_start, phase_s, 1.0)
        self._check_format(job, bytes(head), bytes(tail), manifest.size)
        broken = grains.finish() if grains is not None else None
        if broken is not None:
            raise TaskFailed(f"ClientError: {broken}")
        self._check_volume_size(job, bytes(head), bytes(tail), manifest.size)

        # Conversion proper: BytesConverted climbs at the configured rate.
        start = time.monotonic()
        while True:
            self._check()
            frac = 1.0 if phase_s <= 0 else min(1.0, (time.monotonic() - start) / phase_s)
            done = int(manifest.size * frac)
            pct = int(frac * 100)

            def progress(t: ConversionTask, done: int = done, pct: int = pct) -> None:
                job.bytes_converted = done
                job.status_message = t.status_message = f"Progress: {pct}%"

            self._set(progress)
            if frac >= 1.0:
                break
            self._sleep(min(TICK_S, phase_s * (1.0 - frac)))

        volume_id = moto_adapter.create_volume(
            self.task.account, self.task.region, job.volume_size, job.zone, self.task.instance_id
        )

        def built(t: ConversionTask) -> None:
            job.volume_id = volume_id
            job.status = "completed"
            job.status_message = ""

        self._set(built)

    def _pace(self, start: float, phase_s: float, frac: float) -> None:
        self._check()
        ahead = start + phase_s * frac - time.monotonic()
        if ahead > 0:
            self._sleep(ahead)

    def _check_format(self, job: VolumeJob, head: bytes, tail: bytes, size: int) -> None:
        from tui.core import disk

        probe_bytes = getattr(disk, "probe_bytes", None)
        if probe_bytes is None:  # the disk probe has not landed in this build: trust the manifest
            return
        result = probe_bytes(head, tail, size, name=job.manifest_url)
        if result.format != job.image_format:
            found = result.format or "not a recognised disk image"
            raise TaskFailed(
                f"ClientError: Disk validation failed [file-format is {job.image_format} but the "
                f"image is {found}]"
            )
        if not result.importable:
            variant = (result.variant or "").lower()
            if result.format == "VMDK":
                why = "Unsupported VMDK File Format"
            elif result.format == "VHD" and "differencing" in variant:
                why = "Footers not identical"
            else:
                why = "; ".join(result.problems) or f"unsupported {result.format} image"
            raise TaskFailed(f"ClientError: Disk validation failed [{why}]")

    def _check_volume_size(self, job: VolumeJob, head: bytes, tail: bytes, size: int) -> None:
        """Our reading (EC2 documents no answer): a Volume.Size under the image's virtual size
        fails the task with EC2's invalid-parameter code rather than cutting the disk short."""
        from tui.core import disk
        from tui.core.facts import GIB

        virtual = disk.probe_bytes(head, tail, size, name=job.manifest_url).virtual_bytes
        if virtual > job.volume_size * GIB:
            raise TaskFailed(
                f"ClientError: InvalidParameterValue: Volume.Size ({job.volume_size} GiB) is "
                f"smaller than the image's virtual size ({virtual} bytes)"
            )

    def _complete(self) -> None:
        def done(t: ConversionTask) -> None:
            t.state = "completed"
            t.status_message = ""

        self._set(done)

    def _finish_cancelled(self, message: str, *, user: bool) -> None:
        # EC2 takes a moment to tear down: `cancelling` is visible before `cancelled`.
        with self.store.lock:
            self.task.state = "cancelling"
        time.sleep(0.2 if user else 0.0)
        moto_adapter.terminate(self.task.account, self.task.region, self.task.instance_id)
        with self.store.lock:
            self.task.state = "cancelled"
            self.task.status_message = message
            for job in self.task.volumes:
                if job.status == "active":
                    job.status = "cancelled"
                    job.status_message = message
