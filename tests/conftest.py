"""Shared fixtures: real disk images made by qemu-img during the run, and a local S3 endpoint.

`s3_endpoint` is the project's sandbox in-process (moto's S3 behind our middleware): an http
endpoint any boto3 client can use.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# Asserts in the helpers fail as readably as the tests' own (as when they lived in conftest files).
pytest.register_assert_rewrite("tests.helpers")

from tests.helpers.aws import (  # noqa: E402
    SANDBOX_TEST_CREDENTIALS,
    TEST_CREDENTIALS,
    TEST_REGION,
    make_s3_client,
)
from tests.helpers.disks import make_differencing_vhd, make_source_raw, qemu_convert  # noqa: E402

# The sandbox checks signatures against the credentials it knows: every pair the tests sign with,
# for the sandboxes they start in this process and in subprocesses (which inherit the variable).
os.environ["EC2_IMPORT_WIZARD_SANDBOX_CREDENTIALS"] = SANDBOX_TEST_CREDENTIALS

# Hypothesis: the same examples on every run, so CI is repeatable (a failing example found once is
# a regression test from then on); `--hypothesis-seed` explores new ones.
settings.register_profile("repeatable", derandomize=True)
settings.load_profile("repeatable")

# ---------------------------------------------------------------------------------------------
# Disk images (made by tests/helpers/disks.py)


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


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The state folder of in-process `main()` calls, with throwaway credentials and no
    ~/.aws read; created only by a case that writes state."""
    home = tmp_path / "home"
    monkeypatch.setenv("EC2_IMPORT_WIZARD_HOME", str(home))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATESTS00000000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "tests-secret-never-written")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return home


@pytest.fixture
def dead_endpoint() -> str:
    """A loopback port nobody listens on: every request fails at once."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def no_aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No AWS credentials and no AWS config anywhere boto3 looks (the instance metadata
    service included): the folder holding `config` and `credentials`, empty until the test
    writes them."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return tmp_path
