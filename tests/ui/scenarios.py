"""Deterministic scenarios for the UI tests, the snapshots and the screenshots script: a canned
account, a folder of each run's own with fixed disk images, and one function per screen state.

Each test (and each screenshot) gets its own folder, so runs never share files. Its paths are
painted on screen, though: the folder's path is exactly as long as DISPLAY_ROOT, and the app's
screenshots name it DISPLAY_ROOT. Same length, so every line wraps and truncates as it did on
screen; only the random folder name is replaced.
"""

from __future__ import annotations

import inspect
import re
import shutil
import subprocess
import tempfile
import threading
import zlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from tui.app import WizardApp
from tui.cli import build_parser, session_from
from tui.core.account import Account, SecurityGroup, Subnet
from tui.core.aws import Target
from tui.core.journal import RunRecord
from tui.core.preflight import CheckResult, Report, Status
from tui.core.session import Session
from tui.core.tasks import TaskView

DISPLAY_ROOT = "/tmp/ec2iw-ui"  # what screenshots show for a run's own folder
SIZE = (120, 36)
NARROW = (80, 24)  # the smallest terminal the wizard is laid out for

Scenario = Callable[[Pilot[Any]], Awaitable[None]]


@dataclass(frozen=True)
class Folders:
    """A run's own folder: the wizard's home (profiles, journal) and the disk images."""

    root: Path

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def profiles(self) -> Path:
        return self.home / "profiles"

    @property
    def disks(self) -> Path:
        return self.root / "disks"


