"""The start-up checks of tui/widgets/textual_adapter.py: they pass on the pinned textual, and
name what changed when a DataTable internal the render cache relies on, or the App internal the
crash guard relies on, is not there."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from textual.widgets import DataTable

from tui.widgets import textual_adapter
from tui.widgets.task_table import TaskTable
from tui.widgets.textual_adapter import (
    PINNED_TEXTUAL,
    PRIVATE_ATTRIBUTES,
    TextualChanged,
    check_app,
    check_datatable,
    installed_textual,
)


def test_the_installed_textual_is_the_pinned_one_with_every_member() -> None:
    assert installed_textual() == PINNED_TEXTUAL
    check_datatable(DataTable, DataTable(), installed_textual())
    TaskTable()  # builds: the check ran and passed


class OlderTable:
    """A DataTable as a different textual might have it: one method gone, one changed."""

    def _render_line(self, y: int, x1: int, x2: int, base_style: object) -> None: ...

    def _get_offsets(self, y: int, with_header: bool) -> None: ...


def test_each_difference_is_named() -> None:
    table = SimpleNamespace(**{name: None for name in PRIVATE_ATTRIBUTES[1:]})
    with pytest.raises(TextualChanged) as caught:
        check_datatable(OlderTable, table, "9.0.0")
    message = str(caught.value)
    assert f"textual 9.0.0 is installed, {PINNED_TEXTUAL} is pinned" in message
    assert "OlderTable._render_cell() is gone" in message
    assert "OlderTable._get_offsets(self, y, with_header) was _get_offsets(self, y)" in message
    assert f"instances no longer have {PRIVATE_ATTRIBUTES[0]}" in message
    assert "_render_line" not in message  # unchanged: not reported
    assert message.startswith("textual changed under tui/widgets/textual_adapter.py")


def test_building_the_task_table_fails_loudly_when_a_member_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        textual_adapter, "PRIVATE_ATTRIBUTES", (*PRIVATE_ATTRIBUTES, "_row_render_cache_v2")
    )
    with pytest.raises(TextualChanged, match="no longer have _row_render_cache_v2"):
        TaskTable()


def test_the_crash_guard_check_passes_on_the_pinned_textual_and_names_each_change() -> None:
    from textual.app import App

    check_app(App, installed_textual(), source=True)

    class NewerApp:
        def _handle_exception(self, error: Exception, traceback: object) -> None: ...

    class QuieterApp:
        def _handle_exception(self, error: Exception) -> None:
            self._return_code = 1  # and no panic(): CrashGuard's message would not be printed

    with pytest.raises(TextualChanged) as caught:
        check_app(NewerApp, "9.0.0")
    message = str(caught.value)
    assert f"textual 9.0.0 is installed, {PINNED_TEXTUAL} is pinned" in message
    assert "_handle_exception(self, error, traceback) was _handle_exception(self, error)" in message
    with pytest.raises(TextualChanged, match=r"no longer does self\.panic\("):
        check_app(QuieterApp, source=True)
    check_app(QuieterApp)  # the quick check at start-up reads signatures only
