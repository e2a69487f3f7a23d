"""Probe time of a 1 TiB sparse file: constant work (header and footer reads only).

    python -m tests.benchmarks.bench_probe

Target (issue 3): <= 10 ms. The peer is `qemu-img info` on the same file (a process start
included, so it is context rather than a race).
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TIB = 1 << 40


def _time_ms(fn: Any, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def run(quick: bool = True) -> list[dict[str, Any]]:
    from tui.core.disk import probe

    repeat = 20 if quick else 200
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-probe-") as tmp:
        path = Path(tmp) / "huge.raw"
        with path.open("wb") as fh:
            fh.truncate(TIB)
        result = probe(path)
        assert result.file_bytes == TIB and result.importable, result
        ours = _time_ms(lambda: probe(path), repeat)
        peer = None
        qemu = shutil.which("qemu-img")
        if qemu:
            peer = _time_ms(
                lambda: subprocess.run(
                    [qemu, "info", "-f", "raw", str(path)], capture_output=True, check=True
                ),
                max(3, repeat // 10),
            )
        results.append(
            {
                "name": "probe 1 TiB sparse file (vs qemu-img info)",
                "ours": round(ours, 3),
                "peer": round(peer, 3) if peer is not None else None,
                "ratio": round(ours / peer, 3) if peer else None,
                "target": "<= 10 ms",
                "unit": "ms",
            }
        )
    return results


def main() -> int:
    for row in run(quick="--full" not in sys.argv[1:]):
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
