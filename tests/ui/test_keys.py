"""Keys: letters typed on a form are text, never shortcuts, even before the focus settles."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import Input, Select

from tests.ui import scenarios as S
from tui.screens.disk import DiskScreen
from tui.screens.platform import PlatformScreen
from tui.screens.spec import SpecScreen
from tui.widgets.form import FormField

# Every letter that is a shortcut somewhere (t tasks, p profiles, n new, r rename/reveal,
# x delete/cleanup, d duplicate, c copy/cancel, s save, u upload, a account).
TYPED = "/srv/tpr/xd cnsua.vhd"  # a space too: legal in a path


def text_fields(screen: Any) -> list[tuple[str, Input]]:
    """(field path, its text box) for every field of the screen that takes typed text."""
    return [
        (f.path, control)
        for f in screen.query(FormField).results(FormField)
        if isinstance(control := f.query_one(".field-control"), Input)
    ]


async def open_step(pilot: Any, step: type) -> None:
    if step is DiskScreen:
        await S.to_disk(pilot)
    elif step is SpecScreen:
        await S.fill_disk(pilot)
        await pilot.press("ctrl+n")
    else:
        await S.fill_spec(pilot)
        await pilot.press("ctrl+n")


async def test_a_path_typed_right_after_n_lands_in_the_path_field(ui_home: S.Folders) -> None:
    """`n` and the path in one burst: the keys arrive before the disk screen has a focus."""
    from textual import events

    app = S.make_app(ui_home)
    async with app.run_test(size=(120, 36)) as pilot:
        await S.settle(pilot)
        await pilot.press("n")
        # The path all at once, as a terminal delivers a fast typist's keys: each is queued
        # before the one before it is handled (pilot.press would wait for each).
        for ch in TYPED:
            app.post_message(events.Key({"/": "slash", " ": "space"}.get(ch, ch), ch))
        await S.settle(pilot)
        assert isinstance(app.screen, DiskScreen)
        assert app.screen.query_one("#f-source-path .field-control", Input).value == TYPED
        assert len(app.screen_stack) == 3  # the default screen, home, the disk step: no dialog


@pytest.mark.parametrize("step", [DiskScreen, SpecScreen, PlatformScreen])
async def test_every_text_field_takes_every_letter(ui_home: S.Folders, step: type) -> None:
    app = S.make_app(ui_home)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_step(pilot, step)
        fields = text_fields(app.screen)
        assert len(fields) >= 2
        for path, control in fields:
            before = control.value
            control.focus()
            await pilot.press(*TYPED)  # no pause: the focus may not have settled yet
            await S.settle(pilot)
            assert isinstance(app.screen, step), f"typing into {path} left the screen"
            assert control.value.endswith(TYPED), f"{path} holds {control.value!r}"
            control.value = before
            await S.settle(pilot)


async def test_letters_on_a_select_or_the_tabs_are_not_shortcuts(ui_home: S.Folders) -> None:
    app = S.make_app(ui_home)
    async with app.run_test(size=(120, 36)) as pilot:
        await S.fill_disk(pilot)
        await pilot.press("ctrl+n")
        await S.settle(pilot)
        app.screen.query_one(Select).focus()
        await pilot.press("t", "p", "n")
        await S.settle(pilot)
        assert isinstance(app.screen, SpecScreen)  # not Tasks, not home, not a new draft
        assert app.state.draft.get("source.bucket") == "imports-bucket"

        await pilot.press("escape")
        await S.settle(pilot)
        assert isinstance(app.screen, DiskScreen)
        app.screen.query_one("#source-mode Tabs").focus()
        await pilot.press(*"/tmp/x")
        await S.settle(pilot)
        # On the tabs, typing starts a path: it goes to the path field.
        path = app.screen.query_one("#f-source-path .field-control", Input)
        assert path.has_focus
        assert path.value.endswith("/tmp/x")


async def test_after_a_pick_the_next_keys_add_to_the_choice(ui_home: S.Folders) -> None:
    """Pick a group from the list, type `, sg-`: the field holds both, not just `, sg-`."""
    app = S.make_app(ui_home)
    async with app.run_test(size=(120, 36)) as pilot:
        await S.fill_disk(pilot)
        await pilot.press("ctrl+n")
        await S.settle(pilot)
        groups = app.screen.query_one(f"#f-{S.LS.replace('.', '-')}-GroupIds", FormField)
        control = groups.query_one(".field-control", Input)
        control.focus()
        await S.settle(pilot)
        await pilot.press("down", "enter")  # into the pick-list, the first group
        await S.settle(pilot)
        assert control.has_focus and control.value == "sg-0123abcd"
        await pilot.press(*", sg-0456")
        await S.settle(pilot)
        assert control.value == "sg-0123abcd, sg-0456"


async def test_question_mark_lists_the_keys_of_the_screen(ui_home: S.Folders) -> None:
    from tui.screens.dialogs import HelpScreen
    from tui.screens.home import HomeScreen

    app = S.make_app(ui_home)
    async with app.run_test(size=(120, 36)) as pilot:
        await S.settle(pilot)
        await pilot.press("question_mark")
        await S.settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        text = S.screen_text(app)
        for line in ("Duplicate", "Rename", "Delete", "New import", "Tasks", "Quit"):
            assert line in text
        await pilot.press("escape")
        await S.settle(pilot)
        assert isinstance(app.screen, HomeScreen)

        # On a form, ? is text; f1 shows the keys there.
        await pilot.press("n")
        await S.settle(pilot)
        await pilot.press("question_mark")
        await S.settle(pilot)
        assert isinstance(app.screen, DiskScreen)
        assert app.screen.query_one("#f-source-path .field-control", Input).value == "?"
        await pilot.press("f1")
        await S.settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        assert "Demo image" in S.screen_text(app) and "Next" in S.screen_text(app)
        await pilot.press("q")
        await S.settle(pilot)
        assert isinstance(app.screen, DiskScreen)


async def test_q_goes_back_then_quits(ui_home: S.Folders) -> None:
    from tui.screens.home import HomeScreen
    from tui.screens.tasks import TasksScreen

    app = S.make_app(ui_home)
    async with app.run_test(size=(120, 36)) as pilot:
        await S.settle(pilot)
        await pilot.press("t")
        await S.settle(pilot)
        assert isinstance(app.screen, TasksScreen)
        await pilot.press("q")
        await S.settle(pilot)
        assert isinstance(app.screen, HomeScreen)
        await pilot.press("q")
        await S.settle(pilot)
    assert app.return_code == 0  # the app ended: nothing was uploading, so it did not ask


async def test_escape_clears_the_task_filter_before_leaving(ui_home: S.Folders) -> None:
    from tui.screens.tasks import TasksScreen
    from tui.widgets.task_table import TaskTable

    app = S.make_app(ui_home)
    async with app.run_test(size=(120, 36)) as pilot:
        await S.to_tasks(pilot)
        table = app.screen.query_one(TaskTable)
        everything = table.row_count
        await pilot.press("slash", *"completed")
        await S.settle(pilot)
        assert 0 < table.row_count < everything
        await pilot.press("escape")  # the filter's text goes, the table is whole again
        await S.settle(pilot)
        assert isinstance(app.screen, TasksScreen) and table.row_count == everything
        assert table.has_focus
        row = table.cursor_row
        await pilot.press("j")
        await S.settle(pilot)
        assert table.cursor_row == row + 1
        await pilot.press("k")
        await S.settle(pilot)
        assert table.cursor_row == row
        await pilot.press("escape")
        await S.settle(pilot)
        assert not isinstance(app.screen, TasksScreen)
