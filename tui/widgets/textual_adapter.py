"""The one place that reaches into textual's private API: a DataTable whose rendered lines and
cells are cached per row version, for the conversion-task table.

DataTable keys all of its render caches on one table-wide update counter, so changing one cell
re-renders every visible row. `RowCachedTable` keeps each rendered line and cell under its own
row's version instead, so a refresh re-renders only the rows that changed (the 1,000-task
benchmark, tests/benchmarks/bench_ui.py). That means overriding DataTable's private
`_render_line` and `_render_cell` and reading a few of its private attributes; they are named
in `PRIVATE_METHODS` and `PRIVATE_ATTRIBUTES`, and `check_datatable` makes sure, when the first
table is built, that the installed textual still has them (a renamed attribute would otherwise
show as stale rows, not as an error). tests/ui/test_task_table_render.py checks that what the
cache draws is what DataTable draws.

It also holds `CrashGuard`, the app's last line of defence: textual prints an unhandled
exception as a Rich traceback with every frame's locals (a revealed presigned URL on screen
would be printed with them). `CrashGuard` overrides App's private `_handle_exception` (named in
APP_PRIVATE_METHODS, checked by `check_app` when the app is built) so that a crash is reported
by the app's own `crashed` (a log file) and textual prints one short message instead.

And `write_escape`, which writes an escape sequence (the end-of-run notification) through the
app's private `_driver`, as textual's own App.bell does.
"""

from __future__ import annotations

import inspect
from collections.abc import Hashable
from functools import cache
from typing import TYPE_CHECKING, Any, Self, TypeVar

from rich.console import Console
from rich.text import Text
from textual.app import App
from textual.cache import LRUCache
from textual.coordinate import Coordinate
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, ColumnKey, CursorType, RowKey

if TYPE_CHECKING:
    from rich.segment import Segment
    from rich.style import Style
    from textual.strip import Strip

PINNED_TEXTUAL = "8.2.8"  # pyproject.toml pins textual exactly; the members below are its own
# DataTable's private methods we override or call, with their parameters as in PINNED_TEXTUAL.
PRIVATE_METHODS: dict[str, tuple[str, ...]] = {
    "_render_line": ("self", "y", "x1", "x2", "base_style"),
    "_render_cell": ("self", "row_index", "column_index", "base_style", "width", "cursor", "hover"),
    "_get_offsets": ("self", "y"),
}
# DataTable's private instance attributes that go into its own cache keys (so into ours).
PRIVATE_ATTRIBUTES = ("_header_row_key", "_show_hover_cursor", "_pseudo_class_state")

# App's private members CrashGuard relies on. `_handle_exception(error)` is where every
# unhandled exception ends (workers with exit_on_error, handlers, compose, rendering); it sets
# the return code, keeps the first error for run_test, and calls `panic(error)` for an error
# that has `__rich__` instead of printing the traceback with locals.
APP_PRIVATE_METHODS: dict[str, tuple[str, ...]] = {"_handle_exception": ("self", "error")}
APP_HANDLE_EXCEPTION_CALLS = ("self._return_code = 1", 'hasattr(error, "__rich__")', "self.panic(")

CellType = TypeVar("CellType")
ReturnType = TypeVar("ReturnType")


class TextualChanged(RuntimeError):
    """The installed textual is not the one whose DataTable internals this module relies on."""


def _signature_problems(cls: type, expected: dict[str, tuple[str, ...]]) -> list[str]:
    """Each method of `expected` that `cls` no longer has with those parameters, in words."""
    problems = []
    for name, parameters in expected.items():
        method = inspect.getattr_static(cls, name, None)
        if not callable(method):
            problems.append(f"{cls.__name__}.{name}() is gone")
            continue
        found = tuple(inspect.signature(method).parameters)
        if found != parameters:
            problems.append(
                f"{cls.__name__}.{name}({', '.join(found)}) was {name}({', '.join(parameters)})"
            )
    return problems


