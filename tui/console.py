"""How the command line shows pipeline events: progress bars and a summary on stderr (text), or
JSON Lines on stdout (`--json`). The TUI renders the same events its own way."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from tui.core.errors import coded
from tui.core.events import (
    CleanedEvent,
    ConvertedEvent,
    ConvertEvent,
    DoneEvent,
    ErrorEvent,
    Event,
    Outcome,
    ProbeEvent,
    StartedEvent,
    SubmittedEvent,
    TaggedEvent,
    TaskEvent,
    UploadedEvent,
    UploadEvent,
    WarningEvent,
)
from tui.core.units import human_bytes, human_duration


def bar(fraction: float, width: int = 24) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


class JsonLines:
    """One JSON object a line on stdout, each with "event" (docs/design.md section 3)."""

    def __init__(self, out: IO[str] | None = None, labels: dict[str, str] | None = None):
        self.out = out or sys.stdout
        self.labels = labels if labels is not None else {}
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        data: dict[str, Any] = event.to_json()
        if event.run_id in self.labels:
            data["profile"] = self.labels[event.run_id]
        with self._lock:
            self.out.write(json.dumps(data) + "\n")
            self.out.flush()


class TextProgress:
    """Bars on stderr: redrawn in place on a terminal, a line every few seconds otherwise."""

    def __init__(self, err: IO[str] | None = None, labels: dict[str, str] | None = None):
        self.err = err or sys.stderr
        self.tty = self.err.isatty()
        self.labels = labels if labels is not None else {}
        self._lock = threading.Lock()
        self._last_line: dict[str, float] = {}
        self._task_phase: dict[str, tuple[str, str]] = {}
        self._open_bar = False

    def _prefix(self, run_id: str) -> str:
        label = self.labels.get(run_id)
        return f"{label}: " if label and len(self.labels) > 1 else ""

    def _line(self, text: str) -> None:
        if self._open_bar:
            self.err.write("\n")
            self._open_bar = False
        self.err.write(text + "\n")
        self.err.flush()

    def _progress(self, run_id: str, text: str) -> None:
        now = time.monotonic()
        if self.tty and len(self.labels) <= 1:
            self.err.write("\r\x1b[2K" + text)
            self.err.flush()
            self._open_bar = True
        elif now - self._last_line.setdefault(run_id, now) >= 5.0:
            self._last_line[run_id] = now
            self._line(text)

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._render(event)

    def _render(self, e: Event) -> None:
        p = self._prefix(e.run_id)
        if isinstance(e, UploadEvent):
            frac = e.bytes_done / e.bytes_total if e.bytes_total else 1.0
            self._progress(
                e.run_id,
                f"{p}upload {bar(frac)} {frac:4.0%}  {e.parts_done}/{e.parts_total} parts  "
                f"{human_bytes(e.bytes_done)}/{human_bytes(e.bytes_total)}  "
                f"{human_bytes(e.bytes_per_s)}/s  ETA {human_duration(e.eta_s)}",
            )
        elif isinstance(e, ConvertEvent):
            self._progress(
                e.run_id,
                f"{p}qemu-img {bar(e.percent / 100)} {e.percent / 100:4.0%}  "
                f"{human_bytes(e.bytes_done)}/{human_bytes(e.bytes_total)}  "
                f"{human_bytes(e.bytes_per_s)}/s  ETA {human_duration(e.eta_s)}",
            )
        elif isinstance(e, TaskEvent) and e.task is not None:
            t = e.task
            key = (t.state, t.phase)
            if self._task_phase.get(e.run_id) != key:  # a new state or phase: always a line
                self._task_phase[e.run_id] = key
                self._line(p + describe(e))
            elif (pct := t.percent) is not None:
                self._progress(
                    e.run_id, f"{p}convert {bar(pct / 100)} {pct:3.0f}%  {t.task_id}  {t.message}"
                )
        elif not (isinstance(e, ErrorEvent) and e.code == "Interrupted"):  # cli.py says it
            line = describe(e)
            if line:
                self._line(p + line)


def describe(e: Event) -> str:
    """What an event says, in words (progress ticks say nothing): the CLI's lines and the
    wizard's event log."""
    if isinstance(e, ProbeEvent):
        size = f", {human_bytes(e.virtual_bytes)} virtual" if e.virtual_bytes else ""
        plan = f"; {e.plan}: {e.plan_reason}" if e.plan and e.plan != "upload" else ""
        about = "about " if e.plan and e.plan != "upload" else ""
        return (
            f"{e.path}: {e.format}, {about}{human_bytes(e.file_bytes)} to send{size}, "
            f"{e.volume_size_gib} GiB volume{plan}"
        )
    if isinstance(e, ConvertedEvent):
        how = "reused" if e.reused else f"made in {human_duration(e.seconds)}"
        return (
            f"converted {e.source_format} to a stream-optimized VMDK of "
            f"{human_bytes(e.bytes)} ({how}): {e.path}"
        )
    if isinstance(e, UploadedEvent):
        parts = f"{e.parts} part{'s' if e.parts != 1 else ''}"
        return (
            f"uploaded {parts} to s3://{e.bucket}/{e.manifest_key} "
            f"(sent {e.parts_sent}, already there {e.parts_skipped}); every part verified "
            "through its presigned URL"
        )
    if isinstance(e, SubmittedEvent):
        return f"submitted {e.conversion_task_id} (instance {e.instance_id})"
    if isinstance(e, TaskEvent) and e.task is not None:
        t = e.task
        said = f": {t.message}" if t.message and t.message != t.state else ""
        return f"{t.task_id} {t.state}{said}"
    if isinstance(e, TaggedEvent):
        tags = ", ".join(f"{k}={v}" for k, v in e.tags.items())
        return f"tagged {', '.join(e.resources)}: {tags}"
    if isinstance(e, StartedEvent):
        return (
            f"started {e.instance_id}: {e.state} {human_duration(e.seconds)} after StartInstances"
        )
    if isinstance(e, CleanedEvent):
        return (
            f"cleaned up: deleted {e.objects} objects (the uploaded parts and manifest) from "
            f"s3://{e.bucket}/{e.manifest_key}"
        )
    if isinstance(e, WarningEvent):
        return f"warning: {e.message}"
    if isinstance(e, ErrorEvent):
        return f"error: {coded(e.code, e.message)}"
    if isinstance(e, DoneEvent):
        return summary(e)
    return ""


