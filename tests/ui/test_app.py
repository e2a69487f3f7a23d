"""Pilot tests of the wizard's behaviour against a canned account (no network)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest
from textual.widgets import Input

from tests.helpers.records import make_record
from tests.ui import scenarios as S
from tui.core.draft import Draft, format_value, parse_value
from tui.core.journal import Journal, RunState
from tui.core.tasks import TaskView
from tui.widgets.form import FormField
from tui.widgets.task_table import TaskTable

LS = S.LS


def test_app_module_imports_no_aws_libraries() -> None:
    """The first screen paints before boto3, botocore or moto load."""
    code = (
        "import sys, json\n"
        "import tui.app, tui.screens.home, tui.screens.disk, tui.screens.spec\n"
        "import tui.screens.platform, tui.screens.preview, tui.screens.submit, tui.screens.tasks\n"
        "import tui.state, tui.messages, tui.widgets.task_table, tui.widgets.textual_adapter\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('boto3', 'botocore', 'moto', 's3transfer') or m.startswith('tui.sandbox'))\n"
        "print(json.dumps(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_parse_and_format_values() -> None:
    assert parse_value("int", " 12 ") == 12
    assert parse_value("list", "sg-1, sg-2") == ["sg-1", "sg-2"]
    assert parse_value("bool", "yes") is True
    assert parse_value("str", "  ") is None
    with pytest.raises(ValueError, match="whole number"):
        parse_value("int", "two")
    with pytest.raises(ValueError, match="empty item"):
        parse_value("list", "a,,b")
    assert format_value(["a", "b"]) == "a, b"
    assert format_value(False) == "false"


def test_draft_errors_are_keyed_by_field_path() -> None:
    d = Draft()
    d.set("source.path", "/x.vmdk")
    d.set("source.bucket", "Bad")
    d.set(f"{LS}.PrivateIpAddress", "10.0.0")
    errors = d.errors()
    assert "S3 bucket name" in errors["source.bucket"]
    assert "IPv4" in errors[f"{LS}.PrivateIpAddress"]
    d.set("source.bucket", None)
    d.set(f"{LS}.PrivateIpAddress", None)
    assert d.get("request.LaunchSpecification") is None  # emptied tables are pruned
    assert "bucket" in d.errors()["source"]


async def test_errors_appear_next_to_the_field_as_you_type(ui_home: S.Folders) -> None:
    app = S.make_app(ui_home)
    async with app.run_test(size=S.SIZE, notifications=True) as pilot:
        await S.to_spec(pilot)
        await S.type_into(pilot, f"{LS}.SubnetId", "subnet-0a1b2c3d")
        await S.type_into(pilot, f"{LS}.PrivateIpAddress", "10.0.2.9")
        ip = app.screen.query_one(f"#f-{LS.replace('.', '-')}-PrivateIpAddress", FormField)
        assert ip.error == "10.0.2.9 is not in subnet-0a1b2c3d (10.0.1.0/24)"
        await S.type_into(pilot, f"{LS}.PrivateIpAddress", "10.0.1.9")
        assert ip.error is None
        await S.type_into(pilot, f"{LS}.InstanceType", "m5.larg")
        itype = app.screen.query_one(f"#f-{LS.replace('.', '-')}-InstanceType", FormField)
        assert itype.error is not None and "did you mean 'm5.large'" in itype.error
        await pilot.press("ctrl+n")  # refused: stays here
        await S.settle(pilot)
        assert app.screen.sub_title == "2/4 Launch specification"
        assert S.toasts(app) == ["1 field to fix before going on"]  # the instance type


async def test_an_unknown_group_id_is_marked_before_next(ui_home: S.Folders) -> None:
    """Well-formed, but not one of the account's groups: marked, and Next refuses."""
    app = S.make_app(ui_home)
    async with app.run_test(size=S.SIZE, notifications=True) as pilot:
        await S.to_spec(pilot)
        groups = app.screen.query_one(f"#f-{LS.replace('.', '-')}-GroupIds", FormField)
        await S.until(pilot, lambda: bool(S.picks(groups)))
        await S.type_into(pilot, f"{LS}.GroupIds", "sg-0123abcd, sg-0fffffff")
        assert groups.error is not None and "sg-0fffffff: no such security group" in groups.error
        assert "sg-0123abcd" not in groups.error  # the account's own group is fine
        await pilot.press("ctrl+n")
        await S.settle(pilot)
        assert app.screen.sub_title == "2/4 Launch specification"
        await S.type_into(pilot, f"{LS}.GroupIds", "sg-0123abcd")
        assert groups.error is None


