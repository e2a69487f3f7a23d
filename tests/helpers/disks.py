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


# ---------------------------------------------------------------------------------------------
# Guests: disks partitioned by sfdisk and formatted by mkntfs or mkfs.vfat, as a test run makes
# them (tests/unit/test_guest.py)

GUEST_DISK = 24 * MIB
PART_START = 2048  # sectors: 1 MiB, where every partitioner puts the first partition
PART_SECTORS = 16 * MIB // 512
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"


def _tool(name: str) -> str:
    import shutil

    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        import pytest

        pytest.skip(f"{name} is not installed (.ci/run installs it)")
    return found


def _partition(disk: Path, script: str) -> None:
    subprocess.run(
        [_tool("sfdisk"), "-q", "--no-reread", "--no-tell-kernel", str(disk)],
        input=script,
        text=True,
        check=True,
        capture_output=True,
    )


def _format_into(
    disk: Path, mkfs: list[str], start: int = PART_START, sectors: int = PART_SECTORS
) -> None:
    """Format a partition-sized file, then write it into the disk at the partition's start."""
    part = disk.with_suffix(".part")
    with part.open("wb") as fh:
        fh.truncate(sectors * 512)
    subprocess.run([*mkfs, str(part)], check=True, capture_output=True)
    with disk.open("r+b") as out, part.open("rb") as src:
        out.seek(start * 512)
        out.write(src.read())
    part.unlink()


def _mkntfs(start: int) -> list[str]:
    return [_tool("mkntfs"), "-F", "-Q", "-q", "-p", str(start), "-H", "255", "-S", "63"]


# "mbr-logical": C: primary and active, D: a logical partition in an extended one (sectors).
SYSTEM_SECTORS = 8 * MIB // 512
EXTENDED_START = PART_START + SYSTEM_SECTORS
LOGICAL_START = EXTENDED_START + 2048  # its EBR first, then a gap, as sfdisk aligns it
LOGICAL_SECTORS = 8 * MIB // 512


def make_guest_raw(path: Path, kind: str) -> Path:
    """A RAW disk of one kind: "none" (no partition table), "mbr-active" and "mbr-inactive"
    (one NTFS partition), "mbr-logical" (an active NTFS primary and an NTFS logical partition
    in an extended one), "bitlocker" (one active partition whose volume header is BitLocker's:
    no Linux tool makes one, so its boot sector is written as BitLocker writes it, OEM id
    `-FVE-FS-`), "gpt-esp" (an EFI system partition with FAT)."""
    with path.open("wb") as fh:
        fh.truncate(GUEST_DISK)
        fh.seek(3 * MIB)
        fh.write(random.Random(kind).randbytes(64 * 1024))  # data, but no table
    if kind == "none":
        return path
    if kind == "mbr-logical":
        _partition(
            path,
            f"label: dos\nstart={PART_START}, size={SYSTEM_SECTORS}, type=7, bootable\n"
            f"start={EXTENDED_START}, type=5\n"
            f"start={LOGICAL_START}, size={LOGICAL_SECTORS}, type=7\n",
        )
        _format_into(path, _mkntfs(PART_START), PART_START, SYSTEM_SECTORS)
        _format_into(path, _mkntfs(LOGICAL_START), LOGICAL_START, LOGICAL_SECTORS)
    elif kind.startswith("mbr"):
        bootable = ", bootable" if kind == "mbr-active" else ""
        _partition(path, f"label: dos\nstart={PART_START}, size={PART_SECTORS}, type=7{bootable}\n")
        _format_into(path, _mkntfs(PART_START))
    elif kind == "bitlocker":
        _partition(path, f"label: dos\nstart={PART_START}, size={PART_SECTORS}, type=7, bootable\n")
        header = bytearray(random.Random(kind).randbytes(512))
        header[0:11] = b"\xeb\x58\x90-FVE-FS-"
        header[510:512] = b"\x55\xaa"
        with path.open("r+b") as fh:
            fh.seek(PART_START * 512)
            fh.write(header)
    elif kind == "gpt-esp":
        _partition(path, f"label: gpt\nstart={PART_START}, size={PART_SECTORS}, type={ESP_TYPE}\n")
        _format_into(path, [_tool("mkfs.vfat")])
    else:
        raise ValueError(kind)
    return path


def with_mbr(data: bytes) -> bytes:
    """Random "disk" bytes behind an MBR with one active NTFS-typed partition from 1 MiB on:
    the transport tests' images pass the preflight's partition-table check (the guest's
    file system stays unknown, which only warns)."""
    mbr = bytearray(512)
    sectors = max(1, len(data) // 512 - PART_START)
    mbr[446:462] = bytes([0x80, 0, 0, 0, 0x07, 0, 0, 0]) + struct.pack("<II", PART_START, sectors)
    mbr[510:512] = b"\x55\xaa"
    return bytes(mbr) + data[512:]
