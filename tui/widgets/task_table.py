"""The conversion-task table, updated by diff: rows are added, removed or have single cells
changed (inside one batch_update), never rebuilt, so the cursor, scroll and sort stay put and
nothing flickers (dolphie's way).

DataTable keys all of its render caches on one table-wide update counter, so changing one cell
re-renders every visible row. This table also keeps each rendered row under that row's own
version, so a refresh re-renders only the rows that changed (the 1,000-task benchmark).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import count
from typing import Any

from rich.text import Text
from textual.cache import LRUCache
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from tui.core.tasks import COLUMNS, TaskView

KEYS = (*(c.lower() for c in COLUMNS), "ours")  # the order of TaskView.row() + our mark
LABELS = dict(zip(KEYS, (*COLUMNS, "Profile · run"), strict=True))
# Shown in this order: what a person scans first fits in 120 columns.
ORDER = ("task", "state", "done", "ours", "message", "instance", "volume", "zone", "expires")
WIDTHS = {
    "task": 21,
    "state": 10,
    "done": 5,
    "ours": 22,
    "message": 34,
    "instance": 19,
    "volume": 21,
    "zone": 11,
    "expires": 24,
}
STATE_STYLE = {"completed": "green", "cancelled": "red", "cancelling": "yellow", "active": "cyan"}
Row = tuple[str, ...]


def styled(key: str, value: str) -> Text:
    # Text, never str: a str cell is parsed as markup (slow, and "[...]" in an EC2 message
    # would be taken for a style).
    return Text(value, style=STATE_STYLE.get(value, "") if key == "state" else "", no_wrap=True)


class TaskTable(DataTable[Text]):
    _deferred: dict[str, bool] | None = None  # refresh flags held back by apply()

    def __init__(self, **kw: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kw)  # type: ignore[arg-type]
        self._rows: dict[str, Row] = {}  # task id -> plain values as shown
        self._sort: tuple[str, bool] | None = None  # (column key, reverse)
        self._versions: dict[RowKey, int] = {}  # bumped whenever a row's cells change
        self._next_version = count(1)
        self._rendered: LRUCache[tuple[Any, ...], Any] = LRUCache(4096)

    def on_mount(self) -> None:
        for key in ORDER:
            self.add_column(LABELS[key], key=key, width=WIDTHS[key])

    @property
    def selected_task(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def apply(self, tasks: Iterable[TaskView], marks: Mapping[str, str], needle: str = "") -> int:
        """Make the table show `tasks` (those matching `needle`); returns cells touched."""
        wanted: dict[str, Row] = {}
        needle = needle.lower()
        for t in tasks:
            row = (*t.row(), marks.get(t.task_id, ""))
            if needle and not any(needle in cell.lower() for cell in row):
                continue
            wanted[t.task_id] = row
        selected = self.selected_task
        # update_cell refreshes the table on every call; one refresh at the end is enough.
        self._deferred = {}
        try:
            with self.app.batch_update():
                touched = self._apply_rows(wanted, selected)
        finally:  # even if an update failed half-way: never leave refreshes held back
            deferred, self._deferred = self._deferred, None
            if deferred:
                self.refresh(**deferred)
        return touched

    def _apply_rows(self, wanted: dict[str, Row], selected: str | None) -> int:
        touched = 0
        resort = False
        for gone in [k for k in self._rows if k not in wanted]:
            self.remove_row(gone)
            touched += 1
        for task_id, row in wanted.items():
            old = self._rows.get(task_id)
            if old is None:
                cells = dict(zip(KEYS, row, strict=True))
                self.add_row(*(styled(k, cells[k]) for k in ORDER), key=task_id)
                touched += len(row)
                resort = True
                continue
            for key, before, after in zip(KEYS, old, row, strict=True):
                if before != after:
                    self.update_cell(task_id, key, styled(key, after))
                    touched += 1
                    resort = resort or (self._sort is not None and self._sort[0] == key)
        self._rows = wanted
        if resort and self._sort is not None:
            self._apply_sort()
        if selected in wanted:
            index = self.get_row_index(selected)
            if index != self.cursor_row:
                self.move_cursor(row=index, animate=False, scroll=False)
        return touched

    def refresh(self, *regions: Any, **flags: Any) -> TaskTable:
        if self._deferred is None:
            return super().refresh(*regions, **flags)
        # Held back: a refresh of the whole table later covers any regions asked for now.
        self._deferred["repaint"] = True
        for flag in ("layout", "recompose"):
            self._deferred[flag] = self._deferred.get(flag, False) or bool(flags.get(flag))
        return self

    def sort_by(self, key: str) -> None:
        """Click on a header: sort by it; again: reverse."""
        reverse = self._sort is not None and self._sort[0] == key and not self._sort[1]
        self._sort = (key, reverse)
        selected = self.selected_task
        self._apply_sort()
        if selected is not None:
            self.move_cursor(row=self.get_row_index(selected), animate=False)

    def _apply_sort(self) -> None:
        assert self._sort is not None
        key, reverse = self._sort
        # Cells may be rich Text: sort by their plain text (str of a Text is its plain text).
        self.sort(ColumnKey(key), key=lambda cell: str(cell), reverse=reverse)

    # Per-row render cache -------------------------------------------------------------------
    # Every way this table's cells change goes through these (update_cell_at and add_rows
    # call update_cell and add_row).

    def add_row(self, *cells: Any, key: str | None = None, **kw: Any) -> RowKey:
        row_key = super().add_row(*cells, key=key, **kw)
        self._versions[row_key] = next(self._next_version)
        return row_key

    def update_cell(self, row_key: RowKey | str, column_key: Any, value: Any, **kw: Any) -> None:
        super().update_cell(row_key, column_key, value, **kw)
        self._versions[RowKey(row_key) if isinstance(row_key, str) else row_key] = next(
            self._next_version
        )

    def remove_row(self, row_key: RowKey | str) -> None:
        super().remove_row(row_key)
        self._versions.pop(RowKey(row_key) if isinstance(row_key, str) else row_key, None)

    def clear(self, columns: bool = False) -> TaskTable:
        super().clear(columns)
        self._versions.clear()
        self._rendered.clear()
        return self

    def _render_line(self, y: int, x1: int, x2: int, base_style: Any) -> Any:
        try:
            row_key, line_no = self._get_offsets(y)
        except LookupError:  # below the last row: as DataTable does
            return super()._render_line(y, x1, x2, base_style)
        version: Any
        if row_key == self._header_row_key:  # the header changes with its labels only
            version = tuple(str(c.label) for c in self.ordered_columns)
        else:
            version = self._versions.get(row_key)
            if version is None:  # not added through add_row: nothing to key it on
                return super()._render_line(y, x1, x2, base_style)
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
            self._row_locations.get(row_key),
            tuple(c.get_render_width(self) for c in self.ordered_columns),
            self.cursor_coordinate,
            self.hover_coordinate,
            base_style,
            self.cursor_type,
            self.show_cursor,
            self._show_hover_cursor,
            self._pseudo_class_state,
        )
        strip = self._rendered.get(key)
        if strip is None:
            strip = super()._render_line(y, x1, x2, base_style)
            self._rendered[key] = strip
        return strip

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Any,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> Any:
        # A changed row usually changes one or two cells (the message, the percent): the
        # others render as before, so cells are cached by their text and place too.
        if row_index < 0 or column_index < 0:  # header and labels: as DataTable does
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        if row_key is None or column_key is None:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        value = self._data[row_key][column_key]
        key = (
            "cell",
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
        lines = self._rendered.get(key)
        if lines is None:
            lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
            self._rendered[key] = lines
        return lines
