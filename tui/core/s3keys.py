"""S3 key naming as the AWS tools do it (docs/protocol.md section 2).

`<prefix>/<run id>/<basename>.part<N>` and `<prefix>/<run id>/<basename>manifest.xml` (no dot
before "manifest"). Only the file's basename goes in a key, never the path as typed.
"""

from __future__ import annotations

from pathlib import PurePath


def run_folder(key_prefix: str, run_id: str) -> str:
    prefix = key_prefix.strip("/")
    return f"{prefix}/{run_id}" if prefix else run_id


def part_key(key_prefix: str, run_id: str, image_path: str, index: int) -> str:
    return f"{run_folder(key_prefix, run_id)}/{PurePath(image_path).name}.part{index}"


def manifest_key(key_prefix: str, run_id: str, image_path: str) -> str:
    return f"{run_folder(key_prefix, run_id)}/{PurePath(image_path).name}manifest.xml"
