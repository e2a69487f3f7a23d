"""Deterministic scenarios for the UI tests, the snapshots and the screenshots script: a canned
account, fixed folders and fixed disk images, and one function per screen state.

Paths are fixed (not pytest's tmp_path) because they are painted on screen.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from tui.cli import Context, build_parser
from tui.core.account import Account, SecurityGroup, Subnet
from tui.core.aws import Target
from tui.core.tasks import TaskView

ROOT = Path("/tmp/ec2iw-ui")
HOME = ROOT / "home"
DISKS = ROOT / "disks"
SIZE = (120, 36)

Scenario = Callable[[Pilot[Any]], Awaitable[None]]


def task_item(
    n: int, state: str = "active", message: str = "Pending", converted: int = 0
) -> dict[str, Any]:
    """A DescribeConversionTasks item as EC2 returns it."""
    volume: dict[str, Any] = {
        "AvailabilityZone": "us-east-1a",
        "BytesConverted": converted,
        "Image": {
            "Format": "VMDK",
            "Size": 67_108_864,
            "ImportManifestUrl": f"https://s3.amazonaws.com/bucket/run{n}/disk.vmdkmanifest.xml",
        },
        "Status": state,
        "StatusMessage": message,
        "Volume": {"Size": 1, **({"Id": f"vol-{n:017x}"} if state == "completed" else {})},
    }
    return {
        "ConversionTaskId": f"import-i-{n:08x}",
        "ExpirationTime": "2026-12-05T10:00:00Z",
        "State": state,
        "StatusMessage": message if state != "completed" else "",
        "ImportInstance": {"InstanceId": f"i-{n:017x}", "Platform": "Windows", "Volumes": [volume]},
    }


def sample_tasks() -> list[TaskView]:
    items = [
        task_item(0xA1, "completed", "", 67_108_864),
        task_item(0xA2, "active", "Progress: 42%", 28_000_000),
        task_item(0xA3, "active", "Pending : Downloaded 1048576", 0),
        task_item(0xA4, "cancelled", "ClientError: Unsupported VMDK File Format", 0),
        task_item(0xA5, "active", "Pending", 0),
    ]
    return [TaskView.from_api(i) for i in items]


class FakeAccount(Account):
    """The account of the snapshots: fixed pick-lists and tasks, no network."""

    def __init__(self, tasks: list[TaskView] | None = None, *, fail: bool = False):
        target = Target(region="us-east-1", endpoint_url="http://127.0.0.1:1", sandbox=True)
        super().__init__(lambda: target, "SANDBOX · us-east-1")
        self._tasks = sample_tasks() if tasks is None else tasks
        self.fail = fail
        self.cancelled: list[str] = []

    def _check(self) -> None:
        if self.fail:
            from tui.core.errors import AwsError

            raise AwsError("Could not connect to the endpoint URL", code="NetworkError")

    def zones(self) -> list[tuple[str, str]]:
        self._check()
        return [("us-east-1a", "use1-az1"), ("us-east-1b", "use1-az2"), ("us-east-1c", "use1-az4")]

    def subnets(self) -> list[Subnet]:
        self._check()
        return [
            Subnet("subnet-0a1b2c3d", "10.0.1.0/24", "us-east-1a", "vpc-1234abcd"),
            Subnet("subnet-0e1f2a3b", "10.0.2.0/24", "us-east-1b", "vpc-1234abcd"),
        ]

    def security_groups(self) -> list[SecurityGroup]:
        self._check()
        return [
            SecurityGroup("sg-0123abcd", "default", "vpc-1234abcd"),
            SecurityGroup("sg-0456cdef", "rdp-from-office", "vpc-1234abcd"),
        ]

    def buckets(self) -> list[str]:
        self._check()
        return ["amzn-s3-demo-bucket", "imports-bucket"]

    def tasks(self) -> list[TaskView]:
        self._check()
        return list(self._tasks)

    def cancel(self, task_id: str, reason: str | None = None) -> None:
        self.cancelled.append(task_id)

    def ensure_bucket(self, bucket: str) -> None:
        pass


def make_ctx(*args: str) -> Context:
    return Context(build_parser().parse_args(list(args)))


def prepare(profiles: bool = True) -> None:
    """Fresh fixed folders: state home (profiles), disk images made by qemu-img."""
    if ROOT.exists():
        shutil.rmtree(ROOT)
    (HOME / "profiles").mkdir(parents=True)
    DISKS.mkdir(parents=True)
    qemu = shutil.which("qemu-img")
    assert qemu, "qemu-img is needed for the UI tests"

    def create(name: str, *opts: str) -> None:
        subprocess.run([qemu, "create", "-q", *opts, str(DISKS / name), "64M"], check=True)

    create("win2012.vmdk", "-f", "vmdk", "-o", "subformat=streamOptimized")
    create("win2008-sparse.vmdk", "-f", "vmdk")
    create("win2016.vhd", "-f", "vpc")
    create("server.qcow2", "-f", "qcow2")
    (DISKS / "notes.txt").write_text("not a disk image\n")
    os.environ["EC2_IMPORT_WIZARD_HOME"] = str(HOME)
    if profiles:
        from tui.core.profiles import parse_profile

        store = make_ctx().store()
        for name, itype in (("web-2012", "m5.large"), ("sql-2016", "r5.xlarge")):
            text = (
                f'name = "{name}"\ndescription = "Windows {name[-4:]} from the lab"\n'
                f'[aws]\nregion = "us-east-1"\n'
                f'[source]\npath = "{DISKS / "win2012.vmdk"}"\nbucket = "imports-bucket"\n'
                f'[request]\nPlatform = "Windows"\n'
                f'[request.LaunchSpecification]\nArchitecture = "x86_64"\n'
                f'InstanceType = "{itype}"\n'
            )
            store.save(parse_profile(text, name))


def make_app(*, account: Account | None = None, sandbox: bool = True) -> Any:
    from tui.app import WizardApp

    ctx = make_ctx("--sandbox") if sandbox else make_ctx("--region", "us-east-1")
    return WizardApp(
        ctx,
        account=account or FakeAccount(),
        blink=False,
        warm_up=False,
        start_dir=DISKS,
    )


# ---------------------------------------------------------------------------------------------
# Steps shared by the scenarios


async def settle(pilot: Pilot[Any]) -> None:
    """Let the app finish its own workers (DirectoryTree's loader never ends: skipped)."""
    await pilot.pause()
    for _ in range(3):
        busy = [
            w
            for w in pilot.app.workers
            if w.group not in ("default", "_loader") and not w.is_finished
        ]
        if not busy:
            break
        await pilot.app.workers.wait_for_complete(busy)
        await pilot.pause()
    await pilot.pause()
    await pilot.pause()


async def type_into(pilot: Pilot[Any], path: str, text: str) -> None:
    """Type into a FormField's text box as a user would."""
    from textual.widgets import Input

    control = pilot.app.screen.query_one(f"#f-{path.replace('.', '-')} .field-control", Input)
    control.focus()
    control.value = ""
    await pilot.pause()
    await pilot.press(*text)
    await settle(pilot)


async def choose(pilot: Pilot[Any], path: str, value: str) -> None:
    from textual.widgets import Select

    control = pilot.app.screen.query_one(f"#f-{path.replace('.', '-')} .field-control", Select)
    control.value = value
    await settle(pilot)


async def to_disk(pilot: Pilot[Any]) -> None:
    await settle(pilot)
    await pilot.press("n")
    await settle(pilot)


async def fill_disk(pilot: Pilot[Any]) -> None:
    await to_disk(pilot)
    await type_into(pilot, "source.path", str(DISKS / "win2012.vmdk"))
    await type_into(pilot, "source.bucket", "imports-bucket")
    await type_into(pilot, "source.key_prefix", "imports/")
    pilot.app.screen.query_one("#f-source-bucket .field-control").focus()
    await settle(pilot)
    pilot.app.screen.set_focus(None)
    await settle(pilot)


LS = "request.LaunchSpecification"


async def fill_spec(pilot: Pilot[Any]) -> None:
    await fill_disk(pilot)
    await pilot.press("ctrl+n")
    await settle(pilot)
    await choose(pilot, f"{LS}.Architecture", "x86_64")
    await type_into(pilot, f"{LS}.InstanceType", "m5.large")
    await type_into(pilot, f"{LS}.SubnetId", "subnet-0a1b2c3d")
    await type_into(pilot, f"{LS}.PrivateIpAddress", "10.0.1.25")
    await type_into(pilot, f"{LS}.GroupIds", "sg-0123abcd")
    await choose(pilot, f"{LS}.InstanceInitiatedShutdownBehavior", "stop")
    await type_into(pilot, f"{LS}.Placement.AvailabilityZone", "us-east-1a")
    await choose(pilot, f"{LS}.Placement.Tenancy", "default")
    pilot.app.screen.set_focus(None)
    await settle(pilot)


async def fill_platform(pilot: Pilot[Any]) -> None:
    await fill_spec(pilot)
    await pilot.press("ctrl+n")
    await settle(pilot)
    await type_into(pilot, "request.Description", "lab web server")
    await type_into(pilot, "description", "imported from the lab")
    pilot.app.screen.set_focus(None)
    await settle(pilot)


async def to_preview(pilot: Pilot[Any]) -> None:
    await fill_platform(pilot)
    await pilot.press("ctrl+n")
    await settle(pilot)