def check_datatable(table_class: type, table: object, version: str) -> None:
    """Raise TextualChanged, naming each difference, unless `table_class` has the methods of
    PRIVATE_METHODS with those parameters, `table` (an instance) has PRIVATE_ATTRIBUTES, and
    `version` is PINNED_TEXTUAL."""
    problems: list[str] = []
    if version != PINNED_TEXTUAL:
        problems.append(f"textual {version} is installed, {PINNED_TEXTUAL} is pinned")
    problems += _signature_problems(table_class, PRIVATE_METHODS)
    own = vars(table) if hasattr(table, "__dict__") else {}
    problems += [
        f"{table_class.__name__} instances no longer have {name}"
        for name in PRIVATE_ATTRIBUTES
        if name not in own
    ]
    if problems:
        raise TextualChanged(
            "textual changed under tui/widgets/textual_adapter.py: "
            + "; ".join(problems)
            + ". Check the per-row render cache against this textual "
            "(tests/ui/test_task_table_render.py), then update the adapter and PINNED_TEXTUAL."
        )


def check_app(app_class: type, version: str | None = None, *, source: bool = False) -> None:
    """Raise TextualChanged unless `app_class` has the methods of APP_PRIVATE_METHODS with those
    parameters; with `version`, unless it is PINNED_TEXTUAL; with `source`, unless
    `_handle_exception` still does APP_HANDLE_EXCEPTION_CALLS (reading textual's source takes
    tens of ms: the app does that after its first paint, the signature check when it is built)."""
    problems: list[str] = []
    if version is not None and version != PINNED_TEXTUAL:
        problems.append(f"textual {version} is installed, {PINNED_TEXTUAL} is pinned")
    signatures = _signature_problems(app_class, APP_PRIVATE_METHODS)
    problems += signatures
    if source and not signatures:
        try:
            text = inspect.getsource(inspect.getattr_static(app_class, "_handle_exception"))
        except (OSError, TypeError):
            text = ""
        problems += [
            f"{app_class.__name__}._handle_exception() no longer does {call}"
            for call in APP_HANDLE_EXCEPTION_CALLS
            if call not in text
        ]
    if problems:
        raise TextualChanged(
            "textual changed under tui/widgets/textual_adapter.py: "
            + "; ".join(problems)
            + ". Check CrashGuard against this textual (tests/ui/test_crash.py), then update "
            "the adapter and PINNED_TEXTUAL."
        )


class Crashed(Exception):
    """What textual is handed instead of the unhandled exception (its cause): rendered as
    `message` alone, no traceback, no locals."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __rich__(self) -> Text:
        # Not wrapped: the log's path must stay one line a user can copy.
        return Text(self.message, style="bold red", no_wrap=True, overflow="ignore")


class CrashGuard(App[ReturnType]):
    """An App whose unhandled exceptions go to `crashed` (which reports the error and returns
    the short message for stderr) and then end the app as textual does, with return code 1."""

    def __init__(self) -> None:
        super().__init__()
        check_app(App)
        self._crash_reported = False
        # What textual prints on exit goes here: soft wrap, so a narrow terminal or a pipe
        # neither wraps nor crops the log's path.
        self.error_console = Console(markup=False, highlight=False, stderr=True, soft_wrap=True)

    def crashed(self, error: BaseException) -> str:
        """Report `error` (each one: a crash may bring others on the way out); return the one
        or two lines textual prints on exit (used for the first)."""
        return f"crashed: {type(error).__name__}"

    def _handle_exception(self, error: Exception) -> None:
        first = not self._crash_reported
        self._crash_reported = True
        try:
            message = self.crashed(error)
        except Exception as report_failed:  # the report itself failed: still no traceback
            message = f"crashed: {type(error).__name__} (no report: {report_failed})"
        if not first:  # a later error on the way out: reported, but the app is already ending
            return
        wrapped = Crashed(message)
        wrapped.__cause__ = error
        super()._handle_exception(wrapped)


def write_escape(app: App[Any], sequence: str) -> None:
    """Write an escape sequence to the terminal, as textual's own App.bell and
    App.copy_to_clipboard do: through the app's driver, which textual keeps private."""
    if not hasattr(app, "_driver"):
        raise TextualChanged(
            "textual changed under tui/widgets/textual_adapter.py: App instances no longer "
            "have _driver (App.bell writes through it): update write_escape"
        )
    driver = app._driver
    if driver is not None and not app.is_headless:
        driver.write(sequence)


