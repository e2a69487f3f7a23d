"""Running imports from the command line: side by side in threads, stopped cleanly by SIGINT or
SIGTERM (exit 130, resumable), one exit code for all of them.

The first signal asks every run to stop where it is; a run blocked in a request (a stalled
network) gets GRACE_S, then is recorded as interrupted from here and the process exits. A
second signal does that at once. Either way the record is one `resume` goes on from.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import NoReturn

from tui.cli.parser import PROG
from tui.core.aws import Target
from tui.core.errors import EXIT_AWS, EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from tui.core.events import Event
from tui.core.pipeline import ImportRun

# When runs end differently, the exit code is the first of these that any run had.
WORST_FIRST = (EXIT_INTERRUPTED, EXIT_BAD_INPUT, EXIT_AWS, EXIT_FAILED)
GRACE_S = 1.5  # after the first signal: the process exits within about 2 s whatever happens


def renderer(as_json: bool, labels: dict[str, str]) -> Callable[[Event], None]:
    from tui.console import JsonLines, TextProgress

    return JsonLines(labels=labels) if as_json else TextProgress(labels=labels)


def poll_interval(requested: float | None, target: Target) -> float:
    if requested is not None:
        return requested
    return 1.0 if target.endpoint_url else 15.0  # a local endpoint converts in seconds


def exit_now(code: int) -> NoReturn:
    """Leave without waiting for threads blocked in a request (their sockets die with us)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def drive(
    runs: list[ImportRun],
    cancel: threading.Event,
    leave: Callable[[int], NoReturn] = exit_now,
) -> int:
    """Run imports side by side until each ends; a signal sets `cancel` and every run stops
    where it is, recorded for `resume`."""
    # A run that never reports (its thread died in a bug) counts as failed, never as success.
    results: dict[str, int] = {r.run_id: EXIT_AWS for r in runs}
    signalled_at: list[float] = []

    def one(run: ImportRun) -> None:
        results[run.run_id] = run.run().exit_code  # run() reports every failure as an event

    def give_up(threads: list[threading.Thread]) -> NoReturn:
        for run, thread in zip(runs, threads, strict=True):
            if thread.is_alive():
                run.abandon()
                results[run.run_id] = EXIT_INTERRUPTED
        _resume_hint(runs, results)
        leave(EXIT_INTERRUPTED)

    threads = [threading.Thread(target=one, args=(r,), daemon=True) for r in runs]

    def stop(signum: int, _frame: FrameType | None) -> None:
        if signalled_at:
            give_up(threads)  # the second signal: now
        signalled_at.append(time.monotonic())
        cancel.set()

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():  # join in slices so the main thread can take signals
                t.join(0.1)
                if signalled_at and time.monotonic() - signalled_at[0] > GRACE_S:
                    give_up(threads)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    if cancel.is_set():
        _resume_hint(runs, results)
        return EXIT_INTERRUPTED
    codes = set(results.values())
    return next((code for code in WORST_FIRST if code in codes), EXIT_OK)


def _resume_hint(runs: list[ImportRun], results: dict[str, int]) -> None:
    stopped = [r for r in runs if results.get(r.run_id) == EXIT_INTERRUPTED]
    if ids := " ".join(r.run_id for r in stopped if r.recorded):
        print(f"{PROG}: interrupted; continue with: {PROG} resume {ids}", file=sys.stderr)
    if any(not r.recorded for r in stopped):
        print(f"{PROG}: interrupted before anything was uploaded or recorded", file=sys.stderr)
