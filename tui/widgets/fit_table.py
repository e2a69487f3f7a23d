"""Tables whose columns fit the terminal: each column is as wide as it wants while there is
room, and gives up width (down to its least, its header still whole) when there is not, the
highest `shrink` first; a column that still does not fit moves to the end (`drop`, the highest
first), past the screen's edge, where the table scrolls sideways to it, as to the `aside` ones.

DataTable's columns have fixed widths and no public way to change one, so a table that must
change them is rebuilt: columns and rows again, the cursor where it was (public API only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual import events
from textual.widgets import DataTable

NARROW = 100  # below this many columns the screens are laid out narrow (app.tcss's -narrow)
SCROLLBAR = 2  # kept free for the vertical scrollbar, so rows coming and going never refit


@dataclass(frozen=True)
class Col:
    key: str
    label: str
    width: int  # what it gets when there is room
    least: int = 0  # what it may shrink to (0: never shrinks); never less than its label
    shrink: int = 0  # which column gives up width first: the highest
    drop: int = 0  # which column moves past the edge first when the least widths do not fit
    aside: bool = False  # always past the edge: never counted in the room

    @property
    def narrowest(self) -> int:
        return max(self.least, len(self.label)) if self.least else self.width


def fitted(columns: Sequence[Col], room: int, padding: int = 1) -> list[tuple[Col, int]]:
    """The columns in the order shown, each with its width, so that those before the edge
    (with their padding) fit `room` if they can."""
    shown = [c for c in columns if not c.aside]
    past = [c for c in columns if c.aside]
    while sum(c.narrowest + 2 * padding for c in shown) > room and any(c.drop for c in shown):
        dropped = max((c for c in shown if c.drop), key=lambda c: c.drop)
        shown.remove(dropped)
        past.insert(0, dropped)
    widths = {c.key: c.width for c in columns}
    excess = sum(c.width + 2 * padding for c in shown) - room
    for c in sorted(shown, key=lambda c: -c.shrink):
        if excess <= 0:
            break
        give = min(excess, c.width - c.narrowest)
        if give > 0:
            widths[c.key] -= give
            excess -= give
    return [(c, widths[c.key]) for c in shown + past]


class FitTable(DataTable[object]):
    """A DataTable of fixed columns (`Col`s, in order; rows are added with their cells in that
    order, so no `drop` or `aside` here) that fits them to its width."""

    def __init__(self, columns: Sequence[Col], **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.fit_columns = tuple(columns)
        # At full width until the first fit (rows may be added before the table is shown).
        self._layout = [(c, c.width) for c in self.fit_columns]
        for c in self.fit_columns:
            self.add_column(c.label, key=c.key, width=c.width)

    def on_mount(self) -> None:
        self._fit(self.size.width)

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size.width)

    def _fit(self, width: int) -> None:
        layout = fitted(self.fit_columns, max(0, width - SCROLLBAR), self.cell_padding)
        if layout == self._layout:
            return
        keys = [c.key for c, _ in self._layout]
        rows = [(key.value, dict(zip(keys, self.get_row(key), strict=True))) for key in self.rows]
        cursor = self.cursor_coordinate
        self.clear(columns=True)
        self._layout = layout
        for c, w in layout:
            self.add_column(c.label, key=c.key, width=w)
        for key, cells in rows:
            self.add_row(*(cells.get(c.key, "") for c, _ in layout), key=key)
        if rows:
            self.move_cursor(row=cursor.row, column=cursor.column, animate=False)
