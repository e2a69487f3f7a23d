"""Probe a disk image: format, variant, sizes, problems (docs/protocol.md section 4).

Only the first and last 64 KiB are read, so a 1 TiB sparse file probes as fast as a 1 MiB one,
and `probe_bytes` gives the same answer from those two windows alone (the sandbox checks a
reassembled image without a file). Nothing here raises for a bad image: every reason an image
cannot be imported is a line in `problems`, with the command that fixes it where there is one.

ImportInstance takes VMDK (stream-optimized only), VHD (fixed or dynamic) and RAW.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import struct
from dataclasses import asdict, dataclass, field
from pathlib import PurePath
from typing import Any

from tui.core.facts import GIB, MAX_IMAGE_BYTES

SECTOR = 512
WINDOW = 64 * 1024  # bytes read at each end of the file

# VMDK sparse extent header (little-endian), VMware "Virtual Disk Format 5.0".
VMDK_MAGIC = b"KDMV"
VMDK_HEADER = struct.Struct("<4sIIQQQQIQQQB4sH")  # up to compressAlgorithm @77
VMDK_FLAG_COMPRESSED = 0x10000
VMDK_FLAG_MARKERS = 0x20000
VMDK_COMPRESS_DEFLATE = 1
VMDK_GD_AT_END = 0xFFFFFFFFFFFFFFFF
VMDK_LINE_CHECK = b"\n \r\n"  # damaged by text-mode (FTP ASCII) transfers when different

# VHD footer (big-endian), Microsoft "Virtual Hard Disk Image Format Specification".
VHD_COOKIE = b"conectix"
VHD_DYNAMIC_COOKIE = b"cxsparse"
VHD_TYPES = {2: "fixed", 3: "dynamic", 4: "differencing"}


@dataclass
class ProbeResult:
    path: str
    format: str | None  # "VMDK" | "VHD" | "RAW" | None
    variant: str | None
    file_bytes: int
    virtual_bytes: int
    volume_size_gib: int
    importable: bool
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # The file-level probe (tui/core/sources.py) fills these in:
    allocated_bytes: int | None = None  # about how many bytes hold data (None: not measured)
    extents: list[dict[str, Any]] = field(default_factory=list)  # a descriptor's extent files
    ova: dict[str, Any] | None = None  # the OVA's disk: member, offset, length, left out
    plan: dict[str, Any] | None = None  # action, reason, send_bytes_estimate, upload_format
    # Not in the JSON: why the bytes alone are not importable though qemu-img can convert them
    # (the problem line to drop when converting), and the converter's input arguments.
    conversion: str | None = None
    convert_from: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["conversion"], data["convert_from"]
        return data

    @property
    def action(self) -> str | None:
        return self.plan["action"] if self.plan else None

    @property
    def upload_format(self) -> str | None:
        """The Image.Format the import sends: VMDK after a conversion."""
        return self.plan["upload_format"] if self.plan else self.format


def volume_gib(virtual_bytes: int) -> int:
    """The default Volume.Size: virtual size rounded up to whole GiB, at least 1 (0 when
    there is no disk at all)."""
    return max(1, -(-virtual_bytes // GIB)) if virtual_bytes > 0 else 0


# ---------------------------------------------------------------------------------------------
# Entry points


def probe(path: str | os.PathLike[str], convert: str = "auto") -> ProbeResult:
    """Probe a disk source (an image, a VMDK descriptor, an OVA, an OVF) and its plan for the
    profile's `convert` mode ("auto", "always" or "never"): tui/core/sources.py."""
    from tui.core.sources import probe_source

    return probe_source(path, convert)  # type: ignore[arg-type]


