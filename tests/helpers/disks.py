"""Disk images for the tests: a small raw "disk" and the formats qemu-img converts it to."""

from __future__ import annotations

import random
import struct
import subprocess
from pathlib import Path

MIB = 1 << 20


def _vhd_checksum(block: bytes | bytearray, at: int) -> int:
    return ~(sum(block) - sum(block[at : at + 4])) & 0xFFFFFFFF


def make_source_raw(path: Path, size: int = 4 * MIB, seed: int = 0) -> Path:
    """A small "disk": an MBR with one partition, random data in a few places, zeros elsewhere
    (so sparse and compressed formats have real grains to store)."""
    rng = random.Random(seed)
    mbr = bytearray(rng.randbytes(446)) + bytearray(66)
    mbr[446 + 4] = 0x07  # one NTFS partition entry
    mbr[510:512] = b"\x55\xaa"
    with path.open("wb") as fh:
        fh.truncate(size)
        fh.write(mbr)
        for offset in (64 * 1024, size // 3, size - 200 * 1024):
            fh.seek(offset)
            fh.write(rng.randbytes(100 * 1024))
    return path


def qemu_convert(src: Path, dst: Path, fmt: str, *options: str) -> Path:
    cmd = ["qemu-img", "convert", "-q", "-f", "raw", "-O", fmt, *options, str(src), str(dst)]
    subprocess.run(cmd, check=True, capture_output=True)
    return dst


def make_differencing_vhd(dynamic: Path, dst: Path) -> Path:
    """qemu-img cannot create differencing VHDs: mark a dynamic one as type 4, checksums
    recomputed in both footer copies, the way a Hyper-V child disk looks to a prober."""
    data = bytearray(dynamic.read_bytes())
    footer = bytearray(data[-512:])
    struct.pack_into(">I", footer, 60, 4)
    struct.pack_into(">I", footer, 64, 0)
    struct.pack_into(">I", footer, 64, _vhd_checksum(footer, 64))
    data[-512:] = footer
    data[:512] = footer
    dst.write_bytes(bytes(data))
    return dst
