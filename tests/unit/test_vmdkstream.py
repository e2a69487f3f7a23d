"""The sandbox's grain check on real stream-optimized VMDKs made by qemu-img in this run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers.disks import make_source_raw, qemu_convert
from tui.core.vmdkstream import StreamVmdkChecker

MIB = 1 << 20


@pytest.fixture(scope="module")
def stream(qemu_img: str, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    root = tmp_path_factory.mktemp("vmdkstream")
    raw = make_source_raw(root / "d.raw", size=8 * MIB)
    return qemu_convert(
        raw, root / "d.vmdk", "vmdk", "-o", "subformat=streamOptimized"
    ).read_bytes()


def check(data: bytes, step: int) -> str | None:
    checker = StreamVmdkChecker()
    for i in range(0, len(data), step):
        checker.feed(data[i : i + step])
    return checker.finish()


@pytest.mark.parametrize("step", [1, 511, 4096, 256 * 1024, 1 << 30])
def test_a_good_stream_passes_however_it_is_cut_into_chunks(stream: bytes, step: int) -> None:
    assert check(stream, 1 if step == 1 and len(stream) > 1 << 20 else step) is None


def test_a_created_empty_stream_passes(qemu_img: str, tmp_path: Path) -> None:
    path = tmp_path / "empty.vmdk"
    subprocess.run([qemu_img, "create", "-q", "-f", "vmdk", "-o", "subformat=streamOptimized",
                    str(path), "64M"], check=True)  # fmt: skip
    assert check(path.read_bytes(), 65536) is None


def test_a_zeroed_grain_is_the_error_ec2_gives(stream: bytes) -> None:
    broken = bytearray(stream)
    at = 128 * 512 + 12 + 64  # inside the first grain's deflated bytes
    broken[at : at + 256] = bytes(256)
    assert check(bytes(broken), 65536) == "Uncompressed data has invalid length"


def test_a_stream_cut_inside_a_grain_is_truncated(stream: bytes) -> None:
    assert "truncated" in (check(stream[: len(stream) // 2 + 100], 4096) or "")


def test_not_a_vmdk() -> None:
    assert "not a VMDK" in (check(bytes(4096), 4096) or "")
