"""Inside the image: real disks partitioned by sfdisk and formatted by mkntfs and mkfs.vfat in
the test run, each as RAW, fixed VHD, dynamic VHD and stream-optimized VMDK (qemu-img), give
the same guest report through `probe --json`, and the preflight's guest checks judge it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.disks import (
    LOGICAL_SECTORS,
    LOGICAL_START,
    PART_SECTORS,
    PART_START,
    SYSTEM_SECTORS,
    make_guest_raw,
    qemu_convert,
)
from tui.cli import main

FORMATS = {
    "raw": None,
    "vhd-fixed": ("vpc", "-o", "subformat=fixed"),
    "vhd-dynamic": ("vpc",),
    "vmdk-stream": ("vmdk", "-o", "subformat=streamOptimized"),
}
KINDS = ("none", "mbr-active", "mbr-inactive", "mbr-logical", "bitlocker", "gpt-esp")


@pytest.fixture(scope="module")
def guests(qemu_img: str, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    root = tmp_path_factory.mktemp("guests")
    images = {}
    for kind in KINDS:
        raw = make_guest_raw(root / f"{kind}.raw", kind)
        for name, how in FORMATS.items():
            images[(kind, name)] = (
                raw
                if how is None
                else qemu_convert(raw, root / f"{kind}-{name}.img", how[0], *how[1:])
            )
    return images


def probe_guest(capsys: pytest.CaptureFixture[str], image: Path) -> dict:
    main(["probe", str(image), "--json"])
    out, _ = capsys.readouterr()
    return json.loads(out)


@pytest.mark.parametrize("kind", KINDS)
def test_the_same_guest_report_from_every_format(kind, guests, capsys):
    reports = {name: probe_guest(capsys, guests[(kind, name)]) for name in FORMATS}
    for name, data in reports.items():
        assert data["importable"], (name, data["problems"])
    guest = {name: data["guest"] for name, data in reports.items()}
    assert all(g == guest["raw"] for g in guest.values()), json.dumps(guest, indent=1)


def test_no_partition_table(guests, capsys):
    guest = probe_guest(capsys, guests[("none", "vmdk-stream")])["guest"]
    assert guest["partition_table"] is None and guest["boot"] is None
    assert guest["partitions"] == []
    assert any("no partition table" in p for p in guest["problems"])


@pytest.mark.parametrize("active", [True, False])
def test_mbr_with_one_ntfs_partition(active, guests, capsys):
    kind = "mbr-active" if active else "mbr-inactive"
    guest = probe_guest(capsys, guests[(kind, "vhd-dynamic")])["guest"]
    assert guest["partition_table"] == "mbr" and guest["boot"] == "bios"
    (part,) = guest["partitions"]
    assert part == {
        "number": 1,
        "start": PART_START * 512,
        "size": PART_SECTORS * 512,
        "type": "0x07 NTFS/exFAT",
        "bootable": active,
        "filesystem": "NTFS",
    }
    inactive_problem = any("active" in p for p in guest["problems"])
    assert inactive_problem is not active


def test_gpt_with_an_efi_system_partition(guests, capsys):
    guest = probe_guest(capsys, guests[("gpt-esp", "vhd-fixed")])["guest"]
    assert guest["partition_table"] == "gpt" and guest["boot"] == "uefi"
    (part,) = guest["partitions"]
    assert part["type"].startswith("c12a7328-f81f-11d2-ba4b-00a0c93ec93b EFI system")
    assert part["bootable"] is True and part["filesystem"].startswith("FAT")
    assert part["start"] == PART_START * 512
    assert any("UEFI" in p for p in guest["problems"])
    assert any("no NTFS" in p for p in guest["problems"])


def test_logical_partitions_of_an_extended_one_are_read(guests, capsys):
    guest = probe_guest(capsys, guests[("mbr-logical", "vmdk-stream")])["guest"]
    assert guest["partition_table"] == "mbr" and guest["boot"] == "bios"
    system, extended, logical = guest["partitions"]
    assert system["number"] == 1 and system["bootable"] and system["filesystem"] == "NTFS"
    assert system["start"] == PART_START * 512 and system["size"] == SYSTEM_SECTORS * 512
    assert extended["number"] == 2 and extended["type"] == "0x05 extended"
    assert extended["filesystem"] is None  # an EBR, not a file system
    assert logical == {
        "number": 5,  # logical partitions count from 5, as Windows and Linux number them
        "start": LOGICAL_START * 512,
        "size": LOGICAL_SECTORS * 512,
        "type": "0x07 NTFS/exFAT",
        "bootable": False,
        "filesystem": "NTFS",
    }
    assert guest["problems"] == []


def test_a_bitlocker_volume_is_named_and_refused(guests, capsys):
    guest = probe_guest(capsys, guests[("bitlocker", "vhd-dynamic")])["guest"]
    (part,) = guest["partitions"]
    assert part["filesystem"] == "BitLocker" and part["bootable"]
    assert any("BitLocker-encrypted" in p for p in guest["problems"])
