"""One runner for every benchmark: `python -m tests.benchmarks [--quick] [--only NAME...]
[--readme]`. Each figure is measured against its peer in the same run on the same machine, and
printed as one Markdown table (with `--readme`, also written into README.md's Performance section).

Benchmarks are never timed assertions in the test suite: machines are noisy; these are figures.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

from tests.benchmarks.targets import is_met

MODULES = {
    "upload": "tests.benchmarks.bench_upload",
    "probe": "tests.benchmarks.bench_probe",
    "sandbox": "tests.benchmarks.bench_sandbox",
    "ui": "tests.benchmarks.bench_ui",
    "wan": "tests.benchmarks.bench_wan",
    "preflight": "tests.benchmarks.bench_preflight",
    "convert": "tests.benchmarks.bench_convert",
}
README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        mem_text = f", {mem:.0f} GiB RAM"
    except (ValueError, OSError):
        mem_text = ""
    return (
        f"{cpu}, {os.cpu_count()} cores{mem_text}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def verdict(row: dict[str, Any]) -> str:
    met = is_met(row)
    return "?" if met is None else ("met" if met else "**missed**")


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return "" if value is None else str(value)


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| figure | ours | peer | ratio | target | |",
        "|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        unit = r.get("unit", "")
        peer = r.get("peer")
        lines.append(
            f"| {r['name']} | {fmt(r.get('ours'))} {unit} | "
            f"{fmt(peer) + ' ' + unit if peer is not None else ''} | {fmt(r.get('ratio'))} | "
            f"{r.get('target', '')} | {verdict(r)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and sizes")
    parser.add_argument("--only", nargs="+", choices=sorted(MODULES), help="some benchmarks")
    parser.add_argument("--readme", action="store_true", help="write the table into README.md")
    args = parser.parse_args(argv)

    rows: list[dict[str, Any]] = []
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    for name in args.only or MODULES:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        module = importlib.import_module(MODULES[name])
        rows.extend(module.run(quick=args.quick))
        print(f"  {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    header = f"Measured {started} on {machine()}" + (" (--quick)" if args.quick else "") + "."
    text = f"{header}\n\n{table(rows)}\n"
    print(text)
    if args.readme:
        readme = README.read_text()
        block = f"{START}\n{text}{END}"
        if START in readme:
            readme = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, readme,
                            flags=re.S)  # fmt: skip
        else:
            readme += f"\n{block}\n"
        README.write_text(readme)
    missed = [r["name"] for r in rows if is_met(r) is False]
    if missed:
        print("missed: " + "; ".join(missed), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
