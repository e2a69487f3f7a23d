"""The Textual wizard. `run_app(session)` is what `ec2-import-wizard` with no command calls.

Import-light on purpose: the first screen paints before boto3, botocore, moto or the sandbox
load (a test checks sys.modules). Everything that talks to AWS runs in thread workers through
`tui.core.account.Account`; an import run is the shared `tui.core.pipeline.ImportRun`, driven
here on the app (not a screen) so leaving the submit screen never orphans it.
"""

from __future__ import annotations

import gc
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen

from tui.core.account import Account
from tui.core.aws import Target
from tui.core.draft import Draft
from tui.core.session import Session
from tui.widgets.commands import AppCommands, Command

DEFAULT_POLL = 15.0


@dataclass
class RunState:
    """What the app knows of one import run started from the wizard."""

    run_id: str
    profile_name: str
    cancel: threading.Event = field(default_factory=threading.Event)
    last_upload: Any = None  # the latest UploadEvent
    task_id: str | None = None
    instance_id: str | None = None
    done: Any = None  # DoneEvent or ErrorEvent
    log: list[str] = field(default_factory=list)


def make_account(session: Session) -> Account:
    def target() -> Target:
        if session.sandbox:
            session.start_sandbox()  # idempotent: the warm-up after the first paint started it
        return session.target()

    return Account(target, session.label)


class WizardApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "ec2-import-wizard"
    COMMANDS = App.COMMANDS | {AppCommands}
    BINDINGS = [
        Binding("n", "new_import", "New import", id="app.new_import"),
        Binding("t", "tasks", "Tasks", id="app.tasks"),
        Binding("p", "profiles", "Profiles", id="app.profiles"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
    ]

    def __init__(
        self,
        session: Session,
        *,
        account: Account | None = None,
        blink: bool = True,
        poll: float = DEFAULT_POLL,
        warm_up: bool = True,
        start_dir: Path | None = None,
    ):
        super().__init__()
        self.session = session
        self.account = account or make_account(session)
        self.blink = blink  # tests and screenshots freeze the cursor
        self.poll = poll
        self.warm_up = warm_up
        self.start_dir = start_dir  # where the disk image tree starts (default: cwd)
        self.draft = Draft()
        self.runs: dict[str, RunState] = {}
        self.finished_tasks: dict[str, str] = {}  # task id -> final state, as first seen
        self.sub_title = self.account.label

    @property
    def sandbox(self) -> bool:
        return self.session.sandbox

    def compose(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        from tui.screens.home import HomeScreen

        self.push_screen(HomeScreen())
        if self.warm_up:
            # After the first paint: load botocore's model (enums, validation) off the UI thread.
            self.set_timer(0.3, self._warm_up)

    @work(thread=True, exclusive=True, group="warm-up", exit_on_error=False)
    def _warm_up(self) -> None:
        from tui.core.request import enum_values

        if self.session.sandbox:
            self.session.start_sandbox()

        for shape in ("InstanceType", "Tenancy", "ShutdownBehavior", "ArchitectureValues"):
            enum_values(shape)

    # navigation ----------------------------------------------------------------------------

    def _pop_to(self, kind: type[Screen[Any]]) -> bool:
        """Pop screens until one of `kind` is on top; False if there is none."""
        if not any(isinstance(s, kind) for s in self.screen_stack):
            return False
        while not isinstance(self.screen, kind):
            self.pop_screen()
        return True

    def action_profiles(self) -> None:
        from tui.screens.home import HomeScreen

        self._pop_to(HomeScreen)
        if isinstance(self.screen, HomeScreen):
            self.screen.reload()

    def action_new_import(self, draft: Draft | None = None) -> None:
        from tui.screens.disk import DiskScreen

        self.draft = draft or Draft()
        self.action_profiles()
        self.push_screen(DiskScreen())

    def open_profile(self, draft: Draft) -> None:
        self.action_new_import(draft)

    def action_tasks(self) -> None:
        from tui.screens.tasks import TasksScreen

        if not self._pop_to(TasksScreen):
            self.push_screen(TasksScreen())

    def action_switch_account(self) -> None:
        from tui.screens.dialogs import AccountScreen

        def switched(result: tuple[str | None, str | None] | None) -> None:
            if result is None:
                return
            self.session = self.session.with_account(*result)
            self.account = make_account(self.session)
            self.sub_title = self.account.label
            self.notify(f"Now using {self.account.label}", title="Account")
            for screen in self.screen_stack:
                if hasattr(screen, "account_changed"):
                    screen.account_changed()

        self.push_screen(AccountScreen(self.session), switched)

    def palette_commands(self) -> list[Command]:
        return [
            ("New import", "start the wizard with an empty profile", self.action_new_import),
            ("Conversion tasks", "the live table of DescribeConversionTasks", self.action_tasks),
            ("Saved profiles", "the home screen", self.action_profiles),
            (
                "Switch AWS profile or region",
                "change the account context",
                self.action_switch_account,
            ),
            ("Quit", "leave the wizard", self.exit),
        ]

    # import runs ---------------------------------------------------------------------------

    def start_run(self, profile: Any, origin: Path | None) -> RunState:
        """Start the shared pipeline in a thread; events come back to `run_event`."""
        from uuid import uuid4

        state = RunState(run_id=f"pending-{uuid4().hex[:8]}", profile_name=profile.name)
        self.runs[state.run_id] = state
        self._run_worker(state, profile, origin)
        return state

    @work(thread=True, group="runs", exit_on_error=False)
    def _run_worker(self, state: RunState, profile: Any, origin: Path | None) -> None:
        from tui.core.errors import WizardError
        from tui.core.events import ErrorEvent

        try:
            from tui.core.pipeline import ImportRun
            from tui.core.plan import plan_import

            plan = plan_import(profile, origin)
            if profile.source.bucket:
                self.account.ensure_bucket(profile.source.bucket)
            run = ImportRun(
                plan,
                self.account.target(),
                poll=self.poll,
                wait=True,
                dry_run=bool(profile.request.DryRun),
                on_event=lambda e: self.call_from_thread(self.run_event, state, e),
                cancel=state.cancel,
            )
            self.call_from_thread(self._rename_run, state, run.run_id)
            run.run()
        except Exception as exc:
            if isinstance(exc, WizardError):
                err = exc
            else:
                from tui.core.aws import map_error

                err = map_error(exc)
            code = getattr(err, "code", None) or type(err).__name__
            event = ErrorEvent(run_id=state.run_id, code=code, message=str(err))
            self.call_from_thread(self.run_event, state, event)

    def _rename_run(self, state: RunState, run_id: str) -> None:
        self.runs.pop(state.run_id, None)
        state.run_id = run_id
        self.runs[run_id] = state

    def run_event(self, state: RunState, event: Any) -> None:
        name = getattr(event, "name", "")
        if name == "upload":
            state.last_upload = event
        elif name == "submitted":
            state.task_id = event.conversion_task_id
            state.instance_id = event.instance_id
        elif name in ("done", "error"):
            state.done = event
            if name == "error":
                self.notify(event.message, title="Import failed", severity="error", timeout=10)
            elif event.conversion_task_id and event.state in ("completed", "cancelled"):
                self.task_finished(event.conversion_task_id, event.state, event.message)
        from tui.console import describe  # the CLI's own words for each event

        state.log.extend(describe(event).splitlines())
        for screen in self.screen_stack:
            handler = getattr(screen, "run_event", None)
            if handler is not None:
                handler(state, event)

    def task_finished(self, task_id: str, state: str, message: str = "") -> None:
        """One notification per task, whoever sees the change first (pipeline or table)."""
        if task_id in self.finished_tasks:
            return
        self.finished_tasks[task_id] = state
        if state == "completed":
            self.notify(f"{task_id} completed", title="Conversion task", timeout=8)
        else:
            self.notify(
                f"{task_id} {state}: {message}" if message else f"{task_id} {state}",
                title="Conversion task",
                severity="warning",
                timeout=10,
            )

    def ours(self) -> dict[str, str]:
        """task id -> "profile · run" for tasks this machine started (journal + this session)."""
        marks: dict[str, str] = {}
        try:
            from tui.core.journal import list_runs

            for rec in list_runs(sandbox=self.sandbox):
                if rec.task_id:
                    marks[rec.task_id] = f"{rec.profile_name} · {rec.short_id}"
        except Exception:  # the journal is optional: no marks rather than no table
            pass
        for state in self.runs.values():
            if state.task_id:
                marks[state.task_id] = f"{state.profile_name} · {state.run_id[:8]}"
        return marks


def run_app(session: Session, **run_options: Any) -> int:
    # Everything imported so far (Textual, Rich, the app) lives as long as the process. Frozen,
    # it is skipped by the collector's full passes: without this, the one that falls during
    # start-up scans all of it and delays the first screen by about 30 ms.
    gc.freeze()
    code = WizardApp(session).run(**run_options)
    return int(code or 0)