def summary(e: DoneEvent, prefix: str = "") -> str:
    if e.state == Outcome.DRY_RUN:
        return f"{prefix}dry run: the request would succeed ({e.message})"
    lines = [f"{prefix}{e.state}: {e.conversion_task_id}"]
    if e.instance_id:
        lines.append(f"  instance  {e.instance_id}")
    if e.volume_id:
        lines.append(f"  volume    {e.volume_id}")
    if e.message:
        lines.append(f"  message   {e.message}")
    if e.state == Outcome.COMPLETED and e.instance_state:
        lines.append(f"  the instance is {e.instance_state}")
    elif e.state == Outcome.COMPLETED:
        lines.append("  the instance is stopped: start it when you are ready")
    for hint in e.cleanup:
        lines.append(f"  clean up the uploaded image from S3: {hint}")
    lines.append(f"  run id    {e.run_id}")
    return "\n".join(lines)


class Outcomes:
    """Passes every event on to `render`, keeping each run's last DoneEvent or ErrorEvent (for
    the alert at the end)."""

    def __init__(self, render: Callable[[Event], None]):
        self.render = render
        self.last: dict[str, DoneEvent | ErrorEvent] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, DoneEvent | ErrorEvent):
            self.last[event.run_id] = event
        self.render(event)


def alert_end(stream: IO[str], seconds: float, outcomes: Outcomes, labels: dict[str, str]) -> bool:
    """Ring the bell and send the desktop notification escape (tui/core/notify.py) when the
    runs took long enough and `stream` is a terminal: never into a pipe or a file."""
    from tui.core import notify

    ended = list(outcomes.last.values())
    if not ended or not notify.should_alert(seconds) or not stream.isatty():
        return False
    stream.write(notify.alert(notify.ended(ended, labels)))
    stream.flush()
    return True