@contextmanager
def own_folders() -> Iterator[Folders]:
    """A new, empty folder for one run, removed afterwards. Not pytest's tmp_path: its path
    must be as long as DISPLAY_ROOT (/tmp and 8 random characters)."""
    root = Path(tempfile.mkdtemp(prefix="", dir="/tmp"))
    assert len(str(root)) == len(DISPLAY_ROOT), root
    try:
        yield Folders(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


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

    def __init__(
        self,
        tasks: list[TaskView] | None = None,
        *,
        fail: bool = False,
        gate: threading.Event | None = None,
        label: str = "SANDBOX · us-east-1",
        buckets: tuple[str, ...] = ("amzn-s3-demo-bucket", "imports-bucket"),
        checks: str = "pass",
    ):
        target = Target(region="us-east-1", endpoint_url="http://127.0.0.1:1", sandbox=True)
        super().__init__(lambda: target, label)
        self.listed = sample_tasks() if tasks is None else tasks  # what tasks() returns
        self.bucket_names = buckets
        self.fail = fail
        self.checks = checks  # what check() finds: "pass", "warn" or "fail"
        self.gate = gate  # calls wait on it: "busy" states, released when the test ends
        self.cancelled: list[str] = []
        self.cleaned: list[str] = []

    def _check(self) -> None:
        if self.gate is not None:
            self.gate.wait(timeout=30)
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
        return list(self.bucket_names)

    def tasks(self, task_ids: Sequence[str] = ()) -> list[TaskView]:
        self._check()
        return [t for t in self.listed if not task_ids or t.task_id in task_ids]

    def cancel(self, task_id: str, reason: str | None = None) -> None:
        self.cancelled.append(task_id)

    def cleanup(
        self, task: TaskView | None, record: RunRecord | None, *, force: bool = False
    ) -> str:
        self.cleaned.append(task.task_id if task else "")
        return "deleted 3 objects from s3://imports-bucket/run/disk.vmdkmanifest.xml"

    def check(self, plan: Any) -> Report:
        """What the sandbox's preflight says of the scenarios' profile, with one warn or one
        fail in place of a pass when asked."""
        self._check()
        results = [CheckResult(i, Status.PASS, f, m) for i, f, m in PASSING_CHECKS]
        if self.checks == "warn":
            results[11] = CheckResult(
                "task-slots", Status.WARN, "", "0 of 5 conversion-task slots free: the run will "
                "wait for one", "cancel or wait for an active task (`tasks`)",
            )  # fmt: skip
        elif self.checks == "fail":
            results[7] = CheckResult(
                "security-groups", Status.FAIL, f"{LS}.GroupIds",
                "sg-0123abcd does not exist in us-east-1", "pick a group of the subnet's VPC",
            )  # fmt: skip
        return Report(tuple(results))


LS = "request.LaunchSpecification"
# What `check` prints for a valid profile against the sandbox: (id, field, message).
PASSING_CHECKS = (
    ("region", "aws.region", "us-east-1 offers ImportInstance"),
    ("credentials", "aws.profile", "long-term credentials"),
    ("bucket", "source.bucket", "imports-bucket is in us-east-1"),
    ("zone", f"{LS}.Placement.AvailabilityZone", "us-east-1a is a zone here"),
    ("subnet", f"{LS}.SubnetId", "subnet-0a1b2c3d is in us-east-1a"),
    ("private-ip", f"{LS}.PrivateIpAddress", "10.0.1.25 is free in 10.0.1.0/24"),
    ("architecture", f"{LS}.Architecture", "x86_64"),
    ("security-groups", f"{LS}.GroupIds", "sg-0123abcd is in vpc-1234abcd"),
    ("instance-type", f"{LS}.InstanceType", "m5.large is offered in us-east-1a and runs x86_64"),
    ("placement", f"{LS}.Placement", "no placement group or dedicated host"),
    ("volume-size", "source.volume_size", "1 GiB holds 67108864 bytes"),
    ("task-slots", "", "5 of 5 conversion-task slots free"),
    ("import-dry-run", "", "ImportInstance with DryRun=true would succeed"),
    ("guest-table", "source.path", "MBR partition table"),
    ("guest-boot", "source.path", "boots by bios"),
    ("guest-filesystem", "source.path", "1: NTFS"),
)


def make_session(*args: str) -> Session:
    return session_from(build_parser().parse_args(list(args)))


def prepare(folders: Folders, profiles: bool = True) -> None:
    """Fresh folders: the wizard's home (with two saved profiles), disk images by qemu-img."""
    for sub in (folders.home, folders.disks):
        shutil.rmtree(sub, ignore_errors=True)
    folders.profiles.mkdir(parents=True)
    folders.disks.mkdir(parents=True)
    qemu = shutil.which("qemu-img")
    assert qemu, "qemu-img is needed for the UI tests"

    def create(name: str, *opts: str) -> None:
        subprocess.run([qemu, "create", "-q", *opts, str(folders.disks / name), "64M"], check=True)

    create("win2012.vmdk", "-f", "vmdk", "-o", "subformat=streamOptimized")
    create("win2008-sparse.vmdk", "-f", "vmdk")
    create("win2016.vhd", "-f", "vpc")
    create("server.qcow2", "-f", "qcow2")
    (folders.disks / "notes.txt").write_text("not a disk image\n")
    if profiles:
        from tui.core.profiles import ProfileStore, parse_profile

        store = ProfileStore(folders.profiles)
        for name, itype in (("web-2012", "m5.large"), ("sql-2016", "r5.xlarge")):
            text = (
                f'name = "{name}"\ndescription = "Windows {name[-4:]} from the lab"\n'
                f'[aws]\nregion = "us-east-1"\n'
                f'[source]\npath = "{folders.disks / "win2012.vmdk"}"\nbucket = "imports-bucket"\n'
                f'[request]\nPlatform = "Windows"\n'
                f'[request.LaunchSpecification]\nArchitecture = "x86_64"\n'
                f'InstanceType = "{itype}"\n'
            )
            store.save(parse_profile(text, name))


class ScenarioApp(WizardApp):
    """The wizard, as the scenarios run it in a folder of their own: its screenshots show that
    folder as DISPLAY_ROOT, and leaving it lets calls held on the gate go on."""

    CSS_PATH = str(Path(inspect.getfile(WizardApp)).with_name("app.tcss"))  # not ours: the app's

    def __init__(self, session: Session, folders: Folders, **kw: Any):
        super().__init__(session, **kw)
        self.folders = folders

    def export_screenshot(self, *, title: str | None = None, simplify: bool = False) -> str:
        svg = super().export_screenshot(title=title, simplify=simplify)
        root = str(self.folders.root)
        if root not in svg:
            return svg
        # Rich names the SVG's classes after a hash of what it drew, the random folder name
        # included: rename them after what is shown, so a screen gives the same file each run.
        svg = svg.replace(root, DISPLAY_ROOT)
        unique = re.compile(r"\bterminal-\d+")
        stable = "terminal-" + str(zlib.adler32(unique.sub("terminal", svg).encode()))
        return unique.sub(stable, svg)

    def exit(self, *args: Any, **kw: Any) -> None:
        GATE.set()  # the screenshot is taken: let held workers end so the app can close
        super().exit(*args, **kw)


def make_app(
    folders: Folders, *, account: Account | None = None, sandbox: bool = True
) -> ScenarioApp:
    session = make_session("--sandbox") if sandbox else make_session("--region", "us-east-1")
    return ScenarioApp(
        session,
        folders,
        account=account or FakeAccount(),
        blink=False,
        warm_up=False,
        start_dir=folders.disks,
    )


def disks(pilot: Pilot[Any]) -> Path:
    """The disk images of the scenario's app."""
    app = pilot.app
    assert isinstance(app, ScenarioApp)
    return app.folders.disks


# ---------------------------------------------------------------------------------------------
# Steps shared by the scenarios


async def settle(pilot: Pilot[Any]) -> None:
    """Let the app finish its own workers (DirectoryTree's loader never ends: skipped); while
    a busy scenario holds the gate, only let messages run."""
    await pilot.pause()
    await _tree_loaded(pilot)
    if not GATE.is_set():
        await pilot.pause()
        return
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


def screen_text(app: Any) -> str:
    """The terminal's text as the user sees it now, a line per row (from the app's own
    screenshot: each <text> of the SVG is a run of one style, at its row's y)."""
    import html

    rows: dict[float, list[str]] = {}
    for y, text in re.findall(
        r'<text [^>]*?y="([\d.]+)"[^>]*>(.*?)</text>', app.export_screenshot()
    ):
        rows.setdefault(float(y), []).append(html.unescape(text).replace("\xa0", " "))
    return "\n".join("".join(parts) for _, parts in sorted(rows.items()))


def toasts(app: Any) -> list[str]:
    """The notifications on screen now, as the user reads them ("title\nmessage"); the app
    must run with them shown (`run_test(notifications=True)`)."""
    return [str(toast.render()) for toast in app.screen.query("Toast")]


def offered(widget: Any) -> list[str]:
    """The choices a Select or a field's pick-list shows when it opens, as labelled."""
    from textual.widgets import OptionList

    return [str(option.prompt) for option in widget.query_one(OptionList).options]


def picks(field: Any) -> list[str]:
    """The values a field's pick-list puts in the field (each choice's value, not its label)."""
    from textual.widgets import OptionList

    return [option.id or "" for option in field.query_one(OptionList).options]


async def until(pilot: Pilot[Any], check: Callable[[], Any], timeout: float = 30.0) -> None:
    """Let the app run until `check()` holds (a worker's result arrived), or fail the test."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)
        await pilot.pause()


async def _tree_loaded(pilot: Pilot[Any]) -> None:
    import asyncio

    from textual.widgets import DirectoryTree

    for tree in pilot.app.screen.query(DirectoryTree):
        for _ in range(100):
            if tree.root.children:
                break
            await asyncio.sleep(0.02)
        await pilot.pause()


def hold() -> None:
    """From here on, gated calls block (a busy state) until the screenshot is taken."""
    GATE.clear()


async def type_into(pilot: Pilot[Any], path: str, text: str, *, keys: bool = False) -> None:
    """Fill a FormField's text box: pasted in one go, or key by key with `keys`."""
    from textual.widgets import Input

    control = pilot.app.screen.query_one(f"#f-{path.replace('.', '-')} .field-control", Input)
    control.focus()
    await pilot.pause()
    if keys:
        control.value = ""
        await pilot.press(*text)
    else:
        control.value = text
        control.cursor_position = len(text)
    await settle(pilot)


async def choose(pilot: Pilot[Any], path: str, value: str) -> None:
    from textual.widgets import Select

    control = pilot.app.screen.query_one(f"#f-{path.replace('.', '-')} .field-control", Select)
    control.value = value if value else Select.NULL
    await settle(pilot)


async def to_disk(pilot: Pilot[Any]) -> None:
    await settle(pilot)
    await pilot.press("n")
    await settle(pilot)


async def fill_disk(pilot: Pilot[Any]) -> None:
    await to_disk(pilot)
    await type_into(pilot, "source.path", str(disks(pilot) / "win2012.vmdk"))
    await type_into(pilot, "source.bucket", "imports-bucket")
    await type_into(pilot, "source.key_prefix", "imports/")
    pilot.app.screen.query_one("#f-source-bucket .field-control").focus()
    await settle(pilot)
    pilot.app.screen.set_focus(None)
    await settle(pilot)


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


# ---------------------------------------------------------------------------------------------
# Every screen in its default, filled, error and busy states (snapshots and screenshots)

GATE = threading.Event()  # open, except while a busy scenario holds it (see hold())
GATE.set()


def gated(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kw: Any) -> Any:
        GATE.wait(timeout=30)
        return fn(*args, **kw)

    return wrapper


@dataclass
class Case:
    name: str
    run: Scenario
    account: Callable[[], Account] = FakeAccount
    profiles: bool = True
    setup: Callable[[Folders], None] | None = None
    patches: tuple[tuple[Any, str], ...] = ()  # (owner, attribute) to hold on GATE
    hold: bool = False  # hold the gate from the start


@contextmanager
def applied(case: Case, folders: Folders) -> Iterator[ScenarioApp]:
    """Prepare the folders, hold the patched calls on GATE, and build the app."""
    GATE.set()
    prepare(folders, profiles=case.profiles)
    if case.hold:
        hold()
    if case.setup:
        case.setup(folders)
    saved = [(owner, attr, getattr(owner, attr)) for owner, attr in case.patches]
    for owner, attr, fn in saved:
        setattr(owner, attr, gated(fn))
    try:
        yield make_app(folders, account=case.account())
    finally:
        GATE.set()
        for owner, attr, fn in saved:
            setattr(owner, attr, fn)


async def idle(pilot: Pilot[Any]) -> None:
    await settle(pilot)


async def home_filled(pilot: Pilot[Any]) -> None:
    app = pilot.app
    app.state.new_run("3f2a9c1e", "web-2012").task_id = "import-i-000000a2"
    await settle(pilot)
    app.screen.reload()
    await settle(pilot)
    await pilot.press("down")
    await settle(pilot)


def broken_profile(folders: Folders) -> None:
    (folders.profiles / "broken.toml").write_text(
        'name = "broken"\n[source]\npath = "x.vmdk"\nbucket = "b"\n[request]\nPlatform = "Linux"\n'
    )


async def home_error(pilot: Pilot[Any]) -> None:
    await settle(pilot)
    await pilot.press("x")  # delete asks first
    await settle(pilot)
    await pilot.press("escape")
    await settle(pilot)
    await pilot.press("r")
    await settle(pilot)
    from textual.widgets import Input

    pilot.app.screen.query_one(Input).value = "web-2012"  # taken: said in place, OK disabled
    await settle(pilot)


async def disk_error(pilot: Pilot[Any]) -> None:
    await to_disk(pilot)
    await type_into(pilot, "source.path", str(disks(pilot) / "win2008-sparse.vmdk"))
    await type_into(pilot, "source.bucket", "Bad_Bucket")
    await type_into(pilot, "source.volume_size", "0")
    await pilot.press("ctrl+n")
    await settle(pilot)


async def disk_busy(pilot: Pilot[Any]) -> None:
    await to_disk(pilot)
    await type_into(pilot, "source.path", str(disks(pilot) / "win2016.vhd"))
    await pilot.pause(0.4)  # the probe is debounced


async def to_spec(pilot: Pilot[Any]) -> None:
    await fill_disk(pilot)
    await pilot.press("ctrl+n")
    await settle(pilot)


async def spec_busy(pilot: Pilot[Any]) -> None:
    await fill_disk(pilot)
    hold()
    await pilot.press("ctrl+n")
    await pilot.pause()
    await pilot.pause()


async def spec_error(pilot: Pilot[Any]) -> None:
    await to_spec(pilot)
    await type_into(pilot, f"{LS}.InstanceType", "m5.larg")
    await type_into(pilot, f"{LS}.SubnetId", "subnet-0a1b2c3d")
    await type_into(pilot, f"{LS}.PrivateIpAddress", "10.0.9.5")
    await type_into(pilot, f"{LS}.GroupIds", "sg-0123abcd, sg-zz")
    await type_into(pilot, f"{LS}.Placement.AvailabilityZone", "us-east-1b")
    await type_into(pilot, f"{LS}.Placement.PartitionNumber", "two")
    await pilot.press("ctrl+n")
    await settle(pilot)


async def spec_picking(pilot: Pilot[Any]) -> None:
    """Instance types filtered as you type (the pick-list open)."""
    await to_spec(pilot)
    await type_into(pilot, f"{LS}.InstanceType", "m5.x", keys=True)
    await pilot.pause()


async def to_platform(pilot: Pilot[Any]) -> None:
    await fill_spec(pilot)
    await pilot.press("ctrl+n")
    await settle(pilot)


async def platform_error(pilot: Pilot[Any]) -> None:
    await to_platform(pilot)
    await choose(pilot, "request.Platform", "")
    await pilot.press("ctrl+n")
    await settle(pilot)


async def preview_filled(pilot: Pilot[Any]) -> None:
    await to_preview(pilot)
    await pilot.press("v")
    await settle(pilot)
    await pilot.click("#preview-tabs Tab#--content-tab-json")
    await settle(pilot)


async def preview_manifest(pilot: Pilot[Any]) -> None:
    await to_preview(pilot)
    await pilot.click("#preview-tabs Tab#--content-tab-manifest")
    await settle(pilot)


async def preview_checks(pilot: Pilot[Any]) -> None:
    """The checks tab, once the account has answered."""
    await to_preview(pilot)
    await pilot.click("#preview-tabs Tab#--content-tab-checks")
    await settle(pilot)


async def preview_checks_refused(pilot: Pilot[Any]) -> None:
    """`u` on a failed check: nothing uploaded, the checks tab forward, what to fix where."""
    await to_preview(pilot)
    await pilot.press("u")
    await settle(pilot)


async def preview_error(pilot: Pilot[Any]) -> None:
    await fill_platform(pilot)
    (disks(pilot) / "win2012.vmdk").unlink()  # the image went away after step 1
    await pilot.press("ctrl+n")
    await settle(pilot)


async def preview_busy(pilot: Pilot[Any]) -> None:
    await fill_platform(pilot)
    hold()
    await pilot.press("ctrl+n")
    await pilot.pause()
    await pilot.pause()


async def _submit(pilot: Pilot[Any], *events: Any) -> None:
    from tui.screens.submit import SubmitScreen

    await to_preview(pilot)
    app = pilot.app
    run = app.state.new_run("3f2a9c1e", "web-2012")
    await app.push_screen(SubmitScreen(run, follow=False))
    await settle(pilot)
    for event in events:
        app.run_event(run, event)
    await settle(pilot)


def _probe_event(pilot: Pilot[Any], convert: bool = False) -> Any:
    from tui.core.events import ProbeEvent

    if convert:  # a QCOW2 of the same 8 GiB disk, which qemu-img converts first
        image = str(disks(pilot) / "server.qcow2")
        return ProbeEvent(
            "3f2a9c1e", image, "VMDK", 1_288_490_189, 8 << 30, 8, plan="convert",
            plan_reason="ImportInstance does not take QCOW2: qemu-img converts it to a "
            "stream-optimized VMDK",
        )  # fmt: skip
    image = str(disks(pilot) / "win2012.vmdk")
    # The same image as the upload events' (70 MiB sent): an 8 GiB disk's stream VMDK.
    return ProbeEvent("3f2a9c1e", image, "VMDK", 73_400_320, 8 << 30, 8)


async def submit_default(pilot: Pilot[Any]) -> None:
    await _submit(pilot)


async def submit_busy(pilot: Pilot[Any]) -> None:
    from tui.core.events import UploadEvent

    up = UploadEvent("3f2a9c1e", 3, 7, 31_457_280, 73_400_320, 5_242_880.0, 8.0)
    await _submit(pilot, _probe_event(pilot), up)


async def submit_converting(pilot: Pilot[Any]) -> None:
    from tui.core.events import ConvertEvent

    converting = ConvertEvent("3f2a9c1e", 42.0, 3_607_772_774, 8 << 30, 94_371_840.0, 52.0)
    await _submit(pilot, _probe_event(pilot, convert=True), converting)


async def disk_convert(pilot: Pilot[Any]) -> None:
    await to_disk(pilot)
    await type_into(pilot, "source.path", str(disks(pilot) / "server.qcow2"))
    await type_into(pilot, "source.bucket", "imports-bucket")
    await pilot.pause(0.4)  # the probe is debounced
    await settle(pilot)


async def submit_filled(pilot: Pilot[Any]) -> None:
    from tui.core.events import DoneEvent, SubmittedEvent, UploadedEvent

    await _submit(
        pilot,
        _probe_event(pilot),
        UploadedEvent(
            "3f2a9c1e",
            bucket="imports-bucket",
            manifest_key="imports/3f2a9c1e/win2012.vmdkmanifest.xml",
            manifest_url="https://imports-bucket.s3.us-east-1.amazonaws.com/imports/3f2a9c1e/"
            "win2012.vmdkmanifest.xml?X-Amz-Signature=REDACTED",
            expires_at="2026-12-08T10:00:00+00:00",
            parts=7,
            bytes=73_400_320,
            parts_sent=7,
            parts_skipped=0,
        ),
        SubmittedEvent("3f2a9c1e", "import-i-000000a2", "i-000000000000000a2"),
        DoneEvent("3f2a9c1e", "completed", "import-i-000000a2", "i-000000000000000a2"),
    )


async def submit_error(pilot: Pilot[Any]) -> None:
    from tui.core.events import ErrorEvent

    await _submit(
        pilot,
        _probe_event(pilot),
        ErrorEvent("3f2a9c1e", "AccessDenied", "Access Denied (s3:PutObject on imports-bucket)", 3),
    )


async def to_tasks(pilot: Pilot[Any]) -> None:
    await settle(pilot)
    await pilot.press("t")
    await settle(pilot)


async def tasks_filled(pilot: Pilot[Any]) -> None:
    await to_tasks(pilot)
    await pilot.press("down")
    await settle(pilot)


async def tasks_cancel(pilot: Pilot[Any]) -> None:
    """The confirmation before CancelConversionTask (the selected task is active)."""
    await tasks_filled(pilot)
    await pilot.press("c")
    await settle(pilot)


async def home_account(pilot: Pilot[Any]) -> None:
    """The account dialog in the sandbox: regions only."""
    await settle(pilot)
    await pilot.press("a")
    await settle(pilot)


async def disk_manifest(pilot: Pilot[Any]) -> None:
    """An image uploaded before: its manifest's URL instead of a local file."""
    await to_disk(pilot)
    await pilot.click("#source-mode Tab#--content-tab-manifest")
    await settle(pilot)
    url = "https://imports-bucket.s3.us-east-1.amazonaws.com/imports/win2012.vmdkmanifest.xml"
    await type_into(pilot, "source.manifest_url", url)
    await type_into(pilot, "source.bytes", "67108864")
    await choose(pilot, "source.format", "VMDK")
    pilot.app.screen.set_focus(None)
    await settle(pilot)


async def preview_save_error(pilot: Pilot[Any]) -> None:
    """Save as profile, with a name the store refuses."""
    await to_preview(pilot)
    await pilot.press("s")
    await settle(pilot)
    from textual.widgets import Input

    field = pilot.app.screen.query_one(Input)
    field.value = "web server 2012"
    field.cursor_position = len(field.value)
    await settle(pilot)


async def tasks_busy(pilot: Pilot[Any]) -> None:
    await settle(pilot)
    hold()
    await pilot.press("t")
    await pilot.pause()
    await pilot.pause()


async def tasks_no_match(pilot: Pilot[Any]) -> None:
    """A filter no task matches: said in the detail pane, not a blank table."""
    await to_tasks(pilot)
    await pilot.press("slash", *"zzz")
    await settle(pilot)


async def help_home(pilot: Pilot[Any]) -> None:
    await settle(pilot)
    await pilot.press("question_mark")
    await settle(pilot)


async def help_disk(pilot: Pilot[Any]) -> None:
    """On a form `?` is text: f1 shows the keys."""
    await to_disk(pilot)
    await pilot.press("f1")
    await settle(pilot)


async def delete_confirm(pilot: Pilot[Any]) -> None:
    await settle(pilot)
    await pilot.press("x")
    await settle(pilot)


async def quit_confirm(pilot: Pilot[Any]) -> None:
    """Quit while an upload runs: asked first."""
    await submit_busy(pilot)
    await pilot.press("ctrl+q")
    await settle(pilot)


def _store_load() -> tuple[Any, str]:
    from tui.core.profiles import ProfileStore

    return (ProfileStore, "load")


def _disk_probe() -> tuple[Any, str]:
    import tui.screens.disk

    return (tui.screens.disk, "probe_path")


def _build_preview() -> tuple[Any, str]:
    import tui.core.plan

    return (tui.core.plan, "build_preview")


def busy_account() -> Account:
    return FakeAccount(gate=GATE)


def no_tasks() -> Account:
    return FakeAccount(tasks=[])


def failing_account() -> Account:
    return FakeAccount(fail=True)


def warning_checks() -> Account:
    return FakeAccount(checks="warn")


def failing_checks() -> Account:
    return FakeAccount(checks="fail")


def cases() -> list[Case]:
    return [
        Case("home_default", idle, profiles=False),
        Case("home_filled", home_filled),
        Case("home_error", home_error, setup=broken_profile),
        Case("home_busy", idle, patches=(_store_load(),), hold=True),
        Case("home_account", home_account),
        Case("disk_default", to_disk),
        Case("disk_filled", fill_disk),
        Case("disk_error", disk_error),
        Case("disk_manifest", disk_manifest),
        Case("disk_convert", disk_convert),
        Case("disk_busy", disk_busy, account=busy_account, patches=(_disk_probe(),), hold=True),
        Case("spec_default", to_spec),
        Case("spec_filled", fill_spec),
        Case("spec_error", spec_error),
        Case("spec_busy", spec_busy, account=busy_account),
        Case("spec_picking", spec_picking),
        Case("platform_default", to_platform),
        Case("platform_filled", fill_platform),
        Case("platform_error", platform_error),
        Case("preview_default", to_preview),
        Case("preview_filled", preview_filled),
        Case("preview_manifest", preview_manifest),
        Case("preview_error", preview_error),
        Case("preview_save_error", preview_save_error),
        Case("preview_busy", preview_busy, patches=(_build_preview(),)),
        Case("preview_checks", preview_checks),
        Case("preview_checks_warn", preview_checks, account=warning_checks),
        Case("preview_checks_fail", preview_checks_refused, account=failing_checks),
        Case("submit_default", submit_default),
        Case("submit_filled", submit_filled),
        Case("submit_error", submit_error),
        Case("submit_busy", submit_busy),
        Case("submit_converting", submit_converting),
        Case("tasks_default", to_tasks, account=no_tasks),
        Case("tasks_filled", tasks_filled),
        Case("tasks_error", to_tasks, account=failing_account),
        Case("tasks_busy", tasks_busy, account=busy_account),
        Case("tasks_cancel", tasks_cancel),
        Case("tasks_no_match", tasks_no_match),
        Case("dialog_help", help_home),
        Case("dialog_help_form", help_disk),
        Case("dialog_delete", delete_confirm),
        Case("dialog_quit", quit_confirm),
    ]
