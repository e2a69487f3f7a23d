"""S3 key naming as the AWS tools do it (docs/protocol.md sections 2 and 8).

`<prefix>/<run id>/<basename>.part<N>` and `<prefix>/<run id>/<basename>manifest.xml` (no dot
before "manifest"). Only the file's basename goes in a key, never the path as typed.
"""

from __future__ import annotations

from pathlib import PurePath

from tui.core.facts import KEY_SAFE_CHARS


def key_name(image_path: str) -> str:
    """The image's basename as it goes into a key: each character outside S3's safe set
    becomes '_' (`Windows Server (2019).vhd` -> `Windows_Server_(2019).vhd`).

    Encoded rather than refused: a user cannot be asked to rename a disk image for a key nobody
    reads, and percent-encoding would put '%' (itself unsafe) in keys. With safe characters only,
    a key needs no escaping in the manifest's XML or a presigned URL's path."""
    return "".join(c if c in KEY_SAFE_CHARS else "_" for c in PurePath(image_path).name)


def run_folder(key_prefix: str, run_id: str) -> str:
    prefix = key_prefix.strip("/")
    return f"{prefix}/{run_id}" if prefix else run_id


def part_key(key_prefix: str, run_id: str, image_path: str, index: int) -> str:
    return f"{run_folder(key_prefix, run_id)}/{key_name(image_path)}.part{index}"


def manifest_key(key_prefix: str, run_id: str, image_path: str) -> str:
    return f"{run_folder(key_prefix, run_id)}/{key_name(image_path)}manifest.xml"
