"""What a disk source on disk is, and what will happen to it (the plan): the file-level half of
the probe (docs/design.md, "The probe's plan").

`disk.probe_bytes` reads one image from two byte windows; here we read what lives in files:
VMDK descriptors and their extents, OVA archives (a tar holding an .ovf and its disks), OVF
folders, the formats qemu-img must open for us (VHDX, QCOW2, VDI, ...), and how much of a RAW
or fixed VHD holds data. Then the plan: upload the file as it is, convert it with qemu-img to a
stream-optimized VMDK, or upload the stream-optimized VMDK inside an OVA straight from the tar.
"""

from __future__ import annotations

import os
import re
import shlex
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path, PurePath
from typing import Any, Literal

from tui.core import qemu
from tui.core.disk import SECTOR, WINDOW, ProbeResult, probe_bytes, volume_gib
from tui.core.facts import CONVERT_MIN_SAVED_BYTES, CONVERT_MIN_SAVING, MAX_IMAGE_BYTES
from tui.core.units import human_bytes

ConvertMode = Literal["auto", "always", "never"]
CONVERT_MODES: tuple[ConvertMode, ...] = ("auto", "always", "never")

# Plan actions (probe --json "plan.action"; docs/design.md).
UPLOAD = "upload"
CONVERT = "convert"
UPLOAD_FROM_OVA = "upload-from-ova"

# Formats ImportInstance does not take that qemu-img reads: ours name -> qemu-img's.
QEMU_FORMATS = {
    "VHDX": "vhdx",
    "QCOW2": "qcow2",
    "QCOW": "qcow",
    "VDI": "vdi",
    "QED": "qed",
    "Parallels": "parallels",
    "VMDK": "vmdk",
    "VHD": "vpc",
    "RAW": "raw",
}
DESCRIPTOR_MAGIC = b"# Disk DescriptorFile"
MAX_DESCRIPTOR_BYTES = 64 * 1024
MAX_OVF_BYTES = 4 * 1024 * 1024
_EXTENT_RE = re.compile(
    r"^\s*(RW|RDONLY|NOACCESS)\s+(\d+)\s+(FLAT|SPARSE|ZERO|VMFS|VMFSSPARSE|VMFSRDM|VMFSRAW)"
    r'(?:\s+"([^"]+)"(?:\s+(\d+))?)?',
    re.MULTILINE,
)
SAMPLES = 256  # blocks read by the zero scan of a file without holes
SAMPLE_BYTES = 64 * 1024


def probe_source(path: str | os.PathLike[str], convert: ConvertMode = "auto") -> ProbeResult:
    """Probe the disk source at `path` (an image, a VMDK descriptor, an OVA, an .ovf or a
    folder holding one) and fill in its plan for the given `convert` mode."""
    from tui.core.disk import probe_image

    shown = os.fspath(path)
    p = Path(shown)
    if p.is_dir():
        ovfs = sorted(p.glob("*.ovf"))
        if len(ovfs) != 1:
            if not ovfs:
                return _bad(shown, "is a directory, not a disk image (nor an OVF folder: no .ovf)")
            return _bad(shown, f"is a folder with {len(ovfs)} .ovf files: give one .ovf file")
        return _ovf(shown, ovfs[0].read_bytes()[:MAX_OVF_BYTES], ovfs[0].parent, convert)
    head = _head(p)
    if head is not None:
        if head.lstrip().startswith(DESCRIPTOR_MAGIC):
            return _descriptor(shown, p, convert)
        if head[257:262] == b"ustar":
            return _ova(shown, p, convert)
        if _looks_like_ovf(head):
            return _ovf(shown, p.read_bytes()[:MAX_OVF_BYTES], p.parent, convert)
    result = probe_image(shown)
    if result.format is None and not result.conversion:
        return result
    return _plan_image(result, p, convert)


# ---------------------------------------------------------------------------------------------
# Plans


def plan_line(result: ProbeResult) -> str:
    """The plan in one line: "VHDX, 40 GiB virtual -> stream-optimized VMDK, about 11 GiB to
    send"."""
    assert result.plan is not None
    send = human_bytes(int(result.plan["send_bytes_estimate"]))
    virtual = f"{result.format}, {human_bytes(result.virtual_bytes)} virtual"
    action = result.plan["action"]
    if action == "convert":
        return f"{virtual} -> stream-optimized VMDK (qemu-img), about {send} to send"
    if action == "upload-from-ova":
        return f"{virtual} -> its stream-optimized VMDK sent from the archive, {send} to send"
    return f"{virtual} -> sent as it is, {send} to send"