def probe_image(path: str | os.PathLike[str]) -> ProbeResult:
    """Probe the image file at `path`: two reads of at most 64 KiB, whatever its size.

    Regular files and block devices (sized by seeking to the end) are read; anything else,
    and any OS error, comes back as a problem with importable=False.
    """
    shown = os.fspath(path)
    try:
        # O_NONBLOCK: opening a FIFO must not hang waiting for a writer.
        fd = os.open(shown, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return _unreadable(shown, "no such file")
    except IsADirectoryError:
        return _unreadable(shown, "is a directory, not a disk image")
    except PermissionError:
        return _unreadable(shown, "cannot read the file: permission denied")
    except OSError as exc:
        return _unreadable(shown, f"cannot open the file: {exc.strerror or exc}")
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            return _unreadable(shown, "is a directory, not a disk image")
        if stat.S_ISREG(st.st_mode):
            size = st.st_size
        elif stat.S_ISBLK(st.st_mode):
            size = os.lseek(fd, 0, os.SEEK_END)
        else:
            return _unreadable(shown, "is not a regular file or a block device")
        head = os.pread(fd, min(WINDOW, size), 0) if size else b""
        tail_len = min(WINDOW, size)
        tail = os.pread(fd, tail_len, size - tail_len) if size else b""
    except OSError as exc:
        return _unreadable(shown, f"cannot read the file: {exc.strerror or exc}")
    finally:
        os.close(fd)
    return probe_bytes(head, tail, size, shown)


def probe_bytes(head: bytes, tail: bytes, size: int, name: str = "") -> ProbeResult:
    """Probe an image from its first and last bytes (64 KiB each is enough; fewer is fine).

    `head` starts at offset 0 and `tail` ends at offset `size`. Never raises for bad data.
    """
    size = max(0, int(size))
    head = bytes(head[:size])
    tail = bytes(tail[len(tail) - min(len(tail), size) :]) if size else b""
    return _Prober(head, tail, size, name).run()


def _unreadable(path: str, problem: str) -> ProbeResult:
    return ProbeResult(path, None, None, 0, 0, 0, False, [problem], [])


# ---------------------------------------------------------------------------------------------
# The prober


class _Prober:
    def __init__(self, head: bytes, tail: bytes, size: int, name: str):
        self.head = head
        self.tail = tail
        self.size = size
        self.name = name
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.conversion: str | None = None

    # Reading from the two windows -----------------------------------------------------------

    def at(self, offset: int, n: int) -> bytes | None:
        """`n` bytes at `offset` if one of the windows holds them all, else None."""
        if offset < 0 or n < 0 or offset + n > self.size:
            return None
        if offset + n <= len(self.head):
            return self.head[offset : offset + n]
        tail_start = self.size - len(self.tail)
        if offset >= tail_start:
            return self.tail[offset - tail_start : offset - tail_start + n]
        return None

    # Result helpers ---------------------------------------------------------------------------

    def result(self, fmt: str | None, variant: str | None, virtual: int) -> ProbeResult:
        if fmt is not None and virtual >= MAX_IMAGE_BYTES:
            self.problems.append(
                f"virtual size {virtual} bytes is not under 16 TiB (the ImportInstance limit)"
            )
        if self.size >= MAX_IMAGE_BYTES:
            self.problems.append(f"the file ({self.size} bytes) is not under 16 TiB")
        importable = fmt in ("VMDK", "VHD", "RAW") and not self.problems
        return ProbeResult(
            path=self.name,
            format=fmt,
            variant=variant,
            file_bytes=self.size,
            virtual_bytes=virtual,
            volume_size_gib=volume_gib(virtual),
            importable=importable,
            problems=self.problems,
            warnings=self.warnings,
            conversion=self.conversion,
        )

    def convert_cmd(self) -> str:
        src = self.name or "IMAGE"
        p = PurePath(src)
        dst = p.with_name(p.stem + ("-stream.vmdk" if p.suffix.lower() == ".vmdk" else ".vmdk"))
        return (
            f"qemu-img convert -O vmdk -o subformat=streamOptimized "
            f"{shlex.quote(src)} {shlex.quote(str(dst))}"
        )

    def reject(
        self, what: str, variant: str, virtual: int = 0, fmt: str | None = None
    ) -> ProbeResult:
        problem = (
            f"{what} images are not accepted by ImportInstance (VMDK stream-optimized, VHD or "
            f"RAW only): convert it with `{self.convert_cmd()}`"
        )
        self.problems.append(problem)
        result = self.result(fmt, variant, virtual)
        if fmt is not None:
            result.conversion = problem  # qemu-img reads it: the file-level probe converts it
        return result

    # Dispatch ---------------------------------------------------------------------------------

    def run(self) -> ProbeResult:
        if self.size == 0:
            self.problems.append("the file is empty (0 bytes)")
            return self.result(None, None, 0)
        if self.head.lstrip().startswith(b"# Disk DescriptorFile"):
            return self.descriptor()  # a text file: often under one sector
        if self.size < SECTOR:
            self.problems.append(
                f"the file is {self.size} bytes: too small to be a disk image (under one sector)"
            )
            return self.result(None, None, 0)
        h = self.head
        if h.startswith(VMDK_MAGIC):
            return self.vmdk()
        if self.at(self.size - SECTOR, 8) == VHD_COOKIE:
            return self.vhd()
        if h.startswith(VHD_COOKIE):
            # A dynamic VHD keeps a copy of its footer at 0; the real one at the end is gone.
            self.problems.append(
                "VHD footer missing at the end of the file (its copy at offset 0 is there): "
                "the file is truncated"
            )
            return self.result("VHD", _vhd_type(h), _vhd_size(h))
        other = self.other_format()
        if other is not None:
            return other
        return self.raw()

    # VMDK -------------------------------------------------------------------------------------

    def vmdk(self) -> ProbeResult:
        header = self.at(0, 512)
        if header is None:
            self.problems.append("VMDK header truncated (under 512 bytes)")
            return self.result("VMDK", None, 0)
        (_, version, flags, capacity, grain, desc_off, desc_size, gtes, _rgd, gd, overhead, _u,
         lines, compress) = VMDK_HEADER.unpack_from(header)  # fmt: skip
        if gd == VMDK_GD_AT_END:
            # Stream-optimized files written in one pass put the real header in a footer at
            # EOF-1024 (then an end-of-stream marker).
            footer = self.at(self.size - 1024, 512)
            if footer is None or not footer.startswith(VMDK_MAGIC):
                self.problems.append(
                    "VMDK footer missing (the header says the grain directory is at the end): "
                    "the file is truncated"
                )
            else:
                (_, version, flags, capacity, grain, desc_off, desc_size, gtes, _rgd, gd,
                 overhead, _u, lines, compress) = VMDK_HEADER.unpack_from(footer)  # fmt: skip
        create_type = self.vmdk_create_type(desc_off, desc_size)
        virtual = capacity * SECTOR
        stream = (
            flags & VMDK_FLAG_COMPRESSED
            and flags & VMDK_FLAG_MARKERS
            and compress == VMDK_COMPRESS_DEFLATE
        )
        variant = create_type or ("streamOptimized" if stream else "monolithicSparse")

        if version not in (1, 2, 3):
            self.problems.append(f"VMDK header version {version} is unknown (expected 1, 2 or 3)")
        if lines != VMDK_LINE_CHECK:
            self.problems.append(
                "VMDK header damaged by a text-mode transfer (line-end check bytes are wrong): "
                "copy the file again in binary mode"
            )
        if capacity == 0:
            self.problems.append("VMDK capacity is 0 sectors: the header is corrupt")
        if grain < 1 or grain & (grain - 1):
            self.problems.append(f"VMDK grain size {grain} is not a power of two: corrupt header")
        if not stream and create_type == "streamOptimized":
            # The descriptor says stream-optimized and the header disagrees: damage, not a
            # format qemu-img could convert faithfully.
            self.problems.append(
                f"VMDK says createType=streamOptimized but its header is not (flags 0x{flags:x}, "
                f"compression {compress}): the file is damaged; not stream-optimized"
            )
        elif not stream:
            why = (
                f"flags 0x{flags:x}, compression {compress}"
                if create_type in (None, "streamOptimized")
                else f"createType {create_type}"
            )
            self.conversion = (
                f"VMDK {variant} is not stream-optimized ({why}); ImportInstance takes only "
                f"stream-optimized VMDK: convert it with `{self.convert_cmd()}`"
            )
            self.problems.append(self.conversion)
        elif create_type not in (None, "streamOptimized"):
            self.warnings.append(
                f"VMDK descriptor says createType={create_type} but the header is stream-optimized"
            )
        if not self.problems:
            self.vmdk_check_extent(grain, gd, gtes, overhead)
        return self.result("VMDK", variant, virtual)

    def vmdk_create_type(self, desc_off: int, desc_size: int) -> str | None:
        if not desc_off or not desc_size:
            return None
        desc = self.at(desc_off * SECTOR, min(desc_size * SECTOR, WINDOW))
        if desc is None:
            return None
        m = re.search(rb'createType\s*=\s*"([A-Za-z0-9_]{1,64})"', desc)
        return m.group(1).decode("ascii") if m else None

    def vmdk_check_extent(self, grain: int, gd: int, gtes: int, overhead: int) -> None:
        """Spot truncation from the grain tables the head window holds (constant work)."""
        if overhead * SECTOR > self.size:
            self.problems.append(
                f"VMDK metadata ({overhead * SECTOR} bytes) is larger than the file: truncated"
            )
            return
        if gd == VMDK_GD_AT_END or gtes == 0:
            return
        gd_bytes = self.at(gd * SECTOR, SECTOR)
        if gd_bytes is None:
            return
        last = 0
        for (gt_sector,) in struct.iter_unpack("<I", gd_bytes):
            table = self.at(gt_sector * SECTOR, gtes * 4) if gt_sector else None
            if table is None:
                continue
            for (grain_sector,) in struct.iter_unpack("<I", table):
                # 1 means "zero grain" in stream-optimized tables, not an offset.
                if grain_sector > 1:
                    last = max(last, grain_sector)
        if last and last * SECTOR >= self.size:
            self.problems.append(
                f"VMDK grain at byte {last * SECTOR} is past the end of the file "
                f"({self.size} bytes): the file is truncated"
            )
            return
        marker = self.at(last * SECTOR, 12) if last else None
        if marker is not None:
            _lba, length = struct.unpack("<QI", marker)
            if last * SECTOR + 12 + length > self.size:
                self.problems.append(
                    "VMDK last compressed grain runs past the end of the file: truncated"
                )

    # VHD --------------------------------------------------------------------------------------

    def vhd(self) -> ProbeResult:
        footer = self.at(self.size - SECTOR, SECTOR)
        assert footer is not None  # the caller read its cookie from the same window
        disk_type = struct.unpack_from(">I", footer, 60)[0]
        variant = VHD_TYPES.get(disk_type)
        virtual = _vhd_size(footer)
        stored, computed = struct.unpack_from(">I", footer, 64)[0], _vhd_checksum(footer, 64)
        if stored != computed:
            self.problems.append(
                f"VHD footer checksum is wrong (stored 0x{stored:08x}, computed 0x{computed:08x}):"
                " the footer is damaged"
            )
        if variant is None:
            self.problems.append(f"VHD disk type {disk_type} is unknown (2 fixed, 3 dynamic)")
        elif variant == "differencing":
            self.problems.append(
                "differencing VHD: it holds only changes to a parent disk, and AWS fails it with "
                "'ClientError: Footers not identical'; merge the chain into one image with "
                f"`{self.convert_cmd()}`"
            )
        elif variant == "fixed":
            data = self.size - SECTOR
            if data < virtual:
                self.problems.append(
                    f"fixed VHD holds {data} data bytes but its footer says {virtual}: "
                    "the file is truncated"
                )
            elif data > virtual:
                self.problems.append(
                    f"fixed VHD holds {data} data bytes but its footer says {virtual}: "
                    "extra bytes before the footer"
                )
        else:
            self.vhd_dynamic(footer)
        if struct.unpack_from(">I", footer, 12)[0] != 0x00010000:
            self.warnings.append("VHD file format version is not 1.0")
        return self.result("VHD", variant, virtual)

    def vhd_dynamic(self, footer: bytes) -> None:
        copy = self.at(0, SECTOR)
        if copy != footer:
            self.problems.append(
                "dynamic VHD: the footer copy at offset 0 differs from the footer at the end "
                "(AWS fails this with 'Footers not identical'): the file is damaged"
            )
            return
        offset = struct.unpack_from(">Q", footer, 16)[0]
        header = self.at(offset, 1024)
        if header is None:
            if offset + 1024 > self.size:
                self.problems.append("dynamic VHD header is past the end of the file: truncated")
            return
        if not header.startswith(VHD_DYNAMIC_COOKIE):
            self.problems.append(f"dynamic VHD header missing at byte {offset} (no 'cxsparse')")
            return
        stored, computed = struct.unpack_from(">I", header, 36)[0], _vhd_checksum(header, 36)
        if stored != computed:
            self.problems.append(
                f"dynamic VHD header checksum is wrong (stored 0x{stored:08x}, "
                f"computed 0x{computed:08x}): the header is damaged"
            )
        table = struct.unpack_from(">Q", header, 16)[0]
        if table >= self.size:
            self.problems.append("dynamic VHD block table is past the end of the file: truncated")

    # Recognised but not accepted --------------------------------------------------------------

    def other_format(self) -> ProbeResult | None:
        h = self.head
        if h.startswith(b"vhdxfile"):
            return self.reject("VHDX", "VHDX", fmt="VHDX")
        if h.startswith(b"QFI\xfb") and len(h) >= 32:
            (version,) = struct.unpack_from(">I", h, 4)
            (virtual,) = struct.unpack_from(">Q", h, 24)
            kind = "QCOW2" if version >= 2 else "QCOW"
            return self.reject(kind, f"v{version}", virtual, fmt=kind)
        if h.startswith(b"QED\0"):
            return self.reject("QED", "QED", fmt="QED")
        if self.at(0x40, 4) == b"\x7f\x10\xda\xbe" or h.startswith(b"<<< "):
            return self.vdi()
        if h.startswith(b"WithoutFreeSpace") or h.startswith(b"WithouFreSpacExt"):
            return self.reject("Parallels", "Parallels", fmt="Parallels")
        if h.startswith(b"COWD"):
            return self.reject("VMware ESX COW sparse (COWD)", "COWD")
        if h[:512].lstrip().startswith(b"# Disk DescriptorFile"):
            return self.descriptor()
        if self.at(257, 5) == b"ustar":
            self.problems.append(
                "this is a tar archive (an OVA?): extract it (`tar xf "
                f"{shlex.quote(self.name or 'IMAGE')}`) and probe the disk image inside"
            )
            return self.result(None, "OVA (tar)", 0)
        for magic, kind in _COMPRESSED:
            if h.startswith(magic):
                self.problems.append(f"this is a {kind} file: decompress it first, then probe")
                return self.result(None, kind, 0)
        if self.at(0x8001, 5) == b"CD001":
            self.problems.append("this is an ISO 9660 image (install media), not a disk image")
            return self.result(None, "ISO 9660", 0)
        return None

    def descriptor(self) -> ProbeResult:
        m = re.search(rb'createType\s*=\s*"([A-Za-z0-9_]{1,64})"', self.head[:WINDOW])
        kind = m.group(1).decode("ascii") if m else "unknown"
        self.problems.append(
            f"this is a VMDK descriptor file (createType={kind}): the disk data lives in "
            "separate extent files; make one stream-optimized VMDK from it with "
            f"`{self.convert_cmd()}`"
        )
        return self.result(None, f"VMDK descriptor ({kind})", 0)

    def vdi(self) -> ProbeResult:
        """VirtualBox VDI: header at 0x40 (signature, version, type), disk size at 0x170."""
        header = self.at(0x40, 0x138)
        variant, virtual = "VDI", 0
        if header is not None and header[:4] == b"\x7f\x10\xda\xbe":
            (image_type,) = struct.unpack_from("<I", header, 0x0C)
            variant = {1: "dynamic", 2: "fixed", 3: "undo", 4: "differencing"}.get(
                image_type, "VDI"
            )
            (virtual,) = struct.unpack_from("<Q", header, 0x130)
        return self.reject("VirtualBox VDI", variant, virtual, fmt="VDI")

    # RAW --------------------------------------------------------------------------------------

    def raw(self) -> ProbeResult:
        variant: str | None = None
        mbr = self.at(0, SECTOR)
        if mbr is not None and mbr[510:512] == b"\x55\xaa":
            types = [mbr[446 + 16 * i + 4] for i in range(4)]
            gpt = self.at(SECTOR, 8) == b"EFI PART" or self.at(4096, 8) == b"EFI PART"
            if 0xEE in types and gpt:
                variant = "GPT"
                self.warnings.append(
                    "GPT partition table: ImportInstance converts BIOS-booting Windows; a "
                    "UEFI-only guest may not boot"
                )
            else:
                variant = "MBR"
        else:
            self.warnings.append(
                "no MBR or GPT partition table at the start: is this really a bootable disk image?"
            )
        if self.size % SECTOR:
            self.warnings.append(
                f"size {self.size} is not a multiple of 512 bytes: the image may be truncated"
            )
        stray = self.tail.rfind(VHD_COOKIE)
        if stray >= 0:
            back = len(self.tail) - stray
            if back < SECTOR:
                # Part of a VHD footer in the last sector: a VHD cut short by a few bytes.
                self.problems.append(
                    f"a VHD footer starts {back} bytes before the end instead of 512: "
                    "a truncated VHD"
                )
                return self.result("VHD", None, 0)
            self.warnings.append(
                f"a VHD footer appears {back} bytes before the end: a VHD that was truncated "
                "or has bytes appended?"
            )
        return self.result("RAW", variant, self.size)


_COMPRESSED = (
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"BZh", "bzip2"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip"),
    (b"PK\x03\x04", "zip"),
)


def _vhd_checksum(block: bytes, at: int) -> int:
    """One's complement of the byte sum, the checksum field (4 bytes at `at`) counted as 0."""
    total = sum(block) - sum(block[at : at + 4])
    return ~total & 0xFFFFFFFF


def _vhd_size(footer: bytes) -> int:
    return int(struct.unpack_from(">Q", footer, 48)[0]) if len(footer) >= 56 else 0


def _vhd_type(footer: bytes) -> str | None:
    return VHD_TYPES.get(struct.unpack_from(">I", footer, 60)[0]) if len(footer) >= 64 else None
