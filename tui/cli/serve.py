"""`sandbox`: serve the embedded endpoint until interrupted."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from tui.core.errors import EXIT_INTERRUPTED, EXIT_OK, InputError
from tui.core.facts import SANDBOX_CREDENTIALS
from tui.core.session import Session


def cmd_sandbox(session: Session, args: argparse.Namespace) -> int:
    """Serve the sandbox until SIGINT (exit 130) or SIGTERM (exit 0)."""
    from tui.sandbox import CREDENTIALS_ENV, start

    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        stop.set()

    # Handlers first: a signal right after the endpoint line must still stop us cleanly.
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            server = start(host=args.host, port=args.port, rate=args.rate, faults=args.faults)
        except OSError as exc:
            raise InputError(f"cannot serve on {args.host}:{args.port}: {exc}") from None
        try:
            print(f"endpoint: {server.endpoint}", flush=True)
            print(
                f"sandbox: sign with access key {SANDBOX_CREDENTIALS[0]} (secret in the README) "
                f"or a pair from {CREDENTIALS_ENV}; Ctrl-C to stop",
                file=sys.stderr,
                flush=True,
            )
            # A moto that failed to load (or changed) ends the command with its one-line error
            # instead of serving 503s: wait_ready raises it.
            while not stop.wait(0.5):
                server.wait_ready(0)
        finally:
            server.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return EXIT_INTERRUPTED if received and received[0] == signal.SIGINT else EXIT_OK
