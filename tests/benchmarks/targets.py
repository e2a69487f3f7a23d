"""A benchmark row against its target: shared by the runner (`python -m tests.benchmarks`) and
the benchmarks that print their own rows when run alone."""

from __future__ import annotations

import re
from typing import Any


def is_met(row: dict[str, Any]) -> bool | None:
    """Met or not: the row's own "met", else read from its target ("<= 10 ms" compares ours,
    ">= 1.0x" compares the ratio, a bare number is an upper bound on ours)."""
    if isinstance(row.get("met"), bool):
        return bool(row["met"])
    target = row.get("target")
    if isinstance(target, int | float):
        target = f"<= {target}"
    m = re.fullmatch(r"\s*(<=|>=|<|>)\s*([\d.]+)\s*(x?)\b.*", str(target or ""))
    if not m:
        return None
    value = row.get("ratio") if m.group(3) == "x" else row.get("ours")
    if not isinstance(value, int | float):
        return None
    bound = float(m.group(2))
    return {
        "<=": value <= bound,
        ">=": value >= bound,
        "<": value < bound,
        ">": value > bound,
    }[m.group(1)]
