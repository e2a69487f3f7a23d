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

from tests.ui import scenarios as S
from tui.app import WizardApp
from tui.widgets.form import FormField
from tui.widgets.task_table import TaskTable

LS = S.LS
pytest.importorskip("moto")


def cli(*args: str) -> str:
    env = {**os.environ, "EC2_IMPORT_WIZARD_HOME": str(S.HOME)}
    out = subprocess.run(
        [sys.executable, "-m", "tui", *args], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


async def test_walk_the_whole_wizard_against_the_sandbox(
    ui_home: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EC2_IMPORT_WIZARD_SANDBOX_RATE", str(256 * 1024 * 1024))
    session = S.make_session("--sandbox")
    app = WizardApp(session, blink=False, warm_up=False, start_dir=S.DISKS, poll=0.5)
    try:
        async with app.run_test(size=S.SIZE) as pilot:
            await S.settle(pilot)
            await pilot.press("n")
            await S.settle(pilot)

            # 1. the disk image, picked in the tree
            tree = app.screen.query_one("#tree", DirectoryTree)
            await S.until(pilot, lambda: len(tree.root.children) > 0)
            node = next(n for n in tree.root.children if str(n.label) == "win2012.vmdk")
            tree.select_node(node)
            await S.settle(pilot)
            await S.until(
                pilot, lambda: app.state.draft.get("source.path") == str(S.DISKS / "win2012.vmdk")
            )
            await S.type_into(pilot, "source.bucket", "walk-bucket")
            await S.type_into(pilot, "source.key_prefix", "imports")
            await pilot.pause(0.4)
            await S.settle(pilot)
            await pilot.press("ctrl+n")
            await S.settle(pilot)
            assert type(app.screen).__name__ == "SpecScreen"

            # 2. the launch specification, the zone from the sandbox's own list
            zone_field = app.screen.query_one(
                f"#f-{LS.replace('.', '-')}-Placement-AvailabilityZone", FormField
            )
            await S.until(pilot, lambda: bool(zone_field._options), timeout=60)
            zone = zone_field._options[0][0]
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
            saved = S.HOME / "profiles" / "walk.toml"
            assert saved.is_file()
            assert cli("preview", "walk") == shown + "\n"
            assert cli("profiles", "show", "walk") == saved.read_text()
            assert "LaunchSpecification.InstanceType=m5.large" in shown

            # 5. submit, and watch the task complete in the table
            await pilot.press("u")
            await S.until(pilot, lambda: type(app.screen).__name__ == "TasksScreen", timeout=60)
            run = next(iter(app.state.runs.values()))
            assert run.task_id
            table = app.screen.query_one(TaskTable)

            def completed() -> bool:
                row = table._rows.get(run.task_id or "")
                return row is not None and row[1] == "completed"

            await S.until(pilot, completed, timeout=90)
            assert table._rows[run.task_id][-1].startswith("walk · ")  # ours, marked
            assert any("completed" in n.message for n in app._notifications)
    finally:
        session.close()