async def test_instance_types_filter_as_you_type(ui_home: S.Folders) -> None:
    app = S.make_app(ui_home)
    async with app.run_test(size=S.SIZE) as pilot:
        await S.to_spec(pilot)
        await S.type_into(pilot, f"{LS}.InstanceType", "m5.2x", keys=True)
        field = app.screen.query_one(f"#f-{LS.replace('.', '-')}-InstanceType", FormField)
        labels = S.offered(field)
        assert "m5.2xlarge" in labels and all("m5.2x" in x for x in labels)
        await pilot.press("down", "enter")
        await S.settle(pilot)
        assert field.text == labels[0]
        assert app.state.draft.get(f"{LS}.InstanceType") == labels[0]


async def test_disk_screen_probes_plans_a_sparse_vmdk_and_refuses_a_text_file(
    ui_home: S.Folders,
) -> None:
    from tui.widgets.probe import ProbePanel

    app = S.make_app(ui_home)
    async with app.run_test(size=S.SIZE) as pilot:
        await S.to_disk(pilot)
        await S.type_into(pilot, "source.path", str(ui_home.disks / "win2008-sparse.vmdk"))
        await pilot.pause(0.4)
        await S.settle(pilot)
        path = app.screen.query_one("#f-source-path", FormField)
        assert path.error is None  # converted by qemu-img before the upload: the plan says so
        panel = app.screen.query_one("#probe", ProbePanel)
        from rich.console import Console

        console = Console(width=200, record=True)
        console.print(panel.content)  # what the panel shows, on one wide line a row
        assert "-> stream-optimized VMDK (qemu-img)" in console.export_text()
        await S.type_into(pilot, "source.path", str(ui_home.disks / "notes.txt"))
        await pilot.pause(0.4)
        await S.settle(pilot)
        assert path.error is not None and "too small" in path.error
        await S.type_into(pilot, "source.path", str(ui_home.disks / "win2012.vmdk"))
        await S.type_into(pilot, "source.bucket", "imports-bucket")
        await pilot.pause(0.4)
        await S.settle(pilot)
        assert path.error is None
        await pilot.press("ctrl+n")
        await S.settle(pilot)
        assert app.screen.sub_title == "2/4 Launch specification"


async def test_the_convert_choice_replans_the_image(ui_home: S.Folders) -> None:
    """`Convert` on the disk screen is the profile's source.convert: the probe box shows the
    plan for the choice."""
    from rich.console import Console

    from tui.widgets.probe import ProbePanel

    def plan_shown() -> str:
        console = Console(width=200, record=True)
        console.print(app.screen.query_one("#probe", ProbePanel).content)
        return next(line for line in console.export_text().splitlines() if "Plan" in line)

    app = S.make_app(ui_home)
    async with app.run_test(size=S.SIZE) as pilot:
        await S.to_disk(pilot)
        await S.type_into(pilot, "source.path", str(ui_home.disks / "win2016.vhd"))
        await S.type_into(pilot, "source.bucket", "imports-bucket")
        await pilot.pause(0.4)
        await S.settle(pilot)
        assert "sent as it is" in plan_shown()
        await S.choose(pilot, "source.convert", "always")
        await pilot.pause(0.4)
        await S.settle(pilot)
        assert "-> stream-optimized VMDK (qemu-img)" in plan_shown()
        assert app.state.draft.profile().source.convert == "always"
        await S.choose(pilot, "source.convert", "")
        await pilot.pause(0.4)
        await S.settle(pilot)
        assert "sent as it is" in plan_shown()
        assert app.state.draft.profile().source.convert is None  # unset: "auto", the default