def stream_estimate(allocated: int, virtual: int) -> int:
    """About the size of the stream-optimized VMDK of an image holding `allocated` data bytes:
    at most the data (deflate only shrinks it) plus a grain table entry a 64 KiB grain and the
    headers and markers."""
    return int(allocated + virtual // 16384 + 128 * 1024)


def _set_plan(
    result: ProbeResult, action: str, reason: str, send: int, source: list[str] | None = None
) -> ProbeResult:
    if action == CONVERT:
        send = stream_estimate(send, result.virtual_bytes)
    result.plan = {
        "action": action,
        "reason": reason,
        "send_bytes_estimate": int(send),
        "upload_format": "VMDK" if action != UPLOAD else result.format,
    }
    result.convert_from = source or []
    result.importable = not result.problems
    return result


def _never(result: ProbeResult, what: str) -> ProbeResult:
    result.problems.append(
        f"{what} must be converted to a stream-optimized VMDK, and the profile says "
        f'convert = "never": set convert = "auto" (or convert it yourself: '
        f"`{convert_cmd(result.path)}`)"
    )
    result.importable = False
    return result


def convert_cmd(src: str) -> str:
    p = PurePath(src or "IMAGE")
    dst = p.with_name(p.stem + ("-stream.vmdk" if p.suffix.lower() == ".vmdk" else ".vmdk"))
    return (
        "qemu-img convert -O vmdk -o subformat=streamOptimized "
        f"{shlex.quote(str(p))} {shlex.quote(str(dst))}"
    )


def _plan_image(result: ProbeResult, p: Path, convert: ConvertMode) -> ProbeResult:
    """The plan for one image file (not a descriptor or an archive)."""
    if result.conversion:
        # Recognised, not taken by ImportInstance: qemu-img opens it (and says if it is bad).
        fmt = result.format or ""
        if result.conversion in result.problems:
            result.problems.remove(result.conversion)
        if result.problems:
            result.importable = False
            return result
        if not _qemu_check(result, [str(p)], QEMU_FORMATS.get(fmt)):
            return result
        what = f"{fmt} {result.variant}" if result.variant and fmt == "VMDK" else fmt
        if convert == "never":
            return _never(result, what)
        send = result.allocated_bytes or result.file_bytes
        return _set_plan(
            result,
            CONVERT,
            f"ImportInstance does not take {what}: qemu-img converts it to a stream-optimized VMDK",
            send,
            ["-f", QEMU_FORMATS.get(fmt, "raw"), str(p)],
        )
    if not result.importable:
        return result
    descriptor = _flat_beside(p)
    if descriptor is not None:
        result.warnings.append(
            f"this is the data extent of the ESXi descriptor {descriptor.name} beside it: "
            "it is read as RAW (the same disk); probe the descriptor to see its geometry"
        )
    fmt = result.format or "RAW"
    stream = fmt == "VMDK"  # probe_bytes takes VMDK only when it is stream-optimized
    kind = f"{fmt} {result.variant or ''}".strip()
    if stream or convert == "never":
        return _set_plan(result, UPLOAD, f"ImportInstance takes {kind} as it is", result.file_bytes)
    # A block device is sent as it is: its content can change without its mtime, so a cached
    # conversion of it could not be told stale.
    fixed = (fmt == "RAW" or (fmt == "VHD" and result.variant == "fixed")) and p.is_file()
    start, length = 0, result.file_bytes
    if fmt == "VHD":
        length -= SECTOR  # the footer
    allocated = allocated_estimate(p, start, length) if fixed else result.file_bytes
    result.allocated_bytes = allocated
    source = ["-f", QEMU_FORMATS[fmt], str(p)]
    saving = 1.0 - allocated / result.file_bytes if result.file_bytes else 0.0
    if convert == "always":
        return _set_plan(result, CONVERT, 'the profile says convert = "always"', allocated, source)
    saved = result.file_bytes - allocated
    if fixed and saving > CONVERT_MIN_SAVING and saved >= CONVERT_MIN_SAVED_BYTES:
        return _set_plan(
            result,
            CONVERT,
            f"about {saving:.0%} of the {fmt} is zeros: a stream-optimized VMDK sends about "
            f"{allocated} of its {result.file_bytes} bytes",
            allocated,
            source,
        )
    why = (
        f"about {saving:.0%} of it is zeros ({saved} bytes; converting pays over "
        f"{CONVERT_MIN_SAVING:.0%} and {CONVERT_MIN_SAVED_BYTES >> 20} MiB): sent as it is"
        if fixed
        else "ImportInstance takes it as it is"
    )
    return _set_plan(result, UPLOAD, f"{kind}: {why}", result.file_bytes)


def _qemu_check(result: ProbeResult, source: list[str], fmt: str | None) -> bool:
    """qemu-img opens the image: its virtual size, backing file and damage. False (with the
    problem in `result`) when it cannot be converted."""
    spec = source[-1]
    try:
        data = qemu.info(spec, fmt)
    except qemu.QemuImgMissing as exc:
        result.problems.append(str(exc.message))
        result.importable = False
        return False
    except qemu.QemuImgFailed as exc:
        result.problems.append(
            f"qemu-img cannot read this {result.format or 'image'}: {exc.message} "
            "(is it damaged or truncated?)"
        )
        result.importable = False
        return False
    backing = data.get("backing-filename") or data.get("full-backing-filename")
    if backing:
        result.problems.append(
            f"this {result.format} has a backing file ({backing}): it holds only changes to "
            f"that disk; flatten the chain into one image with `{convert_cmd(result.path)}`"
        )
        result.importable = False
        return False
    virtual = int(data.get("virtual-size") or 0)
    if virtual:
        result.virtual_bytes = virtual
        result.volume_size_gib = volume_gib(virtual)
    if virtual >= MAX_IMAGE_BYTES:
        result.problems.append(f"virtual size {virtual} bytes is not under 16 TiB")
        result.importable = False
        return False
    actual = data.get("actual-size")
    if isinstance(actual, int) and actual > 0 and result.allocated_bytes is None:
        result.allocated_bytes = min(actual, virtual or actual)
    return True


# ---------------------------------------------------------------------------------------------
# VMDK descriptors


def _descriptor(shown: str, p: Path, convert: ConvertMode) -> ProbeResult:
    raw = p.read_bytes()[:MAX_DESCRIPTOR_BYTES]
    text = raw.decode("utf-8", "replace")
    m = re.search(r'createType\s*=\s*"([A-Za-z0-9_]{1,64})"', text)
    kind = m.group(1) if m else "unknown"
    result = ProbeResult(shown, "VMDK", kind, p.stat().st_size, 0, 0, False)
    result.variant = f"descriptor ({kind})"
    folder = p.parent
    total = 0
    allocated = 0
    for access, sectors, etype, name, _offset in _EXTENT_RE.findall(text):
        total += int(sectors) * SECTOR
        if not name:
            result.extents.append({"path": None, "type": etype, "found": True, "bytes": 0})
            continue
        ext = folder / name
        found = ext.is_file()
        size = ext.stat().st_size if found else 0
        result.extents.append(
            {"path": str(ext), "type": etype, "access": access, "found": found, "bytes": size}
        )
        if found and etype in ("FLAT", "VMFS"):
            allocated += allocated_estimate(ext)  # raw data: its zeros are not sent
        elif found:
            allocated += min(size, ext.stat().st_blocks * 512)
    result.virtual_bytes = total
    result.volume_size_gib = volume_gib(total)
    result.allocated_bytes = allocated
    parent = re.search(r"parentCID\s*=\s*([0-9a-fA-F]+)", text)
    if (parent and parent.group(1).lower() != "ffffffff") or "parentFileNameHint" in text:
        result.problems.append(
            "this VMDK is a snapshot (delta) of a parent disk: flatten the chain into one image "
            f"with `{convert_cmd(shown)}`"
        )
    if not result.extents:
        result.problems.append('the VMDK descriptor lists no extents (no `RW ... "file"` lines)')
    missing = [e["path"] for e in result.extents if not e["found"]]
    if missing:
        result.problems.append(
            f"the descriptor's extent {'file is' if len(missing) == 1 else 'files are'} missing: "
            f"{', '.join(str(m) for m in missing)}; copy {'it' if len(missing) == 1 else 'them'} "
            f"into {folder} beside the descriptor"
        )
    if result.problems:
        return result
    if not _qemu_check(result, [str(p)], "vmdk"):
        return result
    if convert == "never":
        return _never(result, f"a VMDK {kind} (descriptor and extents)")
    return _set_plan(
        result,
        CONVERT,
        f"a {kind} VMDK keeps its data in {len(result.extents)} extent file(s) ImportInstance "
        "cannot read: qemu-img joins them into one stream-optimized VMDK",
        allocated,
        ["-f", "vmdk", str(p)],
    )


def _flat_beside(p: Path) -> Path | None:
    """The descriptor an ESXi `NAME-flat.vmdk` belongs to, when it is beside it."""
    if not p.name.lower().endswith("-flat.vmdk"):
        return None
    desc = p.with_name(p.name[: -len("-flat.vmdk")] + ".vmdk")
    return desc if desc.is_file() else None


# ---------------------------------------------------------------------------------------------
# OVA and OVF


def _looks_like_ovf(head: bytes) -> bool:
    start = head[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    return start.startswith(b"<?xml") and b"Envelope" in head[:WINDOW]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _attr(el: ET.Element, name: str) -> str | None:
    for key, value in el.attrib.items():
        if _local(key) == name:
            return value
    return None


_UNITS_RE = re.compile(r"byte\s*\*\s*(\d+)\s*\^\s*(\d+)")


def _ovf_disks(data: bytes) -> list[dict[str, Any]] | str:
    """The disks an OVF descriptor lists, in order: {"href", "capacity", "format"}; a string
    when the XML cannot be read."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        return f"the .ovf is not valid XML ({exc})"
    files: dict[str, str] = {}
    for el in root.iter():
        if _local(el.tag) == "File":
            fid, href = _attr(el, "id"), _attr(el, "href")
            if fid and href:
                files[fid] = href
    disks = []
    for el in root.iter():
        if _local(el.tag) != "Disk":
            continue
        capacity = int(_attr(el, "capacity") or 0)
        units = _UNITS_RE.search(_attr(el, "capacityAllocationUnits") or "")
        if units:
            capacity *= int(units.group(1)) ** int(units.group(2))
        ref = _attr(el, "fileRef")
        disks.append(
            {
                "href": files.get(ref or ""),
                "capacity": capacity,
                "format": (_attr(el, "format") or "").rsplit("#", 1)[-1] or None,
            }
        )
    return disks


def _ova(shown: str, p: Path, convert: ConvertMode) -> ProbeResult:
    size = p.stat().st_size
    result = ProbeResult(shown, "OVA", None, size, 0, 0, False)
    try:
        with tarfile.open(p, "r:") as tar:
            members = {m.name: m for m in tar.getmembers() if m.isfile()}
            ovfs = [m for name, m in members.items() if name.lower().endswith(".ovf")]
            if not ovfs:
                result.format = None
                result.variant = "tar"
                result.problems.append(
                    "this is a tar archive but not an OVA: it holds no .ovf descriptor; "
                    f"extract it (`tar xf {shlex.quote(shown)}`) and probe the disk image inside"
                )
                return result
            fh = tar.extractfile(ovfs[0])
            assert fh is not None
            disks = _ovf_disks(fh.read(MAX_OVF_BYTES))
    except (tarfile.TarError, OSError) as exc:
        result.problems.append(f"cannot read the OVA (tar): {exc}")
        return result
    if isinstance(disks, str):
        result.problems.append(f"the OVA's {ovfs[0].name}: {disks}")
        return result
    if not disks:
        result.problems.append(
            f"the OVA's {ovfs[0].name} lists no disk: there is nothing to import"
        )
        return result
    first, rest = disks[0], disks[1:]
    member = members.get(first["href"] or "")
    if member is None:
        result.problems.append(
            f"the OVA's first disk {first['href']!r} is not in the archive: the OVA is incomplete"
        )
        return result
    if rest:
        result.warnings.append(
            f"the OVA holds {len(disks)} disks: the first ({first['href']}) is imported; left "
            f"out: {', '.join(str(d['href']) for d in rest)} (ImportInstance takes one disk)"
        )
    offset, length = member.offset_data, member.size
    inner = _probe_range(p, offset, length, f"{shown}:{member.name}")
    result.ova = {
        "ovf": ovfs[0].name,
        "disk": member.name,
        "offset": offset,
        "length": length,
        "disk_format": inner.format,
        "disk_variant": inner.variant,
        "left_out": [d["href"] for d in rest],
    }
    result.variant = f"{inner.format or 'unknown'} {inner.variant or ''}".strip()
    result.virtual_bytes = inner.virtual_bytes or first["capacity"]
    result.volume_size_gib = volume_gib(result.virtual_bytes)
    spec = _range_spec(p, offset, length, QEMU_FORMATS.get(inner.format or "", "raw"))
    if inner.format == "VMDK" and inner.importable:
        # A stream-optimized VMDK: its bytes go from the tar as they are.
        return _set_plan(
            result,
            UPLOAD_FROM_OVA,
            f"the OVA's disk {member.name} is a stream-optimized VMDK: its {length} bytes are "
            "uploaded straight from the archive (no copy)",
            length,
            [spec],
        )
    if inner.format is None and not inner.conversion:
        result.problems.append(
            f"the OVA's disk {member.name}: " + ("; ".join(inner.problems) or "not a disk image")
        )
        return result
    if not _qemu_check(result, [spec], None):
        return result
    if convert == "never":
        return _never(result, f"the OVA's {inner.format} disk")
    return _set_plan(
        result,
        CONVERT,
        f"the OVA's disk {member.name} is {result.variant}, not stream-optimized: qemu-img "
        "converts it from the archive",
        result.allocated_bytes or length,
        [spec],
    )


def _ovf(shown: str, data: bytes, folder: Path, convert: ConvertMode) -> ProbeResult:
    disks = _ovf_disks(data)
    result = ProbeResult(shown, "OVF", None, len(data), 0, 0, False)
    if isinstance(disks, str):
        result.problems.append(disks)
        return result
    if not disks or not disks[0]["href"]:
        result.problems.append("the .ovf lists no disk: there is nothing to import")
        return result
    first = disks[0]
    disk = folder / str(first["href"])
    if not disk.is_file():
        result.problems.append(f"the .ovf's first disk {disk} is missing: copy it beside the .ovf")
        return result
    inner = probe_source(disk, convert)
    inner.warnings[:0] = [f"OVF {shown}: its first disk is {disk}"] + (
        [
            f"the OVF lists {len(disks)} disks: the first is imported; left out: "
            + ", ".join(str(d["href"]) for d in disks[1:])
        ]
        if len(disks) > 1
        else []
    )
    return inner


def _range_spec(p: Path, offset: int, length: int, fmt: str) -> str:
    """A qemu-img image spec reading `length` bytes at `offset` of `p` as format `fmt`."""
    import json

    inner = {
        "driver": "raw",
        "offset": offset,
        "size": length,
        "file": {"driver": "file", "filename": str(p.resolve())},
    }
    return "json:" + json.dumps({"driver": fmt, "file": inner})


def _probe_range(p: Path, offset: int, length: int, name: str) -> ProbeResult:
    with p.open("rb") as fh:
        fh.seek(offset)
        head = fh.read(min(WINDOW, length))
        tail_len = min(WINDOW, length)
        fh.seek(offset + length - tail_len)
        tail = fh.read(tail_len)
    return probe_bytes(head, tail, length, name)


# ---------------------------------------------------------------------------------------------
# Helpers


def _head(p: Path) -> bytes | None:
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        if not os.path.isfile(p):
            return None
        return os.pread(fd, WINDOW, 0)
    except OSError:
        return None
    finally:
        os.close(fd)


def _bad(shown: str, problem: str) -> ProbeResult:
    return ProbeResult(shown, None, None, 0, 0, 0, False, [problem], [])


def allocated_estimate(p: Path, start: int = 0, length: int | None = None) -> int:
    """About how many bytes of `p[start:start+length]` hold data: the data extents the file
    system knows (SEEK_DATA/SEEK_HOLE), and within them a sampled scan for zero blocks (a file
    copied without holes is all data to the file system)."""
    end = p.stat().st_size if length is None else start + length
    if end <= start:
        return 0
    extents: list[tuple[int, int]] = []
    with p.open("rb") as fh:
        fd = fh.fileno()
        try:
            pos = start
            while pos < end and len(extents) < 100_000:
                try:
                    data = os.lseek(fd, pos, os.SEEK_DATA)
                except OSError:  # ENXIO: no data after pos
                    break
                if data >= end:
                    break
                hole = min(os.lseek(fd, data, os.SEEK_HOLE), end)
                extents.append((data, hole))
                pos = hole
            else:
                if pos < end:
                    extents.append((pos, end))
        except (OSError, AttributeError):
            extents = [(start, end)]
        in_extents = sum(b - a for a, b in extents)
        if in_extents == 0:
            return 0
        # Sample the data extents for blocks of zeros, evenly over their total length.
        step = max(SAMPLE_BYTES, in_extents // SAMPLES)
        seen = zero = 0
        for a, b in extents:
            at = a
            while at < b:
                n = min(SAMPLE_BYTES, b - at)
                block = os.pread(fd, n, at)
                seen += len(block)
                if block.count(0) == len(block):
                    zero += len(block)
                at += step
        share = 1.0 - zero / seen if seen else 1.0
    return int(in_extents * share)
