"""The home screen's recent runs: which runs it lists, and how it follows them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.records import make_record
from tests.ui import scenarios as S
from tui.core.journal import Journal


def shown(app: Any) -> list[tuple[str, str]]:
    """(profile, state) of each row of the recent runs."""
    table = app.screen.query_one("#runs")
    return [
        (str(table.get_cell_at((i, 1))), str(table.get_cell_at((i, 2))))
        for i in range(table.row_count)
    ]


@pytest.mark.parametrize("sandbox", [False, True])
async def test_recent_runs_keep_sandbox_and_account_apart(
    ui_home: S.Folders, sandbox: bool
) -> None:
    journal = Journal()
    for run_id, name, in_sandbox in (
        ("aaaaaaaa-0000-4000-8000-000000000001", "real-import", False),
        ("bbbbbbbb-0000-4000-8000-000000000002", "played", True),
    ):
        journal.save(make_record(name, run_id=run_id, sandbox=in_sandbox))
    app = S.make_app(ui_home, sandbox=sandbox)
    async with app.run_test(size=S.SIZE) as pilot:
        await S.until(pilot, lambda: bool(shown(app)))
        assert [profile for profile, _ in shown(app)] == (
            ["played"] if sandbox else ["real-import"]
        )


async def test_recent_runs_follow_what_the_task_table_saw(ui_home: S.Folders) -> None:
    """The table may see a task complete up to one pipeline poll before the run records it."""
    Journal().save(
        make_record(
            "web-2012",
            run_id="cccccccc-0000-4000-8000-000000000003",
            sandbox=True,
            task_id="import-i-000000a1",
            state="submitted",
        )
    )
    app = S.make_app(ui_home)
    async with app.run_test(size=S.SIZE) as pilot:
        await S.until(pilot, lambda: shown(app) == [("web-2012", "submitted")])
        app.task_finished("import-i-000000a1", "completed")
        app.screen.reload()
        await S.until(pilot, lambda: shown(app) == [("web-2012", "completed")])


async def test_a_run_past_its_task_shows_its_own_state(ui_home: S.Folders) -> None:
    """The task completed, its [after] steps are not all done: the run is `finishing` (a
    resume is due), not `completed` as its task is."""
    Journal().save(
        make_record(
            "web-2012",
            run_id="dddddddd-0000-4000-8000-000000000004",
            sandbox=True,
            task_id="import-i-000000a1",
            state="finishing",
        )
    )
    app = S.make_app(ui_home)
    async with app.run_test(size=S.SIZE) as pilot:
        await S.until(pilot, lambda: shown(app) == [("web-2012", "finishing")])
        app.task_finished("import-i-000000a1", "completed")
        app.screen.reload()
        await pilot.pause(0.3)
        await S.settle(pilot)
        assert shown(app) == [("web-2012", "finishing")]


async def test_a_damaged_record_is_skipped_and_said_not_hiding_the_others(
    ui_home: S.Folders,
) -> None:
    """A record that is valid JSON but not an object once emptied the whole list."""
    journal = Journal()
    journal.save(make_record("web-2012", sandbox=True))
    (journal.root / "0badc0de-0000-4000-8000-000000000004.json").write_text("[1, 2]")
    app = S.make_app(ui_home)
    async with app.run_test(size=S.SIZE, notifications=True) as pilot:
        await S.until(pilot, lambda: [p for p, _ in shown(app)] == ["web-2012"])
        await S.until(pilot, lambda: any("1 damaged run record" in t for t in S.toasts(app)))
        assert any("`ec2-import-wizard runs` names them" in t for t in S.toasts(app))
