"""Nothing typed or saved ends the wizard, hangs it or fails in silence; a crash (an error textual
treats as fatal) exits 1 with two lines on stderr and the whole traceback, redacted, in a log."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from textual.binding import Binding

from tests.ui import scenarios as S
from tui.core.profiles import ProfileStore, parse_profile
from tui.widgets.textual_adapter import Crashed

LONG = "/tmp/" + "a" * 10_000  # ENAMETOOLONG: longer than PATH_MAX
SIGNATURE = "5f3c9d0b7e1a42c8a6f0e2d4b8c1a3e5f7d9b0c2e4a6f8d1c3b5a7e9f0d2c4b6"
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
PRESIGNED = (
    "https://imports-bucket.s3.amazonaws.com/run/disk.vmdkmanifest.xml?X-Amz-Algorithm="
    f"AWS4-HMAC-SHA256&X-Amz-Credential={ACCESS_KEY}%2F20261201%2Fus-east-1%2Fs3%2Faws4_request"
    f"&X-Amz-Expires=604800&X-Amz-Signature={SIGNATURE}"
)


def probe_box(app: Any) -> str:
    """The probe box's text as the user reads it, its wrapped lines and columns joined by
    single spaces."""
    lines = S.screen_text(app).splitlines()
    top = next(i for i, line in enumerate(lines) if "╭─ Probe" in line)
    inside: list[str] = []
    for line in lines[top + 1 :]:
        if "╰" in line:
            break
        found = re.search(r"│(.*)│", line)
        if found:
            inside.append(found[1])
    return " ".join(" ".join(inside).split())


def logs(home: Path, kind: str) -> list[Path]:
    return sorted((home / "logs").glob(f"{kind}-*.log"))


async def wait_for_probe(pilot: Any, text: str) -> None:
    """The probe box shows `text` within a few seconds (a probe is a stat and two reads)."""
    await S.until(pilot, lambda: text in probe_box(pilot.app), timeout=5)


async def test_a_10000_character_path_is_an_error_at_once_and_next_stays_usable(
    ui_home: S.Folders,
) -> None:
    app = S.make_app(ui_home)
    async with app.run_test(size=S.SIZE, notifications=True) as pilot:
        await S.to_disk(pilot)
        await S.type_into(pilot, "source.bucket", "imports-bucket")
        await S.type_into(pilot, "source.path", LONG)
        await wait_for_probe(pilot, "File name too long")
        shown = probe_box(app)
        assert shown.startswith("cannot read /tmp/aaaa") and "…" in shown
        assert len(shown) < 200  # the path is cut in the middle, not 10,000 characters
        await pilot.press("ctrl+n")  # refused with the usual message: no crash, no hang
        await S.settle(pilot)
        assert app.screen.sub_title == "1/4 Disk image"
        assert S.toasts(app) == ["1 field to fix before going on"]
        await S.type_into(pilot, "source.path", str(ui_home.disks / "win2012.vmdk"))
        await wait_for_probe(pilot, "Importable yes")
        await pilot.press("ctrl+n")
        await S.settle(pilot)
        assert app.screen.sub_title == "2/4 Launch specification"
    assert app.return_code is None  # no crash: that would have set it to 1


async def test_every_odd_path_gets_a_one_line_error_in_the_probe_box(ui_home: S.Folders) -> None:
    odd = ui_home.root / "odd"
    odd.mkdir()
    os.symlink(odd / "loop-b", odd / "loop-a")
    os.symlink(odd / "loop-a", odd / "loop-b")
    os.mkfifo(odd / "pipe.vmdk")
    cases = [
        (str(odd / "loop-a"), "Too many levels of symbolic links"),
        (str(odd), "is a folder: pick a disk image file"),
        (str(odd / "pipe.vmdk"), "is not a disk image file (a FIFO"),
        (f"{odd}/a\0b.vmdk", "a\\x00b.vmdk: a path cannot contain a NUL character"),
        (f"{odd}/two\nlines.vmdk", "two\\nlines.vmdk"),  # escaped: one line
        (f"{odd}/a[/b.vmdk", "odd/a[/b.vmdk"),  # text, not markup
        (f"{ui_home.disks / 'notes.txt'}/disk.vmdk", "a part of it is a file, not a folder"),
    ]
    if os.geteuid() != 0:  # root reads anything: no EACCES to see
        locked = odd / "locked"
        locked.mkdir()
        (locked / "disk.vmdk").write_bytes(b"\0" * 512)
        locked.chmod(0)
        cases.append((str(locked / "disk.vmdk"), "permission denied"))
    app = S.make_app(ui_home)
    async with app.run_test(size=S.SIZE, notifications=True) as pilot:
        await S.to_disk(pilot)
        for path, expected in cases:
            await S.type_into(pilot, "source.path", path)
            await wait_for_probe(pilot, expected)
        await S.type_into(pilot, "source.bucket", "imports-bucket")
        await S.type_into(pilot, "source.path", str(ui_home.disks / "win2012.vmdk"))
        await wait_for_probe(pilot, "Importable yes")
        await pilot.press("ctrl+n")
        await S.settle(pilot)
        assert app.screen.sub_title == "2/4 Launch specification"
        assert S.toasts(app) == []  # every one was an error in the box, none unexpected
    assert app.return_code is None  # no crash: that would have set it to 1


async def test_typing_the_home_of_no_user_is_an_error_not_a_crash(ui_home: S.Folders) -> None:
    """The path field's completion runs in textual's own worker, which ends the app on error."""
    app = S.make_app(ui_home)
    async with app.run_test(size=S.SIZE, notifications=True) as pilot:
        await S.to_disk(pilot)
        await S.type_into(pilot, "source.path", "~no-such-user-ec2iw/", keys=True)
        await wait_for_probe(pilot, "no home folder for ~no-such-user-ec2iw")
    assert app.return_code is None  # no crash: that would have set it to 1


async def test_a_saved_profile_with_an_impossible_image_path_opens(ui_home: S.Folders) -> None:
    path = f"/tmp/{'b' * 300}/disk.vmdk"  # one name longer than NAME_MAX
    text = (
        f'name = "a-long-name"\n[aws]\nregion = "us-east-1"\n'
        f'[source]\npath = "{path}"\nbucket = "imports-bucket"\n[request]\nPlatform = "Windows"\n'
    )
    ProfileStore(ui_home.profiles).save(parse_profile(text, "a-long-name"))
    app = S.make_app(ui_home)
    async with app.run_test(size=S.SIZE, notifications=True) as pilot:
        await S.settle(pilot)
        await pilot.press("enter")  # the first row: a-long-name
        await S.settle(pilot)
        assert app.screen.sub_title == "1/4 Disk image"
        await wait_for_probe(pilot, "File name too long")
    assert app.return_code is None  # no crash: that would have set it to 1


async def test_a_worker_that_fails_says_so_on_screen_with_its_log(ui_home: S.Folders) -> None:
    """A profiles folder whose name is too long: listing it raises in the home screen's
    worker. The table says it cannot list them, a toast says why and where the log is."""
    session = S.make_session("--sandbox", "--profiles-dir", f"/tmp/{'p' * 300}")
    app = S.ScenarioApp(session, ui_home, account=S.FakeAccount(), blink=False, warm_up=False)
    async with app.run_test(size=S.SIZE, notifications=True) as pilot:
        await S.until(pilot, lambda: "(cannot list)" in S.screen_text(app), 5)
        toast = next(t for t in S.toasts(app) if t.startswith("Unexpected error\n"))
        assert "OSError: [Errno 36] File name too long" in toast
        [log] = logs(ui_home.home, "error")
        assert f"details in {log}" in " ".join(toast.split())
        assert "File name too long" in S.screen_text(app)  # the toast, as drawn
        await pilot.press("n")  # still usable
        await S.settle(pilot)
        assert app.screen.sub_title == "1/4 Disk image"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    report = log.read_text()
    assert "Traceback (most recent call last)" in report and "names()" in report
    assert app.return_code is None  # no crash: that would have set it to 1


async def test_a_sandbox_that_cannot_start_says_why(
    ui_home: S.Folders, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The warm-up after the first paint starts the sandbox; a bad fault spec stops it. That
    error (one of ours: a clear line, no log) is shown, not swallowed."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)  # the sandbox's start drops them: restored
    monkeypatch.setenv("EC2_IMPORT_WIZARD_SANDBOX_FAULTS", "s3-put=0.1,bogus=1")
    app = S.ScenarioApp(S.make_session("--sandbox"), ui_home, account=S.FakeAccount(), blink=False)
    async with app.run_test(size=S.SIZE, notifications=True) as pilot:
        await S.until(pilot, lambda: any(t.startswith("Error\n") for t in S.toasts(app)), 10)
        [toast] = [t for t in S.toasts(app) if t.startswith("Error\n")]
        assert "EC2_IMPORT_WIZARD_SANDBOX_FAULTS: bad item 'bogus=1'" in " ".join(toast.split())
    assert logs(ui_home.home, "error") == []


class CrashingApp(S.ScenarioApp):
    """The wizard with one more key, f9, whose action raises as a bug would."""

    BINDINGS = [Binding("f9", "crash", "Crash")]

    def action_crash(self) -> None:
        secret_local = SIGNATURE  # a local: textual's traceback would print it
        raise RuntimeError(f"cannot fetch {PRESIGNED} ({len(secret_local)})")


async def test_a_crash_ends_the_app_with_code_1_and_a_redacted_log(ui_home: S.Folders) -> None:
    app = CrashingApp(
        S.make_session("--sandbox"), ui_home, account=S.FakeAccount(), blink=False, warm_up=False
    )
    with pytest.raises(Crashed) as crashed:
        async with app.run_test(size=S.SIZE) as pilot:
            await S.settle(pilot)
            await pilot.press("f9")
            await pilot.pause()
    assert app.return_code == 1
    [log] = logs(ui_home.home, "crash")
    message = crashed.value.message
    assert message.splitlines() == [
        message.splitlines()[0],
        f"the full report (redacted): {log}",
    ]
    assert message.startswith("ec2-import-wizard crashed: RuntimeError: cannot fetch https://")
    assert SIGNATURE not in message and ACCESS_KEY not in message
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    report = log.read_text()
    assert "Traceback (most recent call last)" in report and "action_crash" in report
    assert "X-Amz-Signature=REDACTED" in report and "X-Amz-Credential=REDACTED" in report
    assert SIGNATURE not in report and ACCESS_KEY not in report


CRASHING_WIZARD = """
import sys
from pathlib import Path