@cache
def installed_textual() -> str:
    from importlib.metadata import version  # ~25 ms, once: with the first table, not at start

    return version("textual")


class RowCachedTable(DataTable[CellType]):
    """A DataTable that caches rendered lines and cells per row version. Every way its cells
    change goes through add_row, update_cell, remove_row and clear (DataTable's update_cell_at
    and add_rows call these), which bump the row's version."""

    def __init__(
        self,
        *,
        cursor_type: CursorType = "cell",
        zebra_stripes: bool = False,
        id: str | None = None,
    ) -> None:
        super().__init__(cursor_type=cursor_type, zebra_stripes=zebra_stripes, id=id)
        check_datatable(DataTable, self, installed_textual())  # each table: a fraction of a ms
        self._versions: dict[RowKey, int] = {}  # bumped whenever a row's cells change
        self._version = 0
        self._lines: LRUCache[tuple[Hashable, ...], Strip] = LRUCache(4096)
        self._cells: LRUCache[tuple[Hashable, ...], list[list[Segment]]] = LRUCache(4096)

    def _bump(self, row_key: RowKey | str) -> None:
        self._version += 1
        self._versions[RowKey(row_key) if isinstance(row_key, str) else row_key] = self._version

    def add_row(
        self,
        *cells: CellType,
        height: int | None = 1,
        key: str | None = None,
        label: Text | str | None = None,
    ) -> RowKey:
        row_key = super().add_row(*cells, height=height, key=key, label=label)
        self._bump(row_key)
        return row_key

    def update_cell(
        self,
        row_key: RowKey | str,
        column_key: ColumnKey | str,
        value: CellType,
        *,
        update_width: bool = False,
    ) -> None:
        super().update_cell(row_key, column_key, value, update_width=update_width)
        self._bump(row_key)

    def remove_row(self, row_key: RowKey | str) -> None:
        super().remove_row(row_key)
        self._versions.pop(RowKey(row_key) if isinstance(row_key, str) else row_key, None)

    def clear(self, columns: bool = False) -> Self:
        super().clear(columns)
        self._versions.clear()
        self._lines.clear()
        self._cells.clear()
        return self

    # DataTable's private rendering, cached per row ------------------------------------------

    def _render_line(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        try:
            row_key, line_no = self._get_offsets(y)
        except LookupError:  # below the last row: as DataTable does
            return super()._render_line(y, x1, x2, base_style)
        version: Hashable
        if row_key == self._header_row_key:  # the header changes with its labels only
            version = tuple(str(c.label) for c in self.ordered_columns)
            place: int | None = None
        else:
            found = self._versions.get(row_key)
            if found is None:  # not added through add_row: nothing to key it on
                return super()._render_line(y, x1, x2, base_style)
            version = found
            place = self.get_row_index(row_key)
        # DataTable's own key, with the row's version and place (cells carry their row index
        # for mouse clicks, and a sort moves them) and the column widths instead of its counter.
        key = (
            y,
            x1,
            x2,
            self.size.width,
            row_key,
            line_no,
            version,
            place,
            tuple(c.get_render_width(self) for c in self.ordered_columns),
            self.cursor_coordinate,
            self.hover_coordinate,
            base_style,
            self.cursor_type,
            self.show_cursor,
            self._show_hover_cursor,
            self._pseudo_class_state,
        )
        strip = self._lines.get(key)
        if strip is None:
            strip = super()._render_line(y, x1, x2, base_style)
            self._lines[key] = strip
        return strip

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> list[list[Segment]]:
        # A changed row usually changes one or two cells (the message, the percent): the
        # others render as before, so cells are cached by their text and place too.
        if row_index < 0 or column_index < 0:  # header and labels: as DataTable does
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        try:
            cell = self.coordinate_to_cell_key(Coordinate(row_index, column_index))
        except CellDoesNotExist:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        value = self.get_cell(cell.row_key, cell.column_key)
        key = (
            row_index,
            column_index,
            value.plain if isinstance(value, Text) else str(value),
            str(value.style) if isinstance(value, Text) else "",
            width,
            base_style,
            cursor,
            hover,
            self._show_hover_cursor,
            self._pseudo_class_state,
        )
        lines = self._cells.get(key)
        if lines is None:
            lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
            self._cells[key] = lines
        return lines
