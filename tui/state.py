"""What the wizard knows between its screens: the draft profile being edited, the import runs
started from it, and the conversion tasks seen to end.

The app owns one `WizardState`; screens read it through the app. Neither textual nor any
screen is imported here (the screens import this module, never the app). The event classes
load when the first event arrives, not with the first screen.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tui.core.draft import Draft

if TYPE_CHECKING:
    from tui.core.events import ConvertEvent, DoneEvent, ErrorEvent, Event, UploadEvent


@dataclass
class RunState:
    """What the wizard knows of one import run it started."""

    run_id: str
    profile_name: str
    cancel: threading.Event = field(default_factory=threading.Event)
    last_upload: UploadEvent | None = None
    last_convert: ConvertEvent | None = None  # qemu-img's progress, when the image is converted
    task_id: str | None = None
    instance_id: str | None = None
    done: DoneEvent | ErrorEvent | None = None
    log: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)  # how long it took, at its end

    def apply(self, event: Event) -> None:
        """Take in one event of the run (the pipeline's, in order)."""
        from tui.console import describe  # the CLI's own words for each event
        from tui.core.events import (
            ConvertEvent,
            DoneEvent,
            ErrorEvent,
            SubmittedEvent,
            UploadEvent,
        )

        match event:
            case ConvertEvent():
                self.last_convert = event
            case UploadEvent():
                self.last_upload = event
            case SubmittedEvent(conversion_task_id=task_id, instance_id=instance_id):
                self.task_id = task_id
                self.instance_id = instance_id
            case DoneEvent() | ErrorEvent():
                self.done = event
        self.log.extend(describe(event).splitlines())

    @property
    def status(self) -> str:
        """One word for the recent-runs table: running, error, or how it ended."""
        from tui.core.events import ErrorEvent

        if self.done is None:
            return "running"
        return "error" if isinstance(self.done, ErrorEvent) else self.done.state


@dataclass
class WizardState:
    draft: Draft = field(default_factory=Draft)
    runs: dict[str, RunState] = field(default_factory=dict)
    finished_tasks: dict[str, str] = field(default_factory=dict)  # task id -> final state

    def new_run(self, run_id: str, profile_name: str) -> RunState:
        run = RunState(run_id, profile_name)
        self.runs[run_id] = run
        return run

    def rename_run(self, run: RunState, run_id: str) -> None:
        """The pipeline gave the run its id (it had a placeholder until then)."""
        self.runs.pop(run.run_id, None)
        run.run_id = run_id
        self.runs[run_id] = run

    def task_finished(self, task_id: str, state: str) -> bool:
        """Record a task's end; True the first time (whoever sees it first: run or table)."""
        if task_id in self.finished_tasks:
            return False
        self.finished_tasks[task_id] = state
        return True

    def ours(self, *, sandbox: bool) -> dict[str, str]:
        """task id -> "profile · run" for tasks this machine started (journal + this session).
        Reads the journal: call it from a worker."""
        marks: dict[str, str] = {}
        try:
            from tui.core.journal import list_runs

            for rec in list_runs(sandbox=sandbox):
                if rec.task_id:
                    marks[rec.task_id] = f"{rec.profile_name} · {rec.short_id}"
        except Exception:  # the journal is optional: no marks rather than no table
            pass
        for run in list(self.runs.values()):  # a worker thread: the UI may add one meanwhile
            if run.task_id:
                marks[run.task_id] = f"{run.profile_name} · {run.run_id[:8]}"
        return marks