import tui.app
from textual.screen import Screen

SIGNATURE = sys.argv[1]


class Broken(Screen):
    def on_mount(self):
        secret_local = SIGNATURE  # textual prints every frame's locals
        raise RuntimeError("cannot fetch https://b.s3.amazonaws.com/k?X-Amz-Signature=" + SIGNATURE)


class Crashing(tui.app.WizardApp):
    CSS_PATH = str(Path(tui.app.__file__).with_name("app.tcss"))  # not beside this script

    def on_mount(self):
        self.push_screen(Broken())


tui.app.WizardApp = Crashing  # the wizard, with a screen that raises

from tui.cli import main

raise SystemExit(main(["--sandbox"]))
"""


def test_the_command_exits_1_with_two_lines_on_stderr(tmp_path: Path) -> None:
    """`ec2-import-wizard` (its `main`, as `python -m tui` runs it) when the wizard crashes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TEXTUAL"))}
    env |= {
        "EC2_IMPORT_WIZARD_HOME": str(tmp_path / "home"),
        "TEXTUAL_DRIVER": "textual.drivers.headless_driver:HeadlessDriver",  # no terminal
    }
    done = subprocess.run(
        [sys.executable, "-c", CRASHING_WIZARD, SIGNATURE],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    [log] = logs(tmp_path / "home", "crash")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "ec2-import-wizard crashed: RuntimeError: cannot fetch "
        "https://b.s3.amazonaws.com/k?X-Amz-Signature=REDACTED",
        f"the full report (redacted): {log}",
    ]
    assert SIGNATURE not in log.read_text() and "on_mount" in log.read_text()
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
