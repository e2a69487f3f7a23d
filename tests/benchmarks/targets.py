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


# Issue 13's targets, one place for bench_wan's rows.
WAN_PEAK_RSS = "<= 200 MiB"
WAN_CPU_PER_GIB = "<= 1.2x"  # ours / upload_file, loopback (0 ms)
FLAT = "<= 1.25x"  # 16k parts' ms per part / 1k parts'
RESUME_DECISION = "<= 2x"  # all parts present vs one ListObjectsV2 scan of the prefix
REQUESTS_NEW = "<= 2.0"  # S3 requests per part: the PUT and one presigned HEAD


def requests_resume(pages: int) -> str:
    """S3 requests of a resume of an uploaded run: one (the manifest) + the listing's pages;
    the submit is EC2's, counted apart."""
    return f"<= {1 + pages}"


def wan_throughput(peer: str, rtt_ms: int) -> str:
    """Ours / peer through the delay proxy: the ceiling >= 0.9x; the others >= 1.3x at 80 ms
    (the users' links) and >= 1.0x nearer."""
    if peer == "ceiling":
        return ">= 0.9x"
    return ">= 1.3x" if rtt_ms >= 80 else ">= 1.0x"
