"""Finding an upload from an S3 URL, and deleting one (its parts and manifest)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from tui.core.errors import AwsError, InputError, RefusedError
from tui.core.manifest import ManifestError, parse_manifest

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_VIRTUAL_HOST = re.compile(r"^(?P<bucket>.+?)\.s3(?:[.-][a-z0-9-]+)*\.amazonaws\.com(?:\.cn)?$")
_DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys


@dataclass
class DeleteReport:
    bucket: str
    manifest_key: str
    deleted: list[str] = field(default_factory=list)
    manifest_found: bool = True


def parse_s3_url(url: str) -> tuple[str, str]:
    """(bucket, key) of an S3 object URL: `s3://BUCKET/KEY`, virtual-hosted
    (`https://BUCKET.s3.REGION.amazonaws.com/KEY`) or path style
    (`https://s3.amazonaws.com/BUCKET/KEY`, local endpoints). The key is unquoted."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    path = unquote(parts.path)
    if parts.scheme == "s3":
        bucket, key = parts.netloc, path.lstrip("/")
    elif m := _VIRTUAL_HOST.match(host):
        bucket, key = m.group("bucket"), path.lstrip("/")
    else:
        bucket, _, key = path.lstrip("/").partition("/")
    if not bucket or not key:
        raise InputError(f"not an S3 object URL: {url.split('?', 1)[0]}")
    return bucket, key


def delete_upload(s3: S3Client, bucket: str, manifest_key: str) -> DeleteReport:
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
    data: bytes | None
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
    for batch_start in range(0, len(keys), _DELETE_BATCH):
        batch = keys[batch_start : batch_start + _DELETE_BATCH]
        _delete_batch(s3, bucket, batch)
        report.deleted.extend(batch)
    if data is not None:
        s3.delete_object(Bucket=bucket, Key=manifest_key)
        report.deleted.append(manifest_key)
    return report


def _delete_batch(s3: S3Client, bucket: str, keys: list[str]) -> None:
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
