"""What an import will send: the profile checked against its disk image, and the preview of the
flattened request (the same text for the `preview` command and the TUI's preview screen)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui.core import s3keys
from tui.core.aws import Target
from tui.core.errors import InputError
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


def plan_import(profile: Profile, origin: Path | None) -> ImportPlan:
    """Probe a local image and reconcile it with the profile's format and volume size."""
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
    result = probe(path)
    if not result.importable or result.format is None:
        problems = "; ".join(result.problems) or "not an importable disk image"
        raise InputError(f"{path}: {problems}", source=where, field="source.path")
    if src.format is not None and src.format != result.format:
        raise InputError(
            f"says {src.format} but {path.name} is {result.format}: remove `format` or fix it",
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
    return ImportPlan(profile, origin, path, result.format, result.file_bytes, volume, probe=result)


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
