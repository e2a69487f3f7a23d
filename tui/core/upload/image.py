"""Uploading one disk image: the parts, then the manifest, then proof that EC2 can read them.

The wire layout is docs/protocol.md sections 2-3: every byte range is its own S3 object
(`<prefix>/<run id>/<basename>.part<N>`), the manifest lists presigned HEAD/GET/DELETE URLs of
each part, and EC2 gets a presigned GET URL of the manifest.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from tui.core import s3keys
from tui.core.errors import ImageChanged, InputError
from tui.core.facts import (
    DEFAULT_PART_SIZE,
    DEFAULT_WORKERS,
    MAX_IMAGE_BYTES,
    MAX_URL_EXPIRY_DAYS,
    MIB,
)
from tui.core.manifest import FILE_FORMATS, Manifest, ManifestPart, plan_parts
from tui.core.retry import RetryPolicy
from tui.core.upload.parts import (
    PART_POLICY,
    Listed,
    PartSender,
    UploadProgress,
    list_folder,
    run_parts,
)
from tui.core.upload.presign import Presigner, UrlChecker, require_sigv4

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MIN_PART_SIZE = 64 * 1024
MAX_PART_SIZE = 5 * 1024 * MIB  # S3's limit for one PUT
MAX_WORKERS = 64


@dataclass(frozen=True)
class UploadOptions:
    """How to upload, as opposed to what: checked when made (InputError)."""

    part_size: int = DEFAULT_PART_SIZE
    workers: int = DEFAULT_WORKERS
    expiry_days: int = MAX_URL_EXPIRY_DAYS  # of the presigned URLs
    # List the run's folder first and send only the parts S3 lacks (resume); a new run's
    # folder is empty, so the pipeline turns it off and each part costs its PUT alone.
    check_existing: bool = True
    verify_urls: bool = True  # try every presigned URL as EC2 will (each part's once stored)
    # The one retry budget of each part (and the manifest); give the uploader a one-try
    # client (`tui.core.aws.part_budget`) so that botocore's retries do not stack on it.
    part_retry: RetryPolicy = PART_POLICY

    def __post_init__(self) -> None:
        if not MIN_PART_SIZE <= self.part_size <= MAX_PART_SIZE:
            raise InputError(
                f"part size {self.part_size} must be between {MIN_PART_SIZE} and 5 GiB"
            )
        if not 1 <= self.workers <= MAX_WORKERS:
            raise InputError(f"workers {self.workers} must be between 1 and {MAX_WORKERS}")
        if not 1 <= self.expiry_days <= MAX_URL_EXPIRY_DAYS:
            raise InputError(
                f"URL expiry of {self.expiry_days} days is out of range: SigV4 presigned URLs "
                "live 1 to 7 days",
                field="source.url_expiry_days",
            )


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
    retries: int  # requests sent again, by botocore or for integrity
    expires_at: datetime
    seconds: float

    @property
    def s3_url(self) -> str:
        return f"s3://{self.bucket}/{self.manifest_key}"


def upload_image(
    s3: S3Client,
    image_path: str | os.PathLike[str],
    bucket: str,
    key_prefix: str,
    run_id: str,
    *,
    file_format: str,
    volume_size: int,
    options: UploadOptions | None = None,
    on_progress: Callable[[UploadProgress], None] | None = None,
    on_part_done: Callable[[int, str], None] | None = None,
    cancel: threading.Event | None = None,
    known_parts: Mapping[int, str] | None = None,
    key_name: str | None = None,
    byte_range: tuple[int, int] | None = None,
    part_client: Callable[[float], S3Client] | None = None,
) -> UploadResult:
    """Upload `image_path` as parts and a manifest; return where the manifest is.

    `file_format` (RAW | VHD | VMDK) and `volume_size` (GiB) go into the manifest: take them
    from `tui.core.plan.plan_import`, which probed the image. `s3` must presign SigV4 (as
    `tui.core.aws.client` makes it); `options.part_retry` retries each part. Callbacks run on the
    calling thread: `on_part_done(index, md5_hex)` once per part confirmed in S3 during this
    call (sent, or found there), `on_progress` as parts complete, throttled. `known_parts`
    (index: MD5 hex, from the run's journal) are parts confirmed earlier: with
    `check_existing`, one that the listing shows with that size and ETag is neither read nor
    sent (nor told to `on_part_done`); without it, they are trusted outright. Setting `cancel`
    starts no new part; the ones in flight finish. `key_name` names the S3 keys (default
    `image_path`). `byte_range` (offset, length): the image is those bytes of the file (the
    stream-optimized VMDK inside an OVA, sent from the tar without a copy). `part_client(d)`:
    the client for a part PUT whose answer may come `d` seconds later than a fast link's
    (`tui.core.aws.part_budget`'s `drain_s`); default `s3` for every part.

    Raises InputError (bad arguments, unreadable file: nothing was sent), ImageChanged (the
    file changed while its parts were sent), AwsError (S3 refused or the network failed after
    retries), Cancelled (the `cancel` event was set).
    """
    options = options or UploadOptions()
    if file_format not in FILE_FORMATS:
        raise InputError(f"image format {file_format!r} is not one of {', '.join(FILE_FORMATS)}")
    if volume_size < 1:
        raise InputError(f"volume size {volume_size} GiB must be at least 1")
    require_sigv4(s3, bucket)
    path = Path(image_path)
    size, mtime = _image_size(path)
    file_state = (size, mtime)
    offset = 0
    if byte_range is not None:
        offset, size = byte_range
        if offset < 0 or offset + size > file_state[0]:
            raise InputError(f"{path}: bytes {offset}..{offset + size} are past its end")
    if size == 0:
        raise InputError(f"{path}: the image is empty")
    if size >= MAX_IMAGE_BYTES:
        raise InputError(f"{path}: {size} bytes is not under 16 TiB")
    ranges = plan_parts(size, options.part_size)
    # Keys are named after `key_name` (the source image, when `image_path` is its conversion).
    named = key_name or str(path)
    keys = [s3keys.part_key(key_prefix, run_id, named, i) for i in range(len(ranges))]
    manifest_key = s3keys.manifest_key(key_prefix, run_id, named)
    known = {i: m for i, m in (known_parts or {}).items() if 0 <= i < len(ranges)}
    cancel = cancel or threading.Event()
    started = time.monotonic()
    # The earliest URL's expiry: the parts' URLs are made as they are stored, from now on.
    expires_in = options.expiry_days * 86400
    expires_at = datetime.now(UTC) + timedelta(seconds=expires_in)
    presign = Presigner(s3, bucket, expires_in)

    listed: dict[int, Listed] = {}
    if options.check_existing:
        objects = list_folder(
            s3, bucket, s3keys.run_folder(key_prefix, run_id), cancel, options.part_retry
        )
        listed = {i: objects[k] for i, k in enumerate(keys) if k in objects}
        trusted = {
            i: m
            for i, m in known.items()
            if i in listed and listed[i] == Listed(ranges[i][1] - ranges[i][0] + 1, m)
        }
    else:
        trusted = known

    checker = UrlChecker(options.workers, cancel) if options.verify_urls else None
    urls: list[tuple[str, str, str] | None] = [None] * len(ranges)

    def check(index: int) -> None:
        # Presigning is local (no request): each part's URLs are made once it is stored, and
        # its HEAD URL tried as EC2 will, while other parts still upload.
        key = keys[index]
        head = presign("head_object", key)
        urls[index] = (head, presign("get_object", key), presign("delete_object", key))
        if checker is not None:
            start, end = ranges[index]
            checker.head_part(index, head, end - start + 1)

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InputError(f"{path}: cannot read the image: {exc.strerror or exc}") from None
    sender = PartSender(
        s3,
        bucket,
        path,
        fd,
        ranges,
        keys,
        cancel=cancel,
        policy=options.part_retry,
        offset=offset,
        part_client=part_client,
    )
    try:
        try:
            sent = run_parts(
                sender,
                workers=options.workers,
                trusted=trusted,
                listed=listed,
                known=known,
                on_progress=on_progress,
                on_part_done=on_part_done,
                check=check,
            )
        finally:
            os.close(fd)
        if _image_size(path) != file_state:
            raise ImageChanged(str(path), "changed")

        # Every part is in S3 with its URLs made (and tried): write the manifest, then prove
        # EC2 can read it.
        parts = []
        for i, (start, end) in enumerate(ranges):
            made = urls[i]
            assert made is not None  # run_parts returns once every part was checked
            parts.append(
                ManifestPart(
                    index=i,
                    start=start,
                    end=end,
                    key=keys[i],
                    head_url=made[0],
                    get_url=made[1],
                    delete_url=made[2],
                )
            )
        manifest = Manifest(
            file_format=file_format,
            size=size,
            volume_size=volume_size,
            parts=parts,
            self_destruct_url=presign("delete_object", manifest_key),
        )
        body = manifest.to_xml()
        sender.put(manifest_key, body, "application/xml")
        manifest_url = presign("get_object", manifest_key)
        if checker is not None:
            checker.get_manifest(manifest_url, body)
    finally:
        if checker is not None:
            checker.close()
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