async def test_profiles_duplicate_rename_delete(ui_home: S.Folders) -> None:
    app = S.make_app(ui_home)
    store = app.session.store
    async with app.run_test(size=S.SIZE) as pilot:
        await S.settle(pilot)
        assert app.screen.selected() == "sql-2016"
        await pilot.press("d")
        await S.settle(pilot)
        await pilot.press("enter")  # accepts "sql-2016-copy"
        await S.until(pilot, lambda: "sql-2016-copy" in store.names())  # a worker writes it
        await pilot.press("r")
        await S.settle(pilot)
        prompt = app.screen.query_one(Input)
        prompt.value = "web-2012"  # taken: refused in place
        await S.settle(pilot)
        assert app.screen.query_one("#ok").disabled
        prompt.value = "sql-2016-b"
        await S.settle(pilot)
        await pilot.press("enter")
        await S.until(pilot, lambda: "sql-2016-copy" not in store.names())
        assert "sql-2016-b" in store.names()
        await pilot.press("x")
        await S.settle(pilot)
        await pilot.press("escape")  # no: nothing deleted
        await S.settle(pilot)
        assert "sql-2016-b" in store.names()
        await pilot.press("x")
        await S.settle(pilot)
        await pilot.click("#yes")
        await S.until(pilot, lambda: "sql-2016-b" not in store.names())


async def test_open_profile_fills_the_wizard(ui_home: S.Folders) -> None:
    app = S.make_app(ui_home)
    async with app.run_test(size=S.SIZE) as pilot:
        await S.settle(pilot)
        await pilot.press("down", "enter")  # web-2012
        await S.settle(pilot)
        assert app.screen.query_one("#f-source-bucket", FormField).text == "imports-bucket"
        await pilot.press("ctrl+n")
        await S.settle(pilot)
        itype = app.screen.query_one(f"#f-{LS.replace('.', '-')}-InstanceType", FormField)
        assert itype.text == "m5.large"


def _view(n: int, state: str, message: str = "") -> TaskView:
    return TaskView.from_api(S.task_item(n, state, message))


async def test_task_table_updates_by_diff_and_keeps_the_cursor(ui_home: S.Folders) -> None:
    app = S.make_app(ui_home)
    async with app.run_test(size=S.SIZE) as pilot:
        await S.to_tasks(pilot)
        table = app.screen.query_one(TaskTable)
        tasks = [_view(i, "active", "Pending") for i in range(1, 40)]
        table.apply(tasks, {})
        table.move_cursor(row=20)
        await pilot.pause()
        chosen = table.selected_task
        changed = [*tasks[:5], _view(6, "active", "Progress: 10%"), *tasks[6:]]
        touched = table.apply(changed, {})
        assert touched == 2  # the message and the percent: nothing else
        six = tasks[5].task_id
        assert str(table.get_cell(six, "done")) == "10%"  # each value under its own header
        assert str(table.get_cell(six, "message")) == "Progress: 10%"
        assert str(table.get_cell(six, "state")) == "active"
        assert table.selected_task == chosen
        table.apply([t for t in changed if t.task_id != tasks[0].task_id], {})
        assert table.selected_task == chosen  # a row above went away: still on the same task
        table.sort_by("task")
        table.sort_by("task")  # reversed
        assert table.selected_task == chosen
        table.apply(changed, {}, "import-i-00000001")
        assert [str(k.value) for k in table.rows] == [tasks[0].task_id]


