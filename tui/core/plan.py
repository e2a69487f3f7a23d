"""What an import will send: the profile checked against its disk image, and the preview of the
flattened request (the same text for the `preview` command and the TUI's preview screen)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui.core import s3keys
from tui.core.aws import Target
from tui.core.errors import InputError
from tui.core.facts import DEFAULT_PART_SIZE, MAX_KEY_BYTES
from tui.core.profiles import Profile
from tui.core.request import (
    API_VERSION,
    ImportInstanceRequest,
    as_get_url,
    as_lines,
    flatten,
    redact_boto_params,
    redact_params,
)

if TYPE_CHECKING:
    from tui.core.disk import ProbeResult

RUN_ID_PLACEHOLDER = "RUN-ID"
# Every run id is a uuid4 (journal.new_run_id): a key's length is measured with one as long.
_SAMPLE_RUN_ID = str(uuid.UUID(int=0))


@dataclass
class ImportPlan:
    """The disk image facts a request needs, checked against the profile."""

    profile: Profile
    origin: Path | None
    image_path: Path | None  # None when the profile names an uploaded manifest
    image_format: str
    image_bytes: int
    volume_size: int
    probe: ProbeResult | None = None  # for a local image
    # The file whose bytes are sent when it is not image_path (a converted image); S3 keys
    # are named after image_path all the same.
    upload_path: Path | None = None

    @property
    def action(self) -> str:
        """The probe's plan: "upload", "convert" or "upload-from-ova"."""
        return (self.probe.action if self.probe else None) or "upload"

    def manifest_placeholder(self, run_id: str = RUN_ID_PLACEHOLDER) -> str:
        src = self.profile.source
        assert self.image_path is not None and src.bucket is not None
        key = s3keys.manifest_key(src.key_prefix, run_id, str(self.image_path))
        return f"<not yet uploaded: presigned GET of s3://{src.bucket}/{key}>"

    def request(self, manifest_url: str | None = None) -> ImportInstanceRequest:
        url = manifest_url or self.profile.source.manifest_url or self.manifest_placeholder()
        try:
            return self.profile.build_request(
                manifest_url=url,
                image_format=self.image_format,
                image_bytes=self.image_bytes,
                volume_size=self.volume_size,
            )
        except ValueError as exc:  # pydantic ValidationError is a ValueError
            raise InputError(str(exc), field="source") from None


def longest_key(key_prefix: str, image_path: str, image_bytes: int, part_size: int) -> str:
    """The longest S3 key an upload of this image makes: its last part's or its manifest's."""
    last = max(1, -(-image_bytes // part_size)) - 1
    keys = (
        s3keys.part_key(key_prefix, _SAMPLE_RUN_ID, image_path, last),
        s3keys.manifest_key(key_prefix, _SAMPLE_RUN_ID, image_path),
    )
    return max(keys, key=lambda k: len(k.encode()))


def check_key_length(
    key_prefix: str,
    image_path: str,
    image_bytes: int,
    part_size: int | None = None,
    where: str | None = None,
) -> None:
    """Refuse a prefix that makes a key over S3's limit, before anything is sent: S3 would
    refuse that part only after the parts before it were uploaded. `part_size` None: 10 MiB."""
    part_size = part_size or DEFAULT_PART_SIZE
    key = longest_key(key_prefix, image_path, image_bytes, part_size)
    size = len(key.encode())
    if size <= MAX_KEY_BYTES:
        return
    # What the prefix may take: the limit less the rest of the key and the '/' after it.
    room = MAX_KEY_BYTES - len(longest_key("", image_path, image_bytes, part_size).encode()) - 1
    fix = (
        f"shorten the prefix to at most {room} bytes"
        if room > 0
        else "leave it empty and give the image a shorter name"
    )
    raise InputError(
        f"a {len(key_prefix.encode())}-byte prefix makes S3 keys of up to {size} bytes "
        f"(.../{key.rsplit('/', 1)[-1]}); S3 takes at most {MAX_KEY_BYTES}: {fix}",
        source=where,
        field="source.key_prefix",
    )


def plan_import(profile: Profile, origin: Path | None, part_size: int | None = None) -> ImportPlan:
    """Probe a local image and reconcile it with the profile's format and volume size; the
    keys its upload will make are checked with `part_size` (default: the usual 10 MiB)."""
    src = profile.source
    if src.manifest_url is not None:
        assert src.format and src.bytes and src.volume_size
        return ImportPlan(profile, origin, None, src.format, src.bytes, src.volume_size)

    from tui.core.disk import probe

    path = profile.image_path(origin)
    assert path is not None
    where = str(origin) if origin else None
    if not path.exists():
        raise InputError(f"no such disk image: {path}", source=where, field="source.path")
    result = probe(path, src.convert or "auto")
    if not result.importable or result.format is None or result.plan is None:
        problems = "; ".join(result.problems) or "not an importable disk image"
        raise InputError(f"{path}: {problems}", source=where, field="source.path")
    sent_format = result.upload_format or result.format
    if src.format is not None and src.format != sent_format:
        what = result.format if sent_format == result.format else f"sent as {sent_format}"
        raise InputError(
            f"says {src.format} but {path.name} is {what}: remove `format` or fix it",
            source=where,
            field="source.format",
        )
    volume = src.volume_size or result.volume_size_gib
    if volume < result.volume_size_gib:
        raise InputError(
            f"{volume} GiB is smaller than the image's virtual size "
            f"({result.virtual_bytes} bytes needs at least {result.volume_size_gib} GiB)",
            source=where,
            field="source.volume_size",
        )
    sent = result.file_bytes if result.action == "upload" else result.plan["send_bytes_estimate"]
    check_key_length(src.key_prefix, str(path), max(sent, result.file_bytes), part_size, where)
    return ImportPlan(profile, origin, path, sent_format, sent, volume, probe=result)


@dataclass
class Preview:
    endpoint: str
    params: dict[str, str]  # the flattened form body, unredacted
    boto3_params: dict[str, Any]

    def shown(self, reveal: bool) -> dict[str, str]:
        return self.params if reveal else redact_params(self.params)

    def as_lines(self, reveal: bool = False) -> str:
        return as_lines(self.shown(reveal))

    def as_url(self, reveal: bool = False) -> str:
        return as_get_url(self.endpoint, self.shown(reveal))

    def as_json(self, reveal: bool = False) -> dict[str, Any]:
        boto = self.boto3_params if reveal else redact_boto_params(self.boto3_params)
        return {"endpoint": self.endpoint, "params": self.shown(reveal), "boto3_params": boto}


def preview_request(request: ImportInstanceRequest, endpoint: str) -> Preview:
    params = request.to_params()
    flat = flatten(params)
    assert flat.get("Version") == API_VERSION
    return Preview(endpoint=endpoint, params=flat, boto3_params=params)


def build_preview(profile: Profile, origin: Path | None, target: Target | None) -> Preview:
    from tui.core.aws import unsigned_endpoint

    plan = plan_import(profile, origin)
    endpoint = unsigned_endpoint(target) if target is not None else "http://127.0.0.1 (sandbox)"
    return preview_request(plan.request(), endpoint)
