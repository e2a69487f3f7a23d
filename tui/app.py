"""The Textual wizard. `run_app(session)` is what `ec2-import-wizard` with no command calls.

Import-light on purpose: the first screen paints before boto3, botocore, moto or the sandbox
load (a test checks sys.modules). Everything that talks to AWS runs in thread workers through
`tui.core.account.Account`; an import run is the shared `tui.core.pipeline.ImportRun`, driven
here on the app (not a screen) so leaving the submit screen never orphans it.

The app is also the wizard's router: the order of the steps is stated once, in `wizard_steps`,
and a step asks the app for the next one (`next_step`) instead of importing it. What the app
tells its screens travels as the typed messages of `tui.messages`.

Nothing fails silently: a worker that raises is reported on screen (`worker_failed`), and a
crash (an exception textual treats as fatal) ends the app with return code 1, a two-line
message on stderr and the whole traceback, redacted, in a log file (`crashed`).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.worker import Worker, WorkerState

from tui.core.account import Account
from tui.core.aws import Target
from tui.core.draft import Draft
from tui.core.session import Session
from tui.messages import AccountChanged, RunUpdated
from tui.state import RunState, WizardState
from tui.widgets.commands import AppCommands, Command
from tui.widgets.fit_table import NARROW
from tui.widgets.textual_adapter import CrashGuard

if TYPE_CHECKING:
    from textual.content import Content

    from tui.core.events import DoneEvent, ErrorEvent, Event
    from tui.core.journal import RunRecord
    from tui.core.pipeline import ImportRun
    from tui.core.profiles import Profile
    from tui.core.tasks import TaskView
    from tui.screens.base import BaseScreen

DEFAULT_POLL = 15.0
SHOWN_ERROR = 160  # characters of an error's message on screen or on stderr; the log has all


def make_account(session: Session) -> Account:
    def target() -> Target:
        if session.sandbox:
            session.start_sandbox()  # idempotent: the warm-up after the first paint started it
        return session.target()

    return Account(target, session.label)


def wizard_steps() -> tuple[type[BaseScreen], ...]:
    """The wizard's steps, in order: the one place that says what comes after what. Imported
    when the wizard starts, not with the first screen (the form widgets are heavy)."""
    from tui.screens.disk import DiskScreen
    from tui.screens.platform import PlatformScreen
    from tui.screens.preview import PreviewScreen
    from tui.screens.spec import SpecScreen

    return (DiskScreen, SpecScreen, PlatformScreen, PreviewScreen)


def one_line(error: BaseException) -> str:
    """An error as one short line a user can read: no secrets, no newlines, bounded."""
    from tui.core.redact import redact_text

    text = " ".join(redact_text(f"{type(error).__name__}: {error}").split())
    return text if len(text) <= SHOWN_ERROR else text[: SHOWN_ERROR - 1] + "…"


def write_report(kind: str, errors: Sequence[BaseException], path: Path | None = None) -> Path:
    """The full tracebacks of `errors` (no locals), redacted, written atomically with mode
    0600 to `path` (default: a new `<state>/logs/<kind>-<UTC time>.log`)."""
    import platform
    import traceback
    from datetime import UTC, datetime

    from tui.core.fsutil import atomic_write
    from tui.core.paths import logs_dir
    from tui.core.redact import redact_text
    from tui.widgets.textual_adapter import installed_textual

    now = datetime.now(UTC)
    if path is None:
        path = logs_dir() / f"{kind}-{now:%Y%m%dT%H%M%S.%fZ}.log"
    head = (
        f"ec2-import-wizard {kind} report, {now.isoformat(timespec='seconds')}\n"
        f"python {platform.python_version()}, textual {installed_textual()}\n\n"
    )
    body = "\n".join("".join(traceback.format_exception(e)) for e in errors)
    atomic_write(path, redact_text(head + body))
    return path


# How long a quit waits for stopped uploads to be recorded (a part's socket read timeout is 12 s).
QUIT_GRACE_S = 15.0

# The app's actions bound to a bare letter (BINDINGS below).
LETTER_ACTIONS = frozenset({"new_import", "tasks", "profiles", "help", "back_or_quit", "cursor"})


class WizardApp(CrashGuard[int]):
    CSS_PATH = "app.tcss"
    TITLE = "ec2-import-wizard"
    # Every screen (dialogs too) has one of these classes for the terminal's width: app.tcss
    # lays a screen out in one column, with narrower labels and tables, below 100 columns.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (NARROW, "-wide")]
    COMMANDS = App.COMMANDS | {AppCommands}
    BINDINGS = [
        Binding("n", "new_import", "New import", id="app.new_import"),
        Binding("t", "tasks", "Tasks", id="app.tasks"),
        Binding("p", "profiles", "Profiles", id="app.profiles"),
        Binding("question_mark", "help", "Keys", id="app.help"),
        Binding("f1", "help_on_form", "Keys", id="app.help_on_form"),
        Binding("q", "back_or_quit", "Back/quit", id="app.back_or_quit", show=False),
        Binding("j", "cursor('down')", "Down", id="app.down", show=False),
        Binding("k", "cursor('up')", "Up", id="app.up", show=False),
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
        self.state = WizardState()
        self._own_account = account is None  # its label is refined once botocore has loaded
        self.sub_title = self.account.label  # the account context: in every screen's header
        self._crashes: list[BaseException] = []
        self._crash_log: Path | None = None
        self._settings_warnings = self._restore_theme()

    _saved_theme: str | None = None  # what the settings file says (None: nothing yet)
    _settings_read = False  # textual sets its default theme before the file is read

    def _restore_theme(self) -> list[str]:
        """The theme saved last time (a file of a few bytes: read before the first paint)."""
        from tui.core.settings import load_settings

        settings, warnings = load_settings()
        if settings.theme is not None and settings.theme not in self.available_themes:
            names = ", ".join(sorted(self.available_themes))
            warnings.append(f"theme {settings.theme!r} is not one of {names}; the default is used")
        elif settings.theme is not None:
            self._saved_theme = settings.theme
            self.theme = settings.theme
        self._settings_read = True
        return warnings

    def watch_theme(self, theme: str) -> None:
        if self._settings_read and theme != self._saved_theme:
            # A change (the palette's "Change theme"): kept for the next start.
            self._saved_theme = theme
            self._save_theme(theme)

    @work(thread=True, group="settings", exit_on_error=False)
    def _save_theme(self, theme: str) -> None:
        from tui.core.settings import save_setting

        try:
            save_setting("theme", theme)
        except Exception as exc:
            self.call_from_thread(
                self.notify, one_line(exc), title="Theme not saved", severity="warning"
            )

    @property
    def sandbox(self) -> bool:
        return self.session.sandbox

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # The app's letter keys are off on a form (BaseScreen.TYPING): there, a letter typed
        # while a select or a button has the focus is nothing, never a jump to another screen.
        typing = getattr(self.screen, "TYPING", False)
        if (
            action == "help_on_form"
        ):  # where `?` is text, f1 shows the keys (and the footer says so)
            return typing
        return not (action in LETTER_ACTIONS and typing)

    def compose(self) -> ComposeResult:
        yield from ()

    def format_title(self, title: str, sub_title: str) -> Content:
        """Every screen's header: where the user is (the screen's sub_title), then the
        account context (the app's), which no screen hides."""
        from textual.content import Content

        place = sub_title if sub_title and sub_title != self.sub_title else title
        return Content.assemble(place, (" — ", "dim"), (self.sub_title, "bold"))

    def on_mount(self) -> None:
        from tui.screens.home import HomeScreen

        self.push_screen(HomeScreen())
        for warning in self._settings_warnings:
            self.notify(warning, title="Settings", severity="warning", timeout=10)
        if self._own_account:
            # After the first paint: botocore loads in that worker, and holds the GIL a while.
            self.call_after_refresh(self._resolve_context, self.session)
        if self.warm_up:
            # After the first paint: load botocore's model (enums, validation) off the UI thread.
            self.set_timer(0.3, self._warm_up)

    @work(thread=True, exclusive=True, group="warm-up", exit_on_error=False)
    def _warm_up(self) -> None:
        from tui.core.request import enum_values
        from tui.widgets.textual_adapter import check_app, installed_textual

        # The whole check of the crash guard (it reads textual's source): off the UI thread.
        check_app(App, installed_textual(), source=True)
        if self.session.sandbox:
            self.session.start_sandbox()
        for shape in ("InstanceType", "Tenancy", "ShutdownBehavior", "ArchitectureValues"):
            enum_values(shape)

    @work(thread=True, exclusive=True, group="context", exit_on_error=False)
    def _resolve_context(self, session: Session) -> None:
        label = session.context_label()
        self.call_from_thread(self._context_resolved, session, label)

    def _context_resolved(self, session: Session, label: str) -> None:
        if session is self.session:  # not switched meanwhile
            self.account.label = label
            self.sub_title = label

    # errors --------------------------------------------------------------------------------

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            self.worker_failed(event.worker, event.worker.error)

    def worker_failed(self, worker: Worker[object], error: BaseException) -> None:
        """A worker (the app's or a screen's) raised: say so on screen. Ours are meant to
        report their own failures, so this one was unexpected: its traceback goes to a log."""
        from tui.core.errors import WizardError

        if isinstance(error, WizardError):  # a clear message already
            self.notify(one_line(error), title="Error", severity="error", timeout=10)
            return
        try:
            where = f"details in {write_report('error', [error])}"
        except Exception as exc:  # a full or read-only disk: the message still shows
            where = f"no log written: {one_line(exc)}"
        self.notify(
            f"{one_line(error)}\n{where}", title="Unexpected error", severity="error", timeout=15
        )

    def crashed(self, error: BaseException) -> str:
        """Each error of a crash goes into one log; stderr gets what happened and where the
        log is (textual prints it on exit)."""
        self._crashes.append(error)
        try:
            self._crash_log = write_report("crash", self._crashes, self._crash_log)
            where = f"the full report (redacted): {self._crash_log}"
        except Exception as exc:
            where = f"no report written: {one_line(exc)}"
        return f"ec2-import-wizard crashed: {one_line(self._crashes[0])}\n{where}"

    # navigation ----------------------------------------------------------------------------

    def _pop_to(self, kind: type[BaseScreen]) -> bool:
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
        """The wizard's first step, on a new draft (or on a saved profile's)."""
        self.state.draft = draft or Draft()
        self.action_profiles()
        self.push_screen(wizard_steps()[0]())

    def open_profile(self, draft: Draft, region: str | None = None) -> None:
        """Open a saved profile in the wizard. One saved for another region than `region`
        (where the wizard's requests go) is opened only once the user says how: switch to
        its region, or stay and leave out what exists only in its region."""
        from tui.core.draft import REGION_BOUND
        from tui.screens.dialogs import ChoiceScreen

        saved = draft.get("aws.region")
        if not saved or not region or saved == region:
            self.action_new_import(draft)
            return
        bound = [path for path in REGION_BOUND if draft.get(path) is not None]
        name = draft.get("name") or "This profile"

        def answered(answer: str | None) -> None:
            if answer == "switch":
                self.use_account(self.session.aws_profile, saved)
            elif answer == "stay":
                for path in bound:
                    draft.set(path, None)
                draft.set("aws.region", region)
                if bound:
                    left = ", ".join(path.rsplit(".", 1)[-1] for path in bound)
                    self.notify(
                        f"Left out (they exist in {saved} only): {left}",
                        title=f"Opened on {region}",
                        severity="warning",
                        timeout=10,
                    )
            else:
                return
            self.action_new_import(draft)

        what = (
            f" Its {', '.join(p.rsplit('.', 1)[-1] for p in bound)} exist there only."
            if bound
            else ""
        )
        self.push_screen(
            ChoiceScreen(
                f"{name} was saved for {saved}; the wizard is on {region}.{what}",
                [("switch", f"Switch to {saved}"), ("stay", f"Open on {region} without them")],
            ),
            answered,
        )

    def next_step(self, current: BaseScreen) -> None:
        """`current`, a step of the wizard, is done: show the step after it."""
        steps = wizard_steps()
        self.push_screen(steps[steps.index(type(current)) + 1]())

    def previous_step(self) -> None:
        """Back to the step before (the steps are stacked in order)."""
        self.pop_screen()

    def action_tasks(self) -> None:
        from tui.screens.tasks import TasksScreen

        if not self._pop_to(TasksScreen):
            self.push_screen(TasksScreen())

    def action_switch_account(self) -> None:
        from tui.screens.dialogs import AccountScreen

        def switched(result: tuple[str | None, str | None] | None) -> None:
            if result is not None:
                self.use_account(*result)

        self.push_screen(AccountScreen(self.session), switched)

    def use_account(self, aws_profile: str | None, region: str | None) -> None:
        """Another AWS profile or region from now on; every screen is told."""
        self.session = self.session.with_account(aws_profile, region)
        self.account = make_account(self.session)
        self.sub_title = self.account.label
        self._own_account = True
        self._resolve_context(self.session)
        self.notify(f"Now using {self.account.label}", title="Account")
        for screen in self.screen_stack:
            screen.post_message(AccountChanged())

    # cleanup --------------------------------------------------------------------------------

    @work(thread=True, group="cleanup", exit_on_error=False)
    def clean_up(self, task: TaskView | None, record: RunRecord | None) -> None:
        """Delete an upload's parts and manifest (the tasks screen's and a run's cleanup):
        never while a run of this machine owns the record, which is brought up to date first."""
        journal = self.session.journal
        try:
            if record is None and task is not None:
                record = journal.find_by_task(task.task_id)
            with journal.own_latest(record):
                summary = self.account.cleanup(task, record).capitalize()
        except Exception as exc:
            self.call_from_thread(
                self.notify, str(exc), title="Cleanup failed", severity="error", timeout=8
            )
            return
        self.call_from_thread(self.notify, summary, title="Cleanup", timeout=5)

    # keys -----------------------------------------------------------------------------------

    def action_help(self) -> None:
        """The keys that work here, from the bindings themselves (what the footer shows, and
        what it has no room for)."""
        from tui.screens.dialogs import HelpScreen

        here: dict[str, str] = {}
        everywhere: dict[str, str] = {}
        for active in self.active_bindings.values():
            binding = active.binding
            if not binding.description or not active.enabled or binding.action.startswith("help"):
                continue
            if active.node is self:
                everywhere.setdefault(binding.description, self.get_key_display(binding))
            elif active.node is self.screen:
                here.setdefault(binding.description, self.get_key_display(binding))
        everywhere["Keys"] = "f1" if getattr(self.screen, "TYPING", False) else "?"
        title = self.screen.sub_title or self.screen.title or "ec2-import-wizard"
        self.push_screen(
            HelpScreen(
                title,
                [
                    ("This screen", [(k, d) for d, k in here.items()]),
                    ("Everywhere", [(k, d) for d, k in everywhere.items()]),
                ],
            )
        )

    def action_help_on_form(self) -> None:
        self.action_help()

    async def action_back_or_quit(self) -> None:
        """`q`: back one screen; on the first screen, quit (asking first during an upload)."""
        from tui.screens.home import HomeScreen

        back = getattr(self.screen, "action_back", None)
        if isinstance(self.screen, HomeScreen) or back is None:
            await self.action_quit()
        else:
            back()

    def action_cursor(self, direction: str) -> None:
        """`j`/`k`: down and up in the table or list that has the focus."""
        move = getattr(self.focused, f"action_cursor_{direction}", None)
        if move is not None:
            move()

    # quitting -------------------------------------------------------------------------------

    def uploading(self) -> list[RunState]:
        """This session's runs that EC2 does not have yet: quitting would stop them."""
        return [r for r in self.state.runs.values() if r.done is None and not r.task_id]

    async def action_quit(self) -> None:
        """Quit; with an upload running, only once the user says so, and only after the run
        has been recorded as interrupted (it then resumes from Recent runs or `resume`)."""
        from tui.core.units import counted
        from tui.screens.dialogs import ConfirmScreen

        running = self.uploading()
        if not running:
            self.exit()
            return
        names = ", ".join(r.profile_name for r in running)

        def answered(stop: bool | None) -> None:
            if stop:
                self._stop_then_quit(running)

        self.push_screen(
            ConfirmScreen(
                f"{counted(len(running), 'import')} still uploading ({names}). Stop and quit? "
                "What is uploaded stays: resume from Recent runs, or with "
                "`ec2-import-wizard resume RUN_ID`.",
                yes="Stop and quit",
                danger=True,
            ),
            answered,
        )

    def _stop_then_quit(self, runs: list[RunState]) -> None:
        import time

        for run in runs:
            run.cancel.set()
        self.notify("Stopping: the parts in flight finish, then the run is recorded …")
        # The parts in flight end within the socket's read timeout; then quit regardless.
        deadline = time.monotonic() + QUIT_GRACE_S

        def check() -> None:
            if all(r.done is not None for r in runs) or time.monotonic() > deadline:
                self.exit()

        self.set_interval(0.1, check)

    def palette_commands(self) -> list[Command]:
        return [
            ("New import", "start the wizard with an empty profile (n)", self.action_new_import),
            (
                "Conversion tasks",
                "the live table of DescribeConversionTasks (t)",
                self.action_tasks,
            ),
            ("Saved profiles", "the home screen (p)", self.action_profiles),
            (
                "Switch account (AWS profile, region)",
                "change the account context (a on the home screen)",
                self.action_switch_account,
            ),
            ("Keys", "every key of this screen and of the app (? or f1)", self.action_help),
        ]

    # import runs ---------------------------------------------------------------------------

    def submit(self, profile: Profile, origin: Path | None) -> RunState:
        """Start an import run of `profile` and show its progress."""
        from tui.screens.submit import SubmitScreen

        run = self.start_run(profile, origin)
        self.push_screen(SubmitScreen(run))
        return run

    def start_run(self, profile: Profile, origin: Path | None) -> RunState:
        """Start the shared pipeline in a thread; its events come back to `run_event`."""
        from uuid import uuid4

        run = self.state.new_run(f"pending-{uuid4().hex[:8]}", profile.name)

        def importer(on_event: Callable[[Event], None]) -> ImportRun:
            from tui.core.pipeline import ImportRun
            from tui.core.plan import plan_import

            return ImportRun(
                plan_import(profile, origin),
                self.account.target(),
                poll=self.poll,
                wait=True,
                dry_run=bool(profile.request.DryRun),
                on_event=on_event,
                cancel=run.cancel,
                preflight=True,  # nothing is uploaded until the account and the disk say yes
            )

        self._run_worker(run, importer)
        return run

    def resume_run(self, record: RunRecord) -> RunState:
        """Go on with a recorded run (stopped here or elsewhere) and show its progress."""
        from tui.screens.submit import SubmitScreen

        # A sandbox run can go on only in the sandbox it used: this app's, if it started here.
        sandbox_alive = self.sandbox and record.run_id in self.state.runs
        run = self.state.new_run(record.run_id, record.profile_name)

        def importer(on_event: Callable[[Event], None]) -> ImportRun:
            from tui.core.pipeline import ImportRun

            target = self.account.target() if sandbox_alive else self.session.target_of(record)
            return ImportRun.resume(
                record,
                target,
                sandbox_alive=sandbox_alive,
                poll=self.poll,
                on_event=on_event,
                cancel=run.cancel,
            )

        self._run_worker(run, importer)
        self.push_screen(SubmitScreen(run))
        return run

    @work(thread=True, group="runs", exit_on_error=False)
    def _run_worker(
        self, run: RunState, importer: Callable[[Callable[[Event], None]], ImportRun]
    ) -> None:
        from tui.core.events import ErrorEvent

        def on_event(event: Event) -> None:
            self.call_from_thread(self.run_event, run, event)

        try:
            started = importer(on_event)
        except Exception as exc:  # no run yet (the image, the profile, the target): say why
            on_event(ErrorEvent.from_exception(run.run_id, exc))
            return
        if started.run_id != run.run_id:
            self.call_from_thread(self.state.rename_run, run, started.run_id)
        started.run()  # never raises: a failure is its last event, an ErrorEvent

    def run_event(self, run: RunState, event: Event) -> None:
        """One event of a run, on the UI thread: the run takes it in, then every screen."""
        from tui.core.events import DoneEvent, ErrorEvent, Outcome

        run.apply(event)
        if isinstance(event, DoneEvent | ErrorEvent):
            self.alert_end(run, event)
        match event:
            case ErrorEvent(message=message):
                self.notify(message, title="Import failed", severity="error", timeout=10)
            case DoneEvent(
                conversion_task_id=str() as task_id, state=Outcome.COMPLETED | Outcome.CANCELLED
            ):
                self.task_finished(task_id, event.state, event.message)
        for screen in self.screen_stack:
            screen.post_message(RunUpdated(run, event))

    def alert_end(self, run: RunState, end: DoneEvent | ErrorEvent) -> None:
        """The bell and a desktop notification when a long run ends (tui/core/notify.py), as
        the command line gives them; not for a stop the user asked for."""
        from tui.core import notify
        from tui.core.errors import InputError
        from tui.core.events import ErrorEvent
        from tui.widgets.textual_adapter import write_escape

        if isinstance(end, ErrorEvent) and end.code == "Interrupted":
            return
        try:
            if not notify.should_alert(time.monotonic() - run.started):
                return
        except InputError:  # a bad EC2_IMPORT_WIZARD_NOTIFY_AFTER: the CLI says so
            return
        self.bell()
        write_escape(self, notify.notification(notify.ended([end], {run.run_id: run.profile_name})))

    def task_finished(self, task_id: str, state: str, message: str = "") -> None:
        """One notification per task, whoever sees the change first (pipeline or table)."""
        if not self.state.task_finished(task_id, state):
            return
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
        """task id -> "profile · run" for the tasks this machine started (reads the journal)."""
        return self.state.ours(sandbox=self.sandbox)


def run_app(
    session: Session, *, headless: bool = False, size: tuple[int, int] | None = None
) -> int:
    """Run the wizard; the process's exit code: 0, or 1 after a crash."""
    # Everything imported so far (Textual, Rich, the app) lives as long as the process. Frozen,
    # it is skipped by the collector's full passes: without this, the one that falls during
    # start-up scans all of it and delays the first screen by about 30 ms.
    gc.freeze()
    app = WizardApp(session)
    app.run(headless=headless, size=size)
    # textual's return code, not the app's result: a crash leaves the result None, the code 1.
    return app.return_code or 0
