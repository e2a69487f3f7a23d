"""At 80x24 (the smallest terminal the wizard is laid out for) nothing a user needs is cut:
every button's label, every column a person scans first, the run's log lines; Back and Next
of a long form are reachable. What is read is the screen's text, as the user sees it."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import Button

from tests.ui import scenarios as S
from tests.ui.scenarios import NARROW, SIZE, Folders


def whole_buttons(app: Any) -> list[str]:
    """The labels of the buttons on screen that are cut (not all inside the screen, or
    narrower than their label)."""
    screen = app.screen.region
    cut = []
    for button in app.screen.query(Button):
        if not button.display or not button.region.area:
            continue
        label = str(button.label)
        inside = screen.contains_region(button.region)
        if not inside or button.content_size.width < len(label):
            cut.append(label)
    return cut


@pytest.mark.parametrize("run", [S.idle, S.to_preview, S.submit_busy], ids=lambda r: r.__name__)
async def test_every_button_label_whole(run: Any, ui_home: Folders) -> None:
    app = S.make_app(ui_home)
    async with app.run_test(size=NARROW) as pilot:
        await run(pilot)
        assert whole_buttons(app) == []


async def test_disk_form_reaches_next_and_probe_is_readable(ui_home: Folders) -> None:
    app = S.make_app(ui_home)
    async with app.run_test(size=NARROW) as pilot:
        await S.fill_disk(pilot)
        probe = app.screen.query_one("#probe")
        assert probe.size.width >= 50  # was 6 columns: one word a line
        nxt = app.screen.query_one("#next", Button)
        app.screen.set_focus(nxt)
        await S.settle(pilot)
        assert app.screen.region.contains_region(nxt.region)
        assert "Next: launch specification" in S.screen_text(app)


async def test_tasks_columns_fit(ui_home: Folders) -> None:
    """The instance id shows whole at 120 (it was cut to i-8edbb06a0127f) and stays on
    screen at 80, where "Profile · run" moves past the edge; the footer's Back shows."""
    for size in (SIZE, NARROW):
        app = S.make_app(ui_home)
        async with app.run_test(size=size) as pilot:
            await S.tasks_filled(pilot)
            lines = S.screen_text(app).splitlines()
            header = next(line for line in lines if " Task " in line)
            assert "Instance" in header and "Message" in header, size
            assert any("i-000000000000000a2" in line for line in lines[:12]), size
            assert "esc Back" in lines[-1], size


async def test_filter_without_matches_is_said(ui_home: Folders) -> None:
    app = S.make_app(ui_home)
    async with app.run_test(size=SIZE) as pilot:
        await S.tasks_no_match(pilot)
        assert "No task matches 'zzz'" in S.screen_text(app)


async def test_submit_log_wraps_long_lines(ui_home: Folders) -> None:
    """A long line of the run's log is read whole at 80 columns: wrapped, not cut."""
    app = S.make_app(ui_home)
    async with app.run_test(size=NARROW) as pilot:
        await S.submit_error(pilot)
        text = " ".join(line.strip(" │") for line in S.screen_text(app).splitlines())
        assert "8.0 GiB virtual, 8 GiB volume" in " ".join(text.split())


async def test_home_headers_whole(ui_home: Folders) -> None:
    app = S.make_app(ui_home)
    async with app.run_test(size=NARROW) as pilot:
        await S.home_filled(pilot)
        text = S.screen_text(app)
        assert "Instance type   Description" in text  # were past the edge
        assert "Task               Updated" in text
        assert "Delete (x)" in text


def test_task_columns_fitted_to_the_room() -> None:
    """At 120 columns everything up to the message shows, the instance id whole; at 80
    "Profile · run" moves past the edge so the message keeps some room; no header is cut."""
    from tui.widgets.fit_table import fitted
    from tui.widgets.task_table import COLUMNS_SHOWN

    def before_edge(room: int) -> dict[str, int]:
        shown, used = {}, 0
        for col, width in fitted(COLUMNS_SHOWN, room):
            used += width + 2
            if used > room:
                break
            shown[col.key] = width
            assert width >= len(col.label), col.key
        return shown

    wide = before_edge(116)
    assert list(wide) == ["task", "state", "done", "instance", "ours", "message"]
    assert wide["instance"] == len("i-000000000000000a2")
    narrow = before_edge(76)
    assert list(narrow) == ["task", "state", "done", "instance", "message"]
    assert narrow["message"] >= 16
