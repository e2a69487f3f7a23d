"""A moto the sandbox was not tested with, as its users see it: `ec2-import-wizard sandbox` and
`--sandbox` fail with one line naming the version, what changed and the supported range.

The other moto is simulated in the subprocess only: a `moto-X.dist-info` ahead of the real one
(another version installed), or a `sitecustomize` that changes one of moto's functions (a
release that changed what the sandbox uses). Last, what the adapter hands moto, as moto's own
API shows it."""

from __future__ import annotations

import base64
import importlib.metadata
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.aws import (
    import_instance,
    prepare_upload,
    spawn_sandbox,
    wait_task,
)

pytest.importorskip("moto")

INSTALLED = importlib.metadata.version("moto")
PROG = "ec2-import-wizard: error: "
TOO_NEW = (
    "moto 5.3.0 is installed but the sandbox supports moto >=5.1,<5.3 only: "
    "pip install 'moto[server,s3,ec2]>=5.1,<5.3'"
)
CHANGED = f"moto {INSTALLED} is not what the sandbox was tested with (moto >=5.1,<5.3): "

# A moto whose get_account_id_from (checked before serving) grew a parameter.
SERVER_SIDE = """
import moto.iam.models

def get_account_id_from(access_key, partition):
    return "123456789012"

moto.iam.models.get_account_id_from = get_account_id_from
"""
# A moto whose EC2Backend.create_volume (checked just after, before EC2 is used) renamed one.
EC2_SIDE = """
import moto.ec2.models

def create_volume(self, size_gib, zone_name):
    raise AssertionError("never called")

moto.ec2.models.EC2Backend.create_volume = create_volume
"""


def _env(root: Path) -> dict[str, str]:
    path = [str(root), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}


def _another_version(root: Path, version: str) -> dict[str, str]:
    info = root / f"moto-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: moto\nVersion: {version}\n")
    return _env(root)


def _changed(root: Path, code: str) -> dict[str, str]:
    (root / "sitecustomize.py").write_text(code)
    return _env(root)


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    "args", [("sandbox", "--port", "0"), ("--sandbox", "tasks")], ids=["sandbox", "--sandbox"]
)
def test_a_moto_outside_the_range_is_one_line_before_anything_is_served(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    out = _run(_another_version(tmp_path, "5.3.0"), *args)
    assert (out.returncode, out.stdout, out.stderr) == (2, "", PROG + TOO_NEW + "\n")


def _stderr_lines(proc: subprocess.Popen[str], count: int, timeout: float = 60) -> list[str]:
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        lines.extend(proc.stderr.readline() for _ in range(count))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    assert not reader.is_alive(), f"the sandbox said only {lines}"
    return lines


@pytest.mark.parametrize(
    ("code", "changed"),
    [
        (
            SERVER_SIDE,
            "moto.iam.models.get_account_id_from() no longer takes our arguments (missing a "
            "required argument: 'partition'; its signature is now (access_key, partition))",
        ),
        (
            EC2_SIDE,
            "moto.ec2.models.EC2Backend.create_volume() no longer takes our arguments (missing a "
            "required argument: 'size_gib'; its signature is now (self, size_gib, zone_name))",
        ),
    ],
    ids=["server-side", "ec2-side"],
)
def test_a_changed_moto_ends_the_sandbox_command_with_one_line(
    tmp_path: Path, code: str, changed: str
) -> None:
    sb = spawn_sandbox(env=_changed(tmp_path, code))
    try:
        rc = sb.proc.wait(timeout=60)  # moto loads (and is checked) in the background
    finally:
        _, stderr = sb.stop()
    assert rc == 2
    assert stderr.splitlines() == [
        "sandbox: sign with access key AKIASANDBOXEXAMPLE00 (secret in the README) or a pair "
        "from EC2_IMPORT_WIZARD_SANDBOX_CREDENTIALS; Ctrl-C to stop",
        PROG + CHANGED + changed,
    ]


def test_with_sandbox_a_changed_moto_reaches_the_user_as_the_commands_error(
    tmp_path: Path,
) -> None:
    out = _run(_changed(tmp_path, SERVER_SIDE), "--sandbox", "tasks")
    assert out.returncode == 3
    assert out.stdout == ""
    changed = (
        "moto.iam.models.get_account_id_from() no longer takes our arguments (missing a "
        "required argument: 'partition'; its signature is now (access_key, partition))"
    )
    # Every request is refused with the reason, which the command's error says once.
    assert out.stderr.splitlines() == [PROG + "Unavailable: " + CHANGED + changed]


def test_the_instance_is_launched_as_moto_itself_would_launch_it(
    ec2: Any, s3: Any, sandbox_bucket: str, disk_images: dict[str, Any]
) -> None:
    user_data = base64.b64encode(b"<powershell>echo imported</powershell>").decode()
    upload = prepare_upload(s3, sandbox_bucket, disk_images["raw"], "RAW")
    task = import_instance(
        ec2,
        upload,
        LaunchSpecification={
            "Architecture": "i386",
            "InstanceType": "m1.large",
            "UserData": {"Data": user_data},
            "Placement": {"AvailabilityZone": "us-east-1b"},
            "Monitoring": True,
        },
    )
    instance_id = task["ImportInstance"]["InstanceId"]
    assert task["ImportInstance"]["Volumes"][0]["AvailabilityZone"] == "us-east-1b"
    attribute = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    assert attribute["UserData"] == {"Value": user_data}
    found = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert (found["Platform"], found["Architecture"], found["InstanceType"]) == (
        "windows",
        "i386",
        "m1.large",
    )
    assert found["Placement"]["AvailabilityZone"] == "us-east-1b"
    assert found["Monitoring"]["State"] == "enabled"
    assert wait_task(ec2, task["ConversionTaskId"])["State"] == "completed"