async def test_tasks_notify_on_completion_and_cancel_asks_first(ui_home: S.Folders) -> None:
    account = S.FakeAccount(tasks=[_view(1, "active", "Progress: 90%")])
    app = S.make_app(ui_home, account=account)
    async with app.run_test(size=S.SIZE, notifications=True) as pilot:
        await S.to_tasks(pilot)
        await pilot.press("c")
        await S.settle(pilot)
        await pilot.click("#no")
        await S.settle(pilot)
        assert account.cancelled == []
        await pilot.press("c")
        await S.settle(pilot)
        await pilot.click("#yes")
        await S.settle(pilot)
        assert account.cancelled == [_view(1, "active").task_id]
        account.listed = [_view(1, "completed")]
        await pilot.press("ctrl+r")
        await S.settle(pilot)
        done = f"Conversion task\n{_view(1, 'completed').task_id} completed"
        await S.until(pilot, lambda: done in S.toasts(app))


async def test_cleanup_waits_for_the_run_that_owns_the_task(ui_home: S.Folders) -> None:
    """A run of this machine still holds the task's record (another process resuming it):
    the tasks screen's cleanup is refused, saying by whom, and deletes nothing until it ends."""
    done = _view(1, "completed")
    account = S.FakeAccount(tasks=[done])
    journal = Journal()
    record = make_record("web-2012", task_id=done.task_id, state=RunState.COMPLETED)
    journal.save(record)
    app = S.make_app(ui_home, account=account)
    async with app.run_test(size=S.SIZE, notifications=True) as pilot:
        await S.to_tasks(pilot)
        with journal.own(record):  # as a second process would hold it
            await pilot.press("x")
            await S.settle(pilot)
            await pilot.click("#yes")
            await S.until(pilot, lambda: any("Cleanup failed" in t for t in S.toasts(app)))
            refused = next(t for t in S.toasts(app) if "Cleanup failed" in t)
            assert f"in use by process {os.getpid()}" in refused
            assert account.cleaned == []
        await pilot.press("x")
        await S.settle(pilot)
        await pilot.click("#yes")
        await S.until(pilot, lambda: any("Deleted 3 objects" in t for t in S.toasts(app)))
        assert account.cleaned == [done.task_id]


async def test_palette_has_commands_for_every_screen(ui_home: S.Folders) -> None:
    app = S.make_app(ui_home)
    async with app.run_test(size=S.SIZE) as pilot:
        await S.settle(pilot)
        names = [c[0] for c in app.palette_commands()]
        assert {"New import", "Conversion tasks", "Saved profiles"} <= set(names)
        assert "Delete profile" in [c[0] for c in app.screen.palette_commands()]
        await S.to_preview(pilot)
        preview: Any = app.screen
        assert "Save as profile" in [c[0] for c in preview.palette_commands()]
        bindings = [b for _, b, *_ in app.active_bindings.values()]
        assert all(b.id for b in bindings if b.show and b.key not in ("ctrl+p",))


