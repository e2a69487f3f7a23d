"""The whole wizard against the real in-process sandbox: pick a qemu-img image in the tree, fill
the specification from the account's pick-lists, check the preview against the `preview`
command, save the profile (the file equals `profiles show`), submit, and watch the task reach
completed in the live table."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from textual.widgets import DirectoryTree, Input

from tests.helpers.disks import qemu_convert, with_mbr
from tests.ui import scenarios as S
from tui.app import WizardApp
from tui.widgets.form import FormField
from tui.widgets.task_table import TaskTable

LS = S.LS
pytest.importorskip("moto")


def cli(*args: str) -> str:
    env = dict(os.environ)  # the test's EC2_IMPORT_WIZARD_HOME included
    out = subprocess.run(
        [sys.executable, "-m", "tui", *args], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


async def test_walk_the_whole_wizard_against_the_sandbox(
    ui_home: S.Folders, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EC2_IMPORT_WIZARD_SANDBOX_RATE", str(256 * 1024 * 1024))
    # A disk with a partition table: the preflight refuses one without (the snapshots' images
    # are empty, which the other screens show as they are).
    raw = ui_home.root / "walk.raw"
    raw.write_bytes(with_mbr(bytes(8 << 20)))
    qemu_convert(raw, ui_home.disks / "walk.vmdk", "vmdk", "-o", "subformat=streamOptimized")
    session = S.make_session("--sandbox")
    app = WizardApp(session, blink=False, warm_up=False, start_dir=ui_home.disks, poll=0.5)
    try:
        async with app.run_test(size=S.SIZE, notifications=True) as pilot:
            await S.settle(pilot)
            await pilot.press("n")
            await S.settle(pilot)

            # 1. the disk image, picked in the tree
            tree = app.screen.query_one("#tree", DirectoryTree)
            await S.until(pilot, lambda: len(tree.root.children) > 0)
            node = next(n for n in tree.root.children if str(n.label) == "walk.vmdk")
            tree.select_node(node)
            await S.settle(pilot)
            image = str(ui_home.disks / "walk.vmdk")
            await S.until(pilot, lambda: app.state.draft.get("source.path") == image)
            await S.type_into(pilot, "source.bucket", "walk-bucket")
            await S.type_into(pilot, "source.key_prefix", "imports")
            await pilot.pause(0.4)
            await S.settle(pilot)
            await pilot.press("ctrl+n")
            await S.settle(pilot)
            assert app.screen.sub_title == "2/4 Launch specification"

            # 2. the launch specification, the zone from the sandbox's own list
            zone_field = app.screen.query_one(
                f"#f-{LS.replace('.', '-')}-Placement-AvailabilityZone", FormField
            )
            await S.until(pilot, lambda: bool(S.picks(zone_field)), timeout=60)
            zone = S.picks(zone_field)[0]
            await S.choose(pilot, f"{LS}.Architecture", "x86_64")
            await S.type_into(pilot, f"{LS}.InstanceType", "m5.large")
            await S.type_into(pilot, f"{LS}.Placement.AvailabilityZone", zone)
            await pilot.press("ctrl+n")
            await S.settle(pilot)

            # 3. platform and description
            await S.type_into(pilot, "request.Description", "walked through the wizard")
            await pilot.press("ctrl+n")
            await S.settle(pilot)

            # 4. the preview, then save it
            preview: Any = app.screen
            await S.until(pilot, lambda: preview.preview is not None)
            shown = preview.texts["lines"]
            await pilot.press("s")
            await S.settle(pilot)
            prompt = app.screen.query_one(Input)
            prompt.value = "walk"
            await pilot.press("enter")
            await S.settle(pilot)
            saved = ui_home.profiles / "walk.toml"
            assert saved.is_file()
            assert cli("preview", "walk") == shown + "\n"
            assert cli("profiles", "show", "walk") == saved.read_text()
            assert "LaunchSpecification.InstanceType=m5.large" in shown

            # 5. submit, and watch the task complete in the table
            await pilot.press("u")
            await S.until(pilot, lambda: app.screen.sub_title == "Conversion tasks", timeout=60)
            run = next(iter(app.state.runs.values()))
            assert run.task_id
            table = app.screen.query_one(TaskTable)

            task_id = run.task_id

            def completed() -> bool:
                shown = task_id in table.rows and str(table.get_cell(task_id, "state"))
                return shown == "completed"

            # The run's own watch tells first (a toast lasting 8 s), the table on its next poll:
            # on a loaded machine the toast may be gone before the table shows the state.
            toast = f"Conversion task\n{task_id} completed"
            await S.until(pilot, lambda: toast in S.toasts(app), timeout=90)
            await S.until(pilot, completed, timeout=90)
            assert str(table.get_cell(task_id, "ours")).startswith("walk · ")  # ours, marked
    finally:
        session.close()


async def test_a_failed_check_keeps_u_from_uploading(
    ui_home: S.Folders, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scenarios' images have no partition table: the real preflight, against the real
    sandbox, fails them on the preview, and `u` then says what to fix and sends nothing."""
    from tui.core.journal import Journal

    session = S.make_session("--sandbox")
    app = WizardApp(session, blink=False, warm_up=False, start_dir=ui_home.disks, poll=0.5)
    try:
        async with app.run_test(size=S.SIZE, notifications=True) as pilot:
            await S.settle(pilot)
            await pilot.press("n")
            await S.settle(pilot)
            await S.type_into(pilot, "source.path", str(ui_home.disks / "win2012.vmdk"))
            await S.type_into(pilot, "source.bucket", "checks-bucket")
            await pilot.press("ctrl+n")
            await S.settle(pilot)
            await S.choose(pilot, f"{LS}.Architecture", "x86_64")
            await S.type_into(pilot, f"{LS}.InstanceType", "m5.large")
            await pilot.press("ctrl+n")
            await S.settle(pilot)
            await pilot.press("ctrl+n")
            await S.settle(pilot)
            preview: Any = app.screen
            assert preview.sub_title == "4/4 Preview"
            status = "#preview-status"
            await S.until(
                pilot, lambda: "checks: 1 fail" in str(preview.query_one(status).render())
            )
            await pilot.press("u")
            await S.settle(pilot)

            assert app.screen is preview  # still the preview: nothing started
            assert preview.query_one("#preview-tabs").active == "checks"
            shown = S.screen_text(app)
            assert "fail guest-table" in shown
            (toast,) = S.toasts(app)
            assert toast.startswith("Not uploaded: check guest-table failed")
            assert "Fix source.path (step 1/4, Disk image)" in toast
            assert app.state.runs == {}
            assert Journal().list() == []  # no run recorded
    finally:
        session.close()
