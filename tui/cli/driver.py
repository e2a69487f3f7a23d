"""Running imports from the command line: side by side in threads, stopped cleanly by SIGINT or
SIGTERM (exit 130, resumable), one exit code for all of them."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

from tui.cli.parser import PROG
from tui.core.aws import Target
from tui.core.errors import EXIT_AWS, EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from tui.core.events import Event
from tui.core.pipeline import ImportRun

# When runs end differently, the exit code is the first of these that any run had.
WORST_FIRST = (EXIT_INTERRUPTED, EXIT_BAD_INPUT, EXIT_AWS, EXIT_FAILED)


def renderer(as_json: bool, labels: dict[str, str]) -> Callable[[Event], None]:
    from tui.console import JsonLines, TextProgress

    return JsonLines(labels=labels) if as_json else TextProgress(labels=labels)


def poll_interval(requested: float | None, target: Target) -> float:
    if requested is not None:
        return requested
    return 1.0 if target.endpoint_url else 15.0  # a local endpoint converts in seconds


def drive(runs: list[ImportRun], cancel: threading.Event) -> int:
    """Run imports side by side until each ends; a signal sets `cancel` and every run stops
    where it is, recorded for `resume`."""
    # A run that never reports (its thread died in a bug) counts as failed, never as success.
    results: dict[str, int] = {r.run_id: EXIT_AWS for r in runs}

    def one(run: ImportRun) -> None:
        results[run.run_id] = run.run().exit_code  # run() reports every failure as an event

    def stop(signum: int, _frame: FrameType | None) -> None:
        cancel.set()

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        threads = [threading.Thread(target=one, args=(r,), daemon=True) for r in runs]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():  # join in slices so the main thread can take signals
                t.join(0.2)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    if cancel.is_set():
        ids = " ".join(r.run_id for r in runs if results.get(r.run_id) == EXIT_INTERRUPTED)
        if ids:
            print(f"{PROG}: interrupted; continue with: {PROG} resume {ids}", file=sys.stderr)
        return EXIT_INTERRUPTED
    codes = set(results.values())
    return next((code for code in WORST_FIRST if code in codes), EXIT_OK)
