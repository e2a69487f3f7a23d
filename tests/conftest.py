"""Shared fixtures: real disk images made by qemu-img during the run, and a local S3 endpoint.

`s3_endpoint` is the project's sandbox in-process (moto's S3 behind our middleware): an http
endpoint any boto3 client can use.
"""

from __future__ import annotations

import random
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# Hypothesis: the same examples on every run, so CI is repeatable (a failing example found once is
# a regression test from then on); `--hypothesis-seed` explores new ones.
settings.register_profile("repeatable", derandomize=True)
settings.load_profile("repeatable")

MIB = 1 << 20
TEST_REGION = "us-east-1"
TEST_CREDENTIALS = {
    "aws_access_key_id": "AKIATESTTESTTEST0000",
    "aws_secret_access_key": "tests-secret-key-must-never-be-written",
}


# ---------------------------------------------------------------------------------------------
# Disk images


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


@pytest.fixture(scope="session")
def qemu_img() -> str:
    exe = shutil.which("qemu-img")
    if exe is None:
        pytest.skip("qemu-img is not installed")
    return exe


@pytest.fixture(scope="session")
def disk_images(qemu_img: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real images of one 4 MiB source disk, by name: raw, vhd_fixed, vhd_dynamic,
    vhd_differencing, vmdk_stream, vmdk_sparse, vhdx, qcow2."""
    root = tmp_path_factory.mktemp("images")
    raw = make_source_raw(root / "disk.raw")
    images = {
        "raw": raw,
        "vhd_fixed": qemu_convert(raw, root / "fixed.vhd", "vpc", "-o", "subformat=fixed"),
        "vhd_dynamic": qemu_convert(raw, root / "dynamic.vhd", "vpc"),
        "vmdk_stream": qemu_convert(
            raw, root / "stream.vmdk", "vmdk", "-o", "subformat=streamOptimized"
        ),
        "vmdk_sparse": qemu_convert(raw, root / "sparse.vmdk", "vmdk"),
        "vhdx": qemu_convert(raw, root / "disk.vhdx", "vhdx"),
        "qcow2": qemu_convert(raw, root / "disk.qcow2", "qcow2"),
    }
    images["vhd_differencing"] = make_differencing_vhd(
        images["vhd_dynamic"], root / "differencing.vhd"
    )
    return images


# ---------------------------------------------------------------------------------------------
# Local S3


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """An http URL serving S3: the project's sandbox (moto behind our middleware), in-process
    on 127.0.0.1 and a free port."""
    pytest.importorskip("moto.server")
    from tui.sandbox import start

    server = start()
    server.wait_ready()
    try:
        yield server.endpoint
    finally:
        server.stop()


def make_s3_client(endpoint: str, **config: Any) -> Any:
    """A SigV4, path-style S3 client for a local endpoint (as tui.core.aws.client makes)."""
    import boto3
    from botocore.config import Config

    options: dict[str, Any] = {
        "signature_version": "s3v4",
        "s3": {"addressing_style": "path"},
        "retries": {"mode": "standard", "max_attempts": 3},
        **config,
    }
    return boto3.session.Session(
        region_name=TEST_REGION,
        aws_access_key_id=TEST_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=TEST_CREDENTIALS["aws_secret_access_key"],
    ).client("s3", endpoint_url=endpoint, config=Config(**options))


@pytest.fixture(scope="session")
def s3_client(s3_endpoint: str) -> Any:
    return make_s3_client(s3_endpoint)


@pytest.fixture
def bucket(s3_client: Any, request: pytest.FixtureRequest) -> str:
    """A fresh bucket per test (names from the test, so failures are easy to trace)."""
    import re

    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-")
    name = f"t-{name}-{random.randrange(16**6):06x}"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Throwaway credentials in the environment, no ~/.aws config read."""
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", TEST_CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEST_CREDENTIALS["aws_secret_access_key"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", TEST_REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))


# ---------------------------------------------------------------------------------------------
# Ordering: tests marked `after_all` run last (the secret scan reads what the others wrote)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("after_all") is not None)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """What the fault suite survived, when it ran (the README quotes these counts)."""
    suite = sys.modules.get("tests.integration.test_fault_suite")
    if suite is not None and suite.SUMMARY:
        counts = ", ".join(f"{n} {what}" for what, n in suite.SUMMARY.items())
        terminalreporter.write_line(f"fault suite: {counts}")
