"""One run of this machine, from its record: where it stopped and what can be done with it
(resume it, open its conversion task, delete what it uploaded)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label, Static

from tui.messages import RunUpdated
from tui.screens.base import BaseScreen
from tui.widgets.commands import Command

if TYPE_CHECKING:
    from tui.core.journal import RunRecord


def detail(record: RunRecord) -> Table:
    from tui.core.units import human_bytes

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    stopped = f" (in {record.interrupted_in})" if record.interrupted_in else ""
    rows = [
        ("Run", record.run_id),
        ("Profile", record.profile_name),
        ("State", f"{record.state}{stopped}"),
        ("Image", record.image_path or "(an uploaded manifest)"),
        ("Size", f"{human_bytes(record.image_bytes)} {record.image_format}".strip()),
        ("Parts", f"{len(record.parts_done)} of {record.parts_total} confirmed in S3"),
        ("Manifest", f"s3://{record.bucket}/{record.manifest_key}" if record.bucket else "-"),
        ("Task", record.task_id or "-"),
        ("Instance", record.instance_id or "-"),
        ("Region", record.region + ("  (sandbox)" if record.sandbox else "")),
        ("Updated", record.updated_at[:19].replace("T", " ")),
        ("Message", record.message or "-"),
    ]
    for name, value in rows:
        grid.add_row(name, Text(value))  # a path or a message may hold "[": text, not markup
    return grid


class RunScreen(BaseScreen):
    BINDINGS = [
        Binding("u", "resume", "Resume", id="run.resume"),
        Binding("t", "open_task", "Open task", id="run.task"),
        Binding("x", "cleanup", "Cleanup", id="run.cleanup"),
        Binding("escape", "back", "Back", id="run.back"),
    ]

    def __init__(self, run_id: str):
        super().__init__()
        self.run_id = run_id
        self.record: RunRecord | None = None

    def compose(self) -> ComposeResult:
        yield from self.header()
        with Vertical(id="run"):
            yield Label("Run", classes="section-title")
            yield Static("Reading the run's record …", id="run-detail")
            with Horizontal(classes="buttons"):
                yield Button("Resume (u)", variant="primary", id="resume", disabled=True)
                yield Button("Open task (t)", id="open-task", disabled=True)
                yield Button("Cleanup (x)", variant="error", id="cleanup", disabled=True)
        yield from self.footer()

    def on_mount(self) -> None:
        super().on_mount()
        self.sub_title = f"Run {self.run_id[:8]}"
        self._load()

    @on(RunUpdated)
    def _run_updated(self, message: RunUpdated) -> None:
        if message.run.run_id == self.run_id:
            self._load()

    @work(thread=True, exclusive=True, group="run-load", exit_on_error=False)
    def _load(self) -> None:
        try:
            record = self.wizard.session.journal.load(self.run_id)
        except Exception as exc:
            self.app.call_from_thread(self._show_problem, str(exc))
            return
        self.app.call_from_thread(self._show, record)

    def _show_problem(self, problem: str) -> None:
        self.query_one("#run-detail", Static).update(Text(problem, style="red"))

    def _show(self, record: RunRecord) -> None:
        self.record = record
        self.query_one("#run-detail", Static).update(detail(record))
        self.query_one("#resume", Button).disabled = not self.check_action("resume", ())
        self.query_one("#open-task", Button).disabled = not record.task_id
        self.query_one("#cleanup", Button).disabled = not record.bucket
        self.refresh_bindings()

    def _running_here(self) -> bool:
        run = self.wizard.state.runs.get(self.run_id)
        return run is not None and run.done is None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        record = self.record
        if action == "resume":
            return record is not None and not record.final and not self._running_here()
        if action == "open_task":
            return record is not None and bool(record.task_id)
        if action == "cleanup":
            return record is not None and bool(record.bucket) and not self._running_here()
        return True

    @on(Button.Pressed, "#resume")
    def action_resume(self) -> None:
        if self.record is not None and self.check_action("resume", ()):
            self.wizard.resume_run(self.record)

    @on(Button.Pressed, "#open-task")
    def action_open_task(self) -> None:
        if self.record is not None and self.record.task_id:
            self.wizard.action_tasks()

    @on(Button.Pressed, "#cleanup")
    def action_cleanup(self) -> None:
        record = self.record
        if record is None or not self.check_action("cleanup", ()):
            return
        self.confirm(
            f"Delete the uploaded parts and manifest of run {record.short_id} from S3? "
            "Refused while its conversion task may still read them.",
            yes="Delete from S3",
            then=lambda: self._cleanup(record),
        )

    @work(thread=True, group="run-action", exit_on_error=False)
    def _cleanup(self, record: RunRecord) -> None:
        """The run's task first (a cleanup is refused while EC2 may still read the image)."""
        try:
            tasks = self.wizard.account.tasks([record.task_id]) if record.task_id else []
        except Exception as exc:
            self.app.call_from_thread(
                self.notify, str(exc), title="Cleanup failed", severity="error", timeout=8
            )
            return
        self.app.call_from_thread(self.wizard.clean_up, next(iter(tasks), None), record)

    def action_back(self) -> None:
        self.app.pop_screen()

    def palette_commands(self) -> list[Command]:
        return [
            ("Resume run", "go on from where the run stopped", self.action_resume),
            ("Open the run's task", "the conversion tasks screen", self.action_open_task),
            ("Clean up the run", "delete its uploaded parts and manifest", self.action_cleanup),
        ]
