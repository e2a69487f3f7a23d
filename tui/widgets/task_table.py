"""The conversion-task table, updated by diff: rows are added, removed or have single cells
changed (inside one batch_update), never rebuilt, so the cursor, scroll and sort stay put and
nothing flickers (dolphie's way). Rendered rows are cached per row version, so a refresh
re-renders only the rows that changed (RowCachedTable, in tui/widgets/textual_adapter.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Self

from rich.text import Text
from textual import events
from textual.geometry import Region
from textual.widgets.data_table import ColumnKey

from tui.core.tasks import COLUMNS, TaskView
from tui.widgets.fit_table import SCROLLBAR, Col, fitted
from tui.widgets.textual_adapter import RowCachedTable

KEYS = (*(c.lower() for c in COLUMNS), "ours")  # the order of TaskView.row() + our mark
LABELS = dict(zip(KEYS, (*COLUMNS, "Profile · run"), strict=True))
# Shown in this order, fitted to the table's width (tui/widgets/fit_table.py): the task, its
# state, progress and instance always show; the message gives up width first; below ~100
# columns "Profile · run" (also in the detail pane) moves past the edge, with the rest.
COLUMNS_SHOWN = (
    Col("task", LABELS["task"], 17),  # import-i- and 8 characters
    Col("state", LABELS["state"], 10),
    Col("done", LABELS["done"], 4),
    Col("instance", LABELS["instance"], 19),  # i- and 17 hex digits
    Col("ours", LABELS["ours"], 22, least=13, shrink=1, drop=1),
    Col("message", LABELS["message"], 40, least=16, shrink=2),
    Col("volume", LABELS["volume"], 21, aside=True),
    Col("zone", LABELS["zone"], 11, aside=True),
    Col("expires", LABELS["expires"], 24, aside=True),
)
STATE_STYLE = {"completed": "green", "cancelled": "red", "cancelling": "yellow", "active": "cyan"}
Row = tuple[str, ...]


def styled(key: str, value: str) -> Text:
    # Text, never str: a str cell is parsed as markup (slow, and "[...]" in an EC2 message
    # would be taken for a style).
    return Text(value, style=STATE_STYLE.get(value, "") if key == "state" else "", no_wrap=True)


class TaskTable(RowCachedTable[Text]):
    _deferred: dict[str, bool] | None = None  # refresh flags held back by apply()

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, id=id)
        self._rows: dict[str, Row] = {}  # task id -> plain values as shown
        self._sort: tuple[str, bool] | None = None  # (column key, reverse)
        self._layout: list[tuple[Col, int]] = []

    def on_mount(self) -> None:
        self._fit(self.size.width)

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size.width)

    @property
    def order(self) -> tuple[str, ...]:
        """The column keys in the order shown."""
        return tuple(c.key for c, _ in self._layout)

    def _fit(self, width: int) -> None:
        layout = fitted(COLUMNS_SHOWN, max(0, width - SCROLLBAR), self.cell_padding)
        if layout == self._layout:
            return
        # No public way to change a column's width: the table is built again (a resize, rare).
        rows, selected = self._rows, self.selected_task
        self.clear(columns=True)
        self._rows = {}
        self._layout = layout
        for c, w in layout:
            self.add_column(c.label, key=c.key, width=w)
        self._apply_rows(rows, selected)

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
                self.add_row(*(styled(k, cells[k]) for k in self.order), key=task_id)
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

    def refresh(
        self,
        *regions: Region,
        repaint: bool = True,
        layout: bool = False,
        recompose: bool = False,
    ) -> Self:
        if self._deferred is None:
            return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)
        # Held back: a refresh of the whole table later covers any regions asked for now.
        self._deferred["repaint"] = True
        self._deferred["layout"] = self._deferred.get("layout", False) or layout
        self._deferred["recompose"] = self._deferred.get("recompose", False) or recompose
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
