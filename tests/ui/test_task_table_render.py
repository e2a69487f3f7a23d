"""The task table caches rendered lines and cells per row: what it draws after any sequence of
updates must be exactly what a freshly built table draws for the same rows (text, colours and
the row/column indices that mouse clicks read from each cell's style)."""

from __future__ import annotations

from typing import Any

import pytest
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


async def check(app: Tables, pilot: Any, tasks: list[TaskView], marks: dict[str, str]) -> None:
    """The live table (caches warm) draws exactly what a new table with the same rows does,
    focused and not (focus changes every row's colours)."""
    live = app.query_one("#live", TaskTable)
    app.set_focus(None)
    await pilot.pause()
    before = drawn(live)
    assert drawn(live) == before  # drawing twice changes nothing
    fresh = TaskTable()
    await app.mount(fresh, before=live)
    fresh.apply(tasks, marks)
    if live._sort is not None:
        fresh.sort_by(live._sort[0])
        if live._sort[1]:
            fresh.sort_by(live._sort[0])
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
        await check(app, pilot, tasks, {})

        # progress on a few rows, one of them under the cursor
        tasks = [
            view(n, "active", f"Progress: {n * 2}%" if n % 5 == 0 else "Pending")
            for n in range(1, 41)
        ]
        tasks[20] = view(21, "active", "Progress: 77%")
        live.apply(tasks, {})
        await check(app, pilot, tasks, {})

        # rows go away above the cursor, one comes back with other values
        tasks = [t for t in tasks if t.task_id not in (view(2).task_id, view(7).task_id)]
        live.apply(tasks, {})
        await check(app, pilot, tasks, {})
        tasks.append(view(2, "completed"))
        marks = {view(2).task_id: "win2012 · 1a2b3c4d"}
        live.apply(tasks, marks)
        await check(app, pilot, tasks, marks)

        # sorted by state, then a state changes: rows move, so each cell's row index moves
        live.sort_by("state")
        await check(app, pilot, tasks, marks)
        tasks[10] = view(12, "cancelled", "ClientError: the manifest expired")
        live.apply(tasks, marks)
        await check(app, pilot, tasks, marks)
        live.sort_by("state")  # reversed
        await check(app, pilot, tasks, marks)

        # the cursor moves and the filter narrows the rows
        live.move_cursor(row=3)
        await check(app, pilot, tasks, marks)
        live.apply(tasks, marks, "cancel")
        await check(app, pilot, [t for t in tasks if "cancel" in t.state + t.message], marks)


async def test_a_failed_update_never_leaves_refreshes_held_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tui.widgets import task_table

    app = Tables()
    async with app.run_test(size=(120, 36)) as pilot:
        live = app.query_one("#live", TaskTable)
        live.apply([view(n) for n in range(1, 6)], {})
        await pilot.pause()

        def broken(key: str, value: str) -> Any:
            raise RuntimeError("rendering failed")

        monkeypatch.setattr(task_table, "styled", broken)
        with pytest.raises(RuntimeError):
            live.apply([view(n, "active", "Progress: 50%") for n in range(1, 6)], {})
        assert live._deferred is None  # later refreshes go through again
