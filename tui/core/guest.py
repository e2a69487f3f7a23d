"""Inside the image: the partition table, the partitions and their file systems, and how the
guest boots, read from the disk as the guest sees it (docs/protocol.md section 10).

RAW and fixed VHD are read directly; a dynamic VHD through its block allocation table; a
stream-optimized VMDK by walking its grain and marker stream from the start and inflating only
the grains that hold the sectors asked for (zlib). Only a few sectors are read: the MBR, the GPT
header and entries, and the first 64 KiB of each partition.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

if TYPE_CHECKING:
    from tui.core.disk import ProbeResult

SECTOR = 512
FIRST_BYTES = 64 * 1024  # of each partition: any boot sector or superblock we know is in it

ESP_GUID = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
GPT_TYPES = {
    ESP_GUID: "EFI system",
    "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7": "Microsoft basic data",
    "e3c9e316-0b5c-4db8-817d-f92df00215ae": "Microsoft reserved",
    "de94bba4-06d1-4d40-a16a-bfd50179d6ac": "Windows recovery",
    "0fc63daf-8483-4772-8e79-3d69d8477de4": "Linux filesystem",
    "21686148-6449-6e6f-744e-656564454649": "BIOS boot",
}
MBR_TYPES = {
    0x01: "FAT12",
    0x04: "FAT16",
    0x05: "extended",
    0x06: "FAT16",
    0x07: "NTFS/exFAT",
    0x0B: "FAT32",
    0x0C: "FAT32 (LBA)",
    0x0E: "FAT16 (LBA)",
    0x0F: "extended (LBA)",
    0x27: "Windows recovery",
    0x82: "Linux swap",
    0x83: "Linux",
    0xEE: "GPT protective",
    0xEF: "EFI system",
}


class DiskReader(Protocol):
    size: int

    def read(self, offset: int, length: int) -> bytes: ...


class _Flat:
    """RAW, fixed VHD: the guest's bytes are the file's (a fixed VHD's footer follows them)."""

    def __init__(self, fh: BinaryIO, size: int):
        self.fh, self.size = fh, size

    def read(self, offset: int, length: int) -> bytes:
        length = max(0, min(length, self.size - offset))
        self.fh.seek(offset)
        return self.fh.read(length).ljust(length, b"\0")


class _DynamicVhd:
    """A dynamic VHD: the footer's copy at 0 points at the dynamic header, whose block table
    gives each block's sector (0xFFFFFFFF: never written, reads as zeros); a block's data
    follows its sector bitmap."""

    def __init__(self, fh: BinaryIO):
        self.fh = fh
        footer = self._at(0, SECTOR)
        self.size = struct.unpack(">Q", footer[48:56])[0]  # current size
        header_at = struct.unpack(">Q", footer[16:24])[0]
        header = self._at(header_at, 1024)
        if header[:8] != b"cxsparse":
            raise ValueError("no dynamic disk header")
        table_at = struct.unpack(">Q", header[16:24])[0]
        entries = struct.unpack(">I", header[28:32])[0]
        self.block = struct.unpack(">I", header[32:36])[0]
        self.bitmap = -(-(self.block // SECTOR // 8) // SECTOR) * SECTOR
        raw = self._at(table_at, 4 * entries)
        self.table = struct.unpack(f">{entries}I", raw[: 4 * entries].ljust(4 * entries, b"\xff"))

    def _at(self, offset: int, length: int) -> bytes:
        self.fh.seek(offset)
        return self.fh.read(length)

    def read(self, offset: int, length: int) -> bytes:
        out = bytearray()
        end = min(offset + length, self.size)
        while offset < end:
            index, within = divmod(offset, self.block)
            take = min(end - offset, self.block - within)
            sector = self.table[index] if index < len(self.table) else 0xFFFFFFFF
            if sector == 0xFFFFFFFF:
                out += bytes(take)
            else:
                out += self._at(sector * SECTOR + self.bitmap + within, take).ljust(take, b"\0")
            offset += take
        return bytes(out.ljust(length, b"\0"))


class _StreamVmdk:
    """A stream-optimized VMDK: after the header's overhead, a stream of compressed grains
    (LBA, size, zlib data, to a sector boundary) and markers (size 0, then type and metadata
    sectors). Grains come in LBA order, so the walk stops past the last sector wanted."""

    def __init__(self, fh: BinaryIO):
        self.fh = fh
        header = self._at(0, SECTOR)
        if header[:4] != b"KDMV":
            raise ValueError("no VMDK sparse header")
        capacity, grain = struct.unpack("<QQ", header[12:28])
        self.size = capacity * SECTOR
        self.grain = grain * SECTOR
        self.overhead = struct.unpack("<Q", header[64:72])[0] * SECTOR
        self.grains: dict[int, tuple[int, int]] = {}  # grain index -> (file offset, size)
        self.next_at = self.overhead
        self.walked_to = -1  # the highest grain index seen
        self.ended = False

    def _at(self, offset: int, length: int) -> bytes:
        self.fh.seek(offset)
        return self.fh.read(length)

    def _walk_to(self, index: int) -> None:
        while not self.ended and self.walked_to < index:
            head = self._at(self.next_at, 16)
            if len(head) < 16:
                self.ended = True
                return
            lba, size = struct.unpack("<QI", head[:12])
            if size:  # a grain: 12 bytes of header, then its zlib stream
                self.grains[lba * SECTOR // self.grain] = (self.next_at + 12, size)
                self.walked_to = max(self.walked_to, lba * SECTOR // self.grain)
                self.next_at += -(-(12 + size) // SECTOR) * SECTOR
                continue
            kind = struct.unpack("<I", head[12:16])[0]
            if kind == 0:  # end of stream
                self.ended = True
                return
            self.next_at += SECTOR + lba * SECTOR  # the marker, then its metadata sectors

    def _grain(self, index: int) -> bytes:
        self._walk_to(index)
        found = self.grains.get(index)
        if found is None:
            return bytes(self.grain)
        data = zlib.decompress(self._at(*found))
        return data.ljust(self.grain, b"\0")

    def read(self, offset: int, length: int) -> bytes:
        out = bytearray()
        end = min(offset + length, self.size)
        while offset < end:
            index, within = divmod(offset, self.grain)
            take = min(end - offset, self.grain - within)
            out += self._grain(index)[within : within + take]
            offset += take
        return bytes(out.ljust(length, b"\0"))


@dataclass(frozen=True)
class Partition:
    number: int
    start: int  # bytes from the start of the disk
    size: int  # bytes
    type: str  # MBR: "0x07 NTFS/exFAT"; GPT: the type GUID and its name
    bootable: bool  # MBR: the active flag; GPT: the EFI system partition
    filesystem: str | None


@dataclass(frozen=True)
class Problem:
    check: str  # the preflight check id it becomes
    status: str  # "fail" | "warn"
    message: str
    fix: str


@dataclass
class GuestReport:
    partition_table: str | None  # "mbr" | "gpt" | None
    boot: str | None  # "bios" | "uefi" | None
    partitions: list[Partition] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "partition_table": self.partition_table,
            "boot": self.boot,
            "partitions": [asdict(p) for p in self.partitions],
            "problems": [p.message for p in self.problems],
        }


def filesystem(first: bytes) -> str | None:
    """The file system whose boot sector or superblock begins `first` (a partition's start)."""
    if len(first) < 4096:
        return None
    oem = first[3:11]
    if oem == b"NTFS    ":
        return "NTFS"
    if oem == b"EXFAT   ":
        return "exFAT"
    if oem == b"-FVE-FS-":
        return "BitLocker"
    if first[3:7] == b"ReFS":
        return "ReFS"
    if first[510:512] == b"\x55\xaa":
        if first[82:87] == b"FAT32":
            return "FAT32"
        if first[54:59] == b"FAT16":
            return "FAT16"
        if first[54:59] == b"FAT12":
            return "FAT12"
    if first[1024 + 56 : 1024 + 58] == b"\x53\xef":
        features = struct.unpack("<I", first[1024 + 92 : 1024 + 96])[0]  # compat
        incompat = struct.unpack("<I", first[1024 + 96 : 1024 + 100])[0]
        if incompat & 0x40:  # extents
            return "ext4"
        return "ext3" if features & 0x4 else "ext2"  # has a journal
    if first[:4] == b"XFSB":
        return "XFS"
    if first[4086:4096] == b"SWAPSPACE2":
        return "swap"
    return None


EXTENDED = frozenset({0x05, 0x0F, 0x85})
MAX_LOGICAL = 128  # EBRs followed at most: a chain that loops or runs on is cut there


def _mbr_entries(sector: bytes) -> list[bytes]:
    return [sector[446 + 16 * i : 462 + 16 * i] for i in range(4)]


def _mbr_partition(disk: DiskReader, number: int, entry: bytes, base: int) -> Partition | None:
    """One table entry as a Partition, its start counted from sector `base`; None if empty."""
    kind = entry[4]
    start, sectors = struct.unpack("<II", entry[8:16])
    if kind == 0 or sectors == 0:
        return None
    offset = (base + start) * SECTOR
    first = disk.read(offset, FIRST_BYTES) if offset < disk.size else b""
    return Partition(
        number=number,
        start=offset,
        size=sectors * SECTOR,
        type=f"0x{kind:02x} {MBR_TYPES.get(kind, 'unknown')}",
        bootable=entry[0] == 0x80,
        filesystem=None if kind in EXTENDED else filesystem(first),
    )


def _logical_partitions(disk: DiskReader, extended_start: int) -> list[Partition]:
    """The logical partitions of an extended one, numbered from 5 as Windows and Linux do:
    each EBR's first entry is a partition (from that EBR), its second the next EBR (from the
    extended partition's start)."""
    found: list[Partition] = []
    ebr_at, seen = extended_start, set()
    while len(found) < MAX_LOGICAL and ebr_at not in seen and ebr_at * SECTOR < disk.size:
        seen.add(ebr_at)
        ebr = disk.read(ebr_at * SECTOR, SECTOR)
        if ebr[510:512] != b"\x55\xaa":
            break
        here, onward = _mbr_entries(ebr)[:2]
        part = _mbr_partition(disk, 5 + len(found), here, ebr_at)
        if part is not None:
            found.append(part)
        next_start = struct.unpack("<I", onward[8:12])[0]
        if onward[4] not in EXTENDED or next_start == 0:
            break
        ebr_at = extended_start + next_start
    return found


def _mbr_partitions(disk: DiskReader, mbr: bytes) -> list[Partition] | None:
    """The MBR's primary entries and the logical partitions of an extended one, or None if
    sector 0 is not an MBR (no signature, or a status byte other than 0x00 and 0x80, as in a
    boot sector without a table)."""
    if mbr[510:512] != b"\x55\xaa":
        return None
    entries = _mbr_entries(mbr)
    if any(e[0] not in (0x00, 0x80) for e in entries):
        return None
    found: list[Partition] = []
    logical: list[Partition] = []
    for number, entry in enumerate(entries, 1):
        part = _mbr_partition(disk, number, entry, 0)
        if part is None:
            continue
        found.append(part)
        if entry[4] in EXTENDED and not logical:  # one extended partition per MBR
            logical = _logical_partitions(disk, part.start // SECTOR)
    return found + logical


def _gpt_partitions(disk: DiskReader) -> list[Partition] | None:
    header = disk.read(SECTOR, SECTOR)
    if header[:8] != b"EFI PART":
        return None
    entries_lba, count, entry_size = struct.unpack("<QII", header[72:88])
    count = min(count, 256)
    table = disk.read(entries_lba * SECTOR, count * entry_size)
    found = []
    for i in range(count):
        e = table[i * entry_size : (i + 1) * entry_size]
        kind = str(uuid.UUID(bytes_le=e[:16]))
        if kind == "00000000-0000-0000-0000-000000000000":
            continue
        first_lba, last_lba = struct.unpack("<QQ", e[32:48])
        found.append(
            Partition(
                number=i + 1,
                start=first_lba * SECTOR,
                size=(last_lba - first_lba + 1) * SECTOR,
                type=f"{kind} {GPT_TYPES.get(kind, 'unknown')}",
                bootable=kind == ESP_GUID,
                filesystem=filesystem(disk.read(first_lba * SECTOR, FIRST_BYTES)),
            )
        )
    return found


def reader(fh: BinaryIO, image_format: str, variant: str | None, virtual: int) -> DiskReader:
    """The guest's view of an image disk.py recognised (format and variant as it names them)."""
    if image_format == "VHD" and variant == "dynamic":
        return _DynamicVhd(fh)
    if image_format == "VMDK":
        return _StreamVmdk(fh)
    return _Flat(fh, virtual)  # RAW, or a fixed VHD (its footer is past the guest's bytes)


def source_view(probe: ProbeResult) -> tuple[str, str, str | None, int] | None:
    """Where the guest's bytes can be read as they are (path, format, variant, offset): the
    file itself (RAW, VHD, a stream-optimized VMDK, converted or not), or an OVA's
    stream-optimized disk in place in the tar; None for what qemu-img must convert first."""
    fmt, variant = probe.format, probe.variant
    if fmt in ("RAW", "VHD") or (fmt == "VMDK" and variant == "streamOptimized"):
        return probe.path, fmt, variant, 0
    if probe.action == "upload-from-ova" and probe.ova is not None:
        return probe.path, "VMDK", "streamOptimized", int(probe.ova["offset"])
    return None


class _Window:
    """A file seen from `base` on: an OVA's disk, read in place inside the tar."""

    def __init__(self, fh: BinaryIO, base: int):
        self.fh, self.base = fh, base

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.fh.seek(self.base + offset if whence == 0 else offset, whence) - self.base

    def read(self, n: int = -1) -> bytes:
        return self.fh.read(n)


def inspect(
    path: str | Path, image_format: str, variant: str | None, virtual: int, offset: int = 0
) -> GuestReport:
    """What is inside the image (from `offset` in the file: an OVA's disk), and what of it
    ImportInstance would refuse or fail on."""
    with open(path, "rb") as fh:
        view: BinaryIO = _Window(fh, offset) if offset else fh  # type: ignore[assignment]
        disk = reader(view, image_format, variant, virtual)
        return inspect_disk(disk)


def inspect_disk(disk: DiskReader) -> GuestReport:
    mbr = disk.read(0, SECTOR)
    mbr_parts = _mbr_partitions(disk, mbr)
    protective = mbr_parts is not None and any(p.type.startswith("0xee") for p in mbr_parts)
    gpt = _gpt_partitions(disk) if protective or mbr_parts is None else None
    if gpt is not None:
        report = GuestReport("gpt", None, gpt)
    elif mbr_parts is not None:
        report = GuestReport("mbr", "bios", mbr_parts)
    else:
        report = GuestReport(None, None)
    _judge(report, protective)
    return report


def _judge(report: GuestReport, protective: bool) -> None:
    """AWS's documented rules, and where there are none, ours (docs/protocol.md section 10)."""
    add = report.problems.append
    if report.partition_table is None:
        add(
            Problem(
                "guest-table",
                "fail",
                "no partition table (neither MBR nor GPT): EC2 would find no bootable partition",
                "import the whole disk (not a partition or a file system image)",
            )
        )
        return
    parts = report.partitions
    if report.partition_table == "gpt":
        esp = any(p.bootable for p in parts)
        report.boot = "uefi" if esp else None
        if not protective:
            add(
                Problem(
                    "guest-table",
                    "warn",
                    "a GPT without a protective MBR",
                    "repair the table (e.g. `sgdisk -e`, or gdisk's protective MBR option)",
                )
            )
        add(
            Problem(
                "guest-boot",
                "warn",
                "a GPT disk "
                + (
                    "with an EFI system partition boots by UEFI"
                    if esp
                    else "without an EFI system partition"
                )
                + ": ImportInstance documents BIOS (MBR) Windows only; UEFI is undocumented for it",
                "import a BIOS-installed (MBR) Windows, or use ImportImage with boot mode uefi",
            )
        )
    elif not any(p.bootable for p in parts):
        add(
            Problem(
                "guest-boot",
                "warn",
                "no partition of the MBR is marked active: a BIOS boots the active partition, "
                "so EC2 may report no bootable partition (AWS does not document the flag)",
                "mark the Windows system partition active (diskpart: `active`, or "
                "`sfdisk --activate`)",
            )
        )
    systems = {p.filesystem for p in parts}
    if "BitLocker" in systems:
        add(
            Problem(
                "guest-filesystem",
                "fail",
                "a BitLocker-encrypted volume: VM Import does not import encrypted volumes",
                "decrypt the volume in the guest (manage-bde -off) before exporting the disk",
            )
        )
    elif "NTFS" not in systems:
        add(
            Problem(
                "guest-filesystem",
                "warn",
                "no NTFS partition: VM Import takes Windows volumes formatted NTFS",
                "check that this is the Windows system disk",
            )
        )
