"""The task table caches rendered lines and cells per row: what it draws after any sequence of
updates must be exactly what a freshly built table draws for the same rows (text, colours and
the row/column indices that mouse clicks read from each cell's style)."""

from __future__ import annotations

from typing import Any

import pytest
from rich.text import Text
from textual.app import App, ComposeResult
from textual.geometry import Region

from tests.ui import scenarios as S
from tui.core.tasks import TaskView
from tui.widgets.task_table import TaskTable


class Tables(App[None]):
    CSS = "TaskTable { height: 16; }"

    def compose(self) -> ComposeResult:
        yield TaskTable(id="live")


def view(n: int, state: str = "active", message: str = "Pending") -> TaskView:
    return TaskView.from_api(S.task_item(n, state, message))


def drawn(table: TaskTable) -> list[list[tuple[str, Any]]]:
    lines = table.render_lines(Region(0, 0, table.size.width, table.size.height))
    return [[(seg.text, seg.style) for seg in strip] for strip in lines]


async def check(
    app: Tables, pilot: Any, tasks: list[TaskView], marks: dict[str, str], sorts: list[str]
) -> None:
    """The live table (caches warm) draws exactly what a new table with the same rows (and the
    same header clicks, `sorts`) does, focused and not (focus changes every row's colours)."""
    live = app.query_one("#live", TaskTable)
    app.set_focus(None)
    await pilot.pause()
    before = drawn(live)
    assert drawn(live) == before  # drawing twice changes nothing
    fresh = TaskTable()
    await app.mount(fresh, before=live)
    fresh.apply(tasks, marks)
    for key in sorts:
        fresh.sort_by(key)
    fresh.move_cursor(row=live.cursor_row, animate=False)
    await pilot.pause()
    fresh.scroll_to(y=live.scroll_y, animate=False, immediate=True)
    await pilot.pause()
    assert live.scroll_y == fresh.scroll_y
    assert drawn(fresh) == before
    fresh.focus()
    await pilot.pause()
    focused = drawn(fresh)
    live.focus()
    await pilot.pause()
    assert drawn(live) == focused != before
    await fresh.remove()


async def test_cached_rows_draw_what_a_fresh_table_draws() -> None:
    app = Tables()
    async with app.run_test(size=(120, 36)) as pilot:
        live = app.query_one("#live", TaskTable)
        tasks = [view(n) for n in range(1, 41)]
        live.apply(tasks, {})
        live.move_cursor(row=20)
        sorts: list[str] = []  # the headers clicked on the live table, in order
        await check(app, pilot, tasks, {}, sorts)

        # progress on a few rows, one of them under the cursor
        tasks = [
            view(n, "active", f"Progress: {n * 2}%" if n % 5 == 0 else "Pending")
            for n in range(1, 41)
        ]
        tasks[20] = view(21, "active", "Progress: 77%")
        live.apply(tasks, {})
        await check(app, pilot, tasks, {}, sorts)

        # rows go away above the cursor, one comes back with other values
        tasks = [t for t in tasks if t.task_id not in (view(2).task_id, view(7).task_id)]
        live.apply(tasks, {})
        await check(app, pilot, tasks, {}, sorts)
        tasks.append(view(2, "completed"))
        marks = {view(2).task_id: "win2012 · 1a2b3c4d"}
        live.apply(tasks, marks)
        await check(app, pilot, tasks, marks, sorts)

        # sorted by state, then a state changes: rows move, so each cell's row index moves
        live.sort_by("state")
        sorts.append("state")
        await check(app, pilot, tasks, marks, sorts)
        tasks[10] = view(12, "cancelled", "ClientError: the manifest expired")
        live.apply(tasks, marks)
        await check(app, pilot, tasks, marks, sorts)
        live.sort_by("state")  # reversed
        sorts.append("state")
        await check(app, pilot, tasks, marks, sorts)

        # the cursor moves and the filter narrows the rows
        live.move_cursor(row=3)
        await check(app, pilot, tasks, marks, sorts)
        live.apply(tasks, marks, "cancel")
        narrowed = [t for t in tasks if "cancel" in t.state + t.message]
        await check(app, pilot, narrowed, marks, sorts)


async def test_a_failed_update_never_leaves_refreshes_held_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """apply() holds the table's refreshes back until its end: after an update that failed
    half-way, later changes must still reach the screen."""
    from tui.widgets import task_table

    app = Tables()
    async with app.run_test(size=(120, 36)) as pilot:
        live = app.query_one("#live", TaskTable)
        tasks = [view(n) for n in range(1, 6)]
        live.apply(tasks, {})
        await pilot.pause()

        def broken(key: str, value: str) -> Any:
            raise RuntimeError("rendering failed")

        with monkeypatch.context() as patch:
            patch.setattr(task_table, "styled", broken)
            with pytest.raises(RuntimeError):
                live.apply([view(n, "active", "Progress: 50%") for n in range(1, 6)], {})
        live.update_cell(tasks[0].task_id, "message", Text("Recovered after the failure"))
        await pilot.pause()
        assert "Recovered after the failure" in S.screen_text(app)
