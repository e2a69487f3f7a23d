"""Probing real images made by qemu-img in this run, hand-corrupted files and random bytes."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui.core.disk import GIB, WINDOW, ProbeResult, probe, probe_bytes, probe_image, volume_gib

MIB = 1 << 20
CONVERT = "qemu-img convert -O vmdk -o subformat=streamOptimized"


def _ok(result: ProbeResult) -> None:
    assert result.importable, result.problems
    assert result.problems == []


# ---------------------------------------------------------------------------------------------
# Real images


def test_raw(disk_images: dict[str, Path]) -> None:
    r = probe(disk_images["raw"])
    _ok(r)
    assert (r.format, r.variant) == ("RAW", "MBR")
    assert r.file_bytes == r.virtual_bytes == 4 * MIB
    assert r.volume_size_gib == 1
    assert r.warnings == []


def test_vhd_fixed(disk_images: dict[str, Path]) -> None:
    r = probe(disk_images["vhd_fixed"])
    _ok(r)
    assert (r.format, r.variant) == ("VHD", "fixed")
    # qemu-img rounds the virtual size to CHS geometry; the file is that plus the footer.
    assert r.virtual_bytes >= 4 * MIB
    assert r.file_bytes == r.virtual_bytes + 512


def test_vhd_dynamic(disk_images: dict[str, Path]) -> None:
    r = probe(disk_images["vhd_dynamic"])
    _ok(r)
    assert (r.format, r.variant) == ("VHD", "dynamic")
    assert r.virtual_bytes == probe(disk_images["vhd_fixed"]).virtual_bytes
    assert r.file_bytes < r.virtual_bytes


def test_vhd_differencing_rejected(disk_images: dict[str, Path]) -> None:
    r = probe(disk_images["vhd_differencing"])
    assert (r.format, r.variant, r.importable) == ("VHD", "differencing", False)
    assert "Footers not identical" in r.problems[0]
    assert CONVERT in r.problems[0]


def test_vmdk_stream_optimized(disk_images: dict[str, Path]) -> None:
    r = probe(disk_images["vmdk_stream"])
    _ok(r)
    assert (r.format, r.variant) == ("VMDK", "streamOptimized")
    assert r.virtual_bytes == 4 * MIB
    assert r.file_bytes < r.virtual_bytes


def test_vmdk_monolithic_sparse_rejected_with_exact_command(disk_images: dict[str, Path]) -> None:
    """Refused with the command to run when the profile says convert = "never"."""
    path = disk_images["vmdk_sparse"]
    r = probe(path, convert="never")
    assert (r.format, r.variant, r.importable) == ("VMDK", "monolithicSparse", False)
    assert r.virtual_bytes == 4 * MIB
    (problem,) = r.problems
    assert f"`{CONVERT} {path} {path.with_name('sparse-stream.vmdk')}`" in problem


@pytest.mark.parametrize(("name", "fmt"), [("vhdx", "VHDX"), ("qcow2", "QCOW2")])
def test_other_formats_refused_with_hint_when_never_converted(
    disk_images: dict[str, Path], name: str, fmt: str
) -> None:
    path = disk_images[name]
    r = probe(path, convert="never")
    assert r.format == fmt and not r.importable
    assert 'convert = "never"' in r.problems[0]
    assert f"{CONVERT} {path} {path.with_suffix('.vmdk')}" in r.problems[0]


@pytest.mark.parametrize(
    ("name", "fmt"), [("vhdx", "VHDX"), ("qcow2", "QCOW2"), ("vmdk_sparse", "VMDK")]
)
def test_other_formats_planned_for_conversion(
    disk_images: dict[str, Path], name: str, fmt: str
) -> None:
    r = probe(disk_images[name])
    _ok(r)
    assert r.format == fmt and r.virtual_bytes == 4 * MIB
    assert r.plan is not None and r.plan["action"] == "convert"
    assert r.plan["upload_format"] == "VMDK"


def test_qcow2_reports_virtual_size(disk_images: dict[str, Path]) -> None:
    assert probe(disk_images["qcow2"]).virtual_bytes == 4 * MIB


def test_probe_bytes_matches_probe(disk_images: dict[str, Path]) -> None:
    """The sandbox probes a reassembled image from its two ends: same answer as the file."""
    for path in disk_images.values():
        data = path.read_bytes()
        from_bytes = probe_bytes(data[:WINDOW], data[-WINDOW:], len(data), str(path))
        assert from_bytes == probe_image(path), path.name


def test_json_fields_are_the_contract(disk_images: dict[str, Path]) -> None:
    assert list(probe(disk_images["raw"]).to_json()) == [
        "path",
        "format",
        "variant",
        "file_bytes",
        "virtual_bytes",
        "volume_size_gib",
        "importable",
        "problems",
        "warnings",
        "allocated_bytes",
        "extents",
        "ova",
        "plan",
    ]


# ---------------------------------------------------------------------------------------------
# Hand-corrupted files


def _copy(src: Path, dst: Path, cut: int = 0) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) - cut] if cut else data)
    return dst


def test_truncated_dynamic_vhd(disk_images: dict[str, Path], tmp_path: Path) -> None:
    r = probe(_copy(disk_images["vhd_dynamic"], tmp_path / "t.vhd", cut=4096))
    assert (r.format, r.importable) == ("VHD", False)
    assert "truncated" in r.problems[0]


def test_fixed_vhd_cut_inside_footer(disk_images: dict[str, Path], tmp_path: Path) -> None:
    r = probe(_copy(disk_images["vhd_fixed"], tmp_path / "t.vhd", cut=100))
    assert not r.importable
    assert "truncated VHD" in r.problems[0]


def test_truncated_stream_vmdk(disk_images: dict[str, Path], tmp_path: Path) -> None:
    src = disk_images["vmdk_stream"]
    r = probe(_copy(src, tmp_path / "t.vmdk", cut=src.stat().st_size // 2))
    assert (r.format, r.importable) == ("VMDK", False)
    assert "truncated" in r.problems[0]


def test_vmdk_header_only(disk_images: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "h.vmdk"
    path.write_bytes(disk_images["vmdk_stream"].read_bytes()[:700])
    r = probe(path)
    assert not r.importable and "truncated" in " ".join(r.problems)


def test_bad_vhd_checksum(disk_images: dict[str, Path], tmp_path: Path) -> None:
    path = _copy(disk_images["vhd_fixed"], tmp_path / "c.vhd")
    with path.open("r+b") as fh:
        fh.seek(-512 + 48, os.SEEK_END)  # current size: changes the sum, checksum kept
        fh.write(struct.pack(">Q", 8 * MIB))
    r = probe(path)
    assert (r.format, r.importable) == ("VHD", False)
    assert "checksum is wrong" in r.problems[0]


def test_dynamic_vhd_footers_not_identical(disk_images: dict[str, Path], tmp_path: Path) -> None:
    path = _copy(disk_images["vhd_dynamic"], tmp_path / "d.vhd")
    with path.open("r+b") as fh:
        fh.seek(100)  # inside the reserved area of the copy at offset 0
        fh.write(b"\x01")
    r = probe(path)
    assert not r.importable
    assert "Footers not identical" in r.problems[0]


def test_dynamic_vhd_bad_header_checksum(disk_images: dict[str, Path], tmp_path: Path) -> None:
    path = _copy(disk_images["vhd_dynamic"], tmp_path / "h.vhd")
    with path.open("r+b") as fh:
        fh.seek(512 + 32)  # block size in the dynamic header
        fh.write(struct.pack(">I", 4096))
    r = probe(path)
    assert not r.importable
    assert "dynamic VHD header checksum" in r.problems[0]


def test_bad_vmdk_magic_becomes_raw_without_partition_table(
    disk_images: dict[str, Path], tmp_path: Path
) -> None:
    path = _copy(disk_images["vmdk_stream"], tmp_path / "m.vmdk")
    with path.open("r+b") as fh:
        fh.write(b"XDMV")
    r = probe(path)
    # Without its magic nothing says VMDK: it is "anything else", i.e. RAW, with a warning.
    assert r.format == "RAW" and r.variant is None
    assert "no MBR or GPT" in r.warnings[0]


def test_vmdk_text_mode_damage(disk_images: dict[str, Path], tmp_path: Path) -> None:
    path = _copy(disk_images["vmdk_stream"], tmp_path / "ftp.vmdk")
    with path.open("r+b") as fh:
        fh.seek(75)
        fh.write(b"\n\n")  # "\r\n" became "\n": an ASCII-mode transfer
    r = probe(path)
    assert not r.importable and "text-mode" in r.problems[0]


def test_vmdk_claiming_stream_but_uncompressed(
    disk_images: dict[str, Path], tmp_path: Path
) -> None:
    path = _copy(disk_images["vmdk_stream"], tmp_path / "x.vmdk")
    with path.open("r+b") as fh:
        fh.seek(77)
        fh.write(struct.pack("<H", 0))
    r = probe(path)
    assert not r.importable  # damaged: qemu-img would read its deflated grains as data
    assert "not stream-optimized" in r.problems[0] and "damaged" in r.problems[0]


def test_zero_bytes(tmp_path: Path) -> None:
    path = tmp_path / "empty.raw"
    path.touch()
    r = probe(path)
    assert (r.format, r.importable, r.problems) == (None, False, ["the file is empty (0 bytes)"])


def test_tiny_file(tmp_path: Path) -> None:
    path = tmp_path / "tiny"
    path.write_bytes(b"KDMV")
    r = probe(path)
    assert not r.importable and "too small" in r.problems[0]


def test_directory(tmp_path: Path) -> None:
    r = probe(tmp_path)
    assert not r.importable and r.problems[0].startswith("is a directory, not a disk image")


def test_missing(tmp_path: Path) -> None:
    r = probe(tmp_path / "nope.vmdk")
    assert not r.importable and r.problems == ["no such file"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads mode-000 files anyway")
def test_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "secret.raw"
    path.write_bytes(b"\0" * 4096)
    path.chmod(0)
    r = probe(path)
    assert not r.importable and "permission denied" in r.problems[0]


def test_fifo_does_not_hang(tmp_path: Path) -> None:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    r = probe(path)
    assert not r.importable and "not a regular file" in r.problems[0]


def test_char_device() -> None:
    r = probe("/dev/null")
    assert not r.importable and "not a regular file" in r.problems[0]


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\x1f\x8b\x08", "gzip"),
        (b"\xfd7zXZ\x00", "xz"),
        (b"PK\x03\x04", "zip"),
        (b"vhdxfile", "VHDX"),
        (b"QED\x00", "QED"),
        (b"<<< Oracle VM VirtualBox Disk Image >>>\n", "VDI"),
        (b'# Disk DescriptorFile\ncreateType="monolithicFlat"\n', "VMDK descriptor"),
    ],
)
def test_recognised_and_rejected(head: bytes, expected: str) -> None:
    data = head + bytes(4096 - len(head))
    r = probe_bytes(data, data, len(data), "disk.img")
    assert not r.importable
    assert expected in f"{r.format} {r.variant}"
    assert r.problems


def test_ova_tar(tmp_path: Path) -> None:
    import tarfile

    (tmp_path / "disk1.vmdk").write_bytes(b"x" * 1000)
    ova = tmp_path / "vm.ova"
    with tarfile.open(ova, "w", format=tarfile.USTAR_FORMAT) as tar:
        tar.add(tmp_path / "disk1.vmdk", arcname="disk1.vmdk")
    r = probe(ova)
    assert (r.variant, r.importable) == ("tar", False)
    assert "not an OVA" in r.problems[0] and "tar xf" in r.problems[0]


def test_gpt_raw(tmp_path: Path) -> None:
    data = bytearray(64 * 1024)
    data[446 + 4] = 0xEE  # protective MBR
    data[510:512] = b"\x55\xaa"
    data[512:520] = b"EFI PART"
    path = tmp_path / "gpt.raw"
    path.write_bytes(bytes(data))
    r = probe(path)
    assert (r.format, r.variant, r.importable) == ("RAW", "GPT", True)
    assert "GPT" in r.warnings[0]


def test_raw_odd_size_warns(tmp_path: Path) -> None:
    path = tmp_path / "odd.raw"
    path.write_bytes(b"\0" * 1000)
    r = probe(path)
    assert r.importable and any("multiple of 512" in w for w in r.warnings)


# ---------------------------------------------------------------------------------------------
# Sizes: constant work, rounding, the 16 TiB limit


def test_sparse_terabyte_probe_is_constant_work(tmp_path: Path) -> None:
    path = tmp_path / "big.raw"
    with path.open("wb") as fh:
        fh.truncate(1 << 40)
    r = probe(path)
    assert r.importable and r.file_bytes == 1 << 40 and r.volume_size_gib == 1024


def test_sixteen_tib_rejected() -> None:
    size = 16 * 2**40
    head = bytes(WINDOW)
    r = probe_bytes(head, head, size, "huge.raw")
    assert not r.importable and any("16 TiB" in p for p in r.problems)
    just_under = probe_bytes(head, head, size - 512, "big.raw")
    assert just_under.importable


def test_vmdk_capacity_over_limit(disk_images: dict[str, Path]) -> None:
    data = bytearray(disk_images["vmdk_stream"].read_bytes())
    struct.pack_into("<Q", data, 12, 16 * 2**40 // 512)
    r = probe_bytes(bytes(data[:WINDOW]), bytes(data[-WINDOW:]), len(data), "big.vmdk")
    assert not r.importable and any("16 TiB" in p for p in r.problems)


@pytest.mark.parametrize(
    ("virtual", "gib"), [(1, 1), (GIB, 1), (GIB + 1, 2), (12 * GIB - 5, 12), (0, 0)]
)
def test_volume_rounding(virtual: int, gib: int) -> None:
    assert volume_gib(virtual) == gib


# ---------------------------------------------------------------------------------------------
# Never crash


_MAGICS = [b"KDMV", b"conectix", b"vhdxfile", b"QFI\xfb", b"# Disk DescriptorFile", b""]


@settings(max_examples=300, deadline=None)
@given(
    magic=st.sampled_from(_MAGICS),
    head=st.binary(max_size=2048),
    tail=st.binary(max_size=2048),
    size=st.integers(0, 2**50),
    footer=st.booleans(),
)
def test_probe_bytes_never_crashes(
    magic: bytes, head: bytes, tail: bytes, size: int, footer: bool
) -> None:
    head = magic + head
    if footer:
        tail = tail + b"conectix" + bytes(504)
    r = probe_bytes(head, tail, size, "fuzz")
    assert isinstance(r, ProbeResult)
    assert r.importable == (r.format is not None and not r.problems)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_probe_bytes_survives_corrupted_real_images(
    disk_images: dict[str, Path], data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(sorted(disk_images)))
    raw = bytearray(disk_images[name].read_bytes())
    head, tail = bytearray(raw[:WINDOW]), bytearray(raw[-WINDOW:])
    for _ in range(data.draw(st.integers(1, 8))):
        window = data.draw(st.sampled_from([head, tail]))
        at = data.draw(st.integers(0, len(window) - 1))
        window[at] = data.draw(st.integers(0, 255))
    size = data.draw(st.sampled_from([len(raw), len(raw) - 1, len(raw) + 512, 0, 600]))
    r = probe_bytes(bytes(head), bytes(tail), size, name)
    assert isinstance(r, ProbeResult)
