"""Sizes and durations as people read them: one wording for the CLI and the wizard."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def human_bytes(n: float | None) -> str:
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} TiB"


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    s = int(seconds)
    return (
        f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


def counted(n: int, noun: str) -> str:
    """'1 zone', '6 zones'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def text_table(rows: Sequence[Sequence[str]], max_widths: Mapping[int, int] | None = None) -> str:
    """Rows as aligned columns (the first row is the header); a column listed in `max_widths`
    is cut to that width with an ellipsis."""
    caps = max_widths or {}
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    widths = [min(w, caps.get(i, w)) for i, w in enumerate(widths)]
    lines = []
    for r in rows:
        cells = [c if len(c) <= w else c[: w - 1] + "…" for c, w in zip(r, widths, strict=True)]
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    return "\n".join(lines)