async def test_profile_files_and_the_probe_are_read_off_the_ui_thread(
    ui_home: S.Folders, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Duplicate, rename, delete, save as, and Next on an image not yet probed: each file
    access happens in a worker, never on the thread that draws the screen."""
    import tui.screens.disk
    from tui.core.profiles import ProfileStore

    ui_thread = threading.get_ident()
    calls: list[tuple[str, bool]] = []  # (what, on the UI thread)

    def watched(what: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kw: Any) -> Any:
            calls.append((what, threading.get_ident() == ui_thread))
            return fn(*args, **kw)

        return call

    for name in ("load", "save", "delete"):
        monkeypatch.setattr(ProfileStore, name, watched(name, getattr(ProfileStore, name)))
    monkeypatch.setattr(
        tui.screens.disk, "probe_path", watched("probe", tui.screens.disk.probe_path)
    )
    app = S.make_app(ui_home)
    async with app.run_test(size=S.SIZE) as pilot:
        await S.settle(pilot)
        for key in ("d", "enter", "r"):  # duplicate as sql-2016-copy, then rename it
            await pilot.press(key)
            await S.settle(pilot)
        app.screen.query_one(Input).value = "sql-2016-b"
        await pilot.press("enter")
        await S.settle(pilot)
        await pilot.press("x")
        await S.settle(pilot)
        await pilot.click("#yes")
        await S.settle(pilot)
        assert set(app.session.store.names()) == {"sql-2016", "web-2012"}

        await S.to_disk(pilot)
        await S.type_into(pilot, "source.bucket", "imports-bucket")
        image = app.screen.query_one("#f-source-path .field-control", Input)
        image.value = str(ui_home.disks / "win2012.vmdk")
        await pilot.pause()
        await pilot.press("ctrl+n")  # at once: the probe's pause after typing is not over
        await S.settle(pilot)
        assert app.screen.sub_title == "2/4 Launch specification"

        await S.choose(pilot, f"{LS}.Architecture", "x86_64")
        await S.type_into(pilot, f"{LS}.InstanceType", "m5.large")
        app.screen.set_focus(None)
        for _ in range(2):
            await pilot.press("ctrl+n")
            await S.settle(pilot)
        preview: Any = app.screen
        await S.until(pilot, lambda: preview.preview is not None)
        await pilot.press("s")
        await S.settle(pilot)
        await pilot.press("enter")  # saved under the suggested name
        await S.settle(pilot)
        assert "win2012" in app.session.store.names()
    assert {what for what, _ in calls} == {"load", "save", "delete", "probe"}
    assert [call for call in calls if call[1]] == []


async def test_run_events_reach_the_app_and_the_screens(ui_home: S.Folders) -> None:
    """The pipeline's typed events: the run takes them in, the app notifies, and the home
    screen's recent runs follow (a handler registered by type: none, no row)."""
    from tui.core.events import DoneEvent, SubmittedEvent

    def runs(app: Any) -> list[tuple[str, ...]]:
        table = app.screen.query_one("#runs")
        return [tuple(str(c) for c in table.get_row_at(i)) for i in range(table.row_count)]

    app = S.make_app(ui_home)
    async with app.run_test(size=S.SIZE, notifications=True) as pilot:
        await S.settle(pilot)
        assert runs(app) == [("", "(no runs yet)", "", "", "")]
        run = app.state.new_run("5d6e7f80-0000-4000-8000-000000000009", "web-2012")
        app.run_event(run, SubmittedEvent(run.run_id, "import-i-0000beef", "i-0000beef"))
        await S.until(
            pilot,
            lambda: runs(app)[0][:4] == ("5d6e7f80", "web-2012", "running", "import-i-0000beef"),
        )
        app.run_event(run, DoneEvent(run.run_id, "completed", "import-i-0000beef", "i-0000beef"))
        await S.until(pilot, lambda: runs(app)[0][2] == "completed")
        assert "Conversion task\nimport-i-0000beef completed" in S.toasts(app)
        assert run.task_id == "import-i-0000beef" and run.status == "completed"


async def test_a_run_that_cannot_start_says_why(ui_home: S.Folders) -> None:
    """A failure before the pipeline runs (here the image is gone) is one ErrorEvent, shown
    like the pipeline's own."""
    from tui.core.profiles import ProfileStore

    app = S.make_app(ui_home)
    async with app.run_test(size=S.SIZE, notifications=True) as pilot:
        await S.settle(pilot)
        profile = ProfileStore(ui_home.profiles).load("web-2012")
        (ui_home.disks / "win2012.vmdk").unlink()
        run = app.submit(profile, None)
        await S.until(pilot, lambda: run.done is not None)
        await S.settle(pilot)
        assert app.screen.sub_title == "Submit"
        shown = S.screen_text(app)
        assert "Failed: InputError:" in shown and "win2012.vmdk" in shown
        assert any(toast.startswith("Import failed\n") for toast in S.toasts(app))
