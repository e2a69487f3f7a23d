"""Conversion tasks: every DescribeConversionTasks task of the region, ours marked, refreshed
by diff. The next poll is armed only when the last one has finished, so polls never overlap."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import DataTable, Input, Label, Static

from tui.core.redact import redact_url
from tui.core.tasks import TaskView
from tui.core.units import counted, human_bytes
from tui.messages import AccountChanged
from tui.screens.base import BaseScreen
from tui.widgets.commands import Command
from tui.widgets.task_table import TaskTable

DEFAULT_REFRESH = 5.0


def detail(task: TaskView, mark: str) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    pct = task.percent
    converted = (
        f"{human_bytes(task.bytes_converted)} of {human_bytes(task.image_bytes)}"
        if task.image_bytes
        else "-"
    )
    state = task.state if task.phase == task.state else f"{task.state} ({task.phase})"
    grid.add_row("Task", task.task_id, "State", state)
    grid.add_row("Instance", task.instance_id or "-", "Volume", task.volume_id or "(not built yet)")
    grid.add_row("Zone", task.zone or "-", "Expires", task.expires or "-")
    grid.add_row(
        "Image",
        f"{task.image_format or '?'} · {human_bytes(task.image_bytes)}",
        "Volume size",
        f"{task.volume_size} GiB" if task.volume_size else "-",
    )
    grid.add_row("Converted", converted, "Done", "-" if pct is None else f"{pct:.0f}%")
    grid.add_row(
        "Ours", mark or "no (started elsewhere)", "Volume status", task.volume_status or "-"
    )
    grid.add_row("Message", Text(task.message or "-"), "", "")
    manifest = redact_url(task.manifest_url) if task.manifest_url else "-"  # a presigned URL
    grid.add_row("Manifest", Text(manifest, overflow="ellipsis", no_wrap=True), "", "")
    return grid


class TasksScreen(BaseScreen):
    BINDINGS = [
        Binding("ctrl+r", "refresh", "Refresh", id="tasks.refresh"),
        Binding("space", "pause", "Pause", id="tasks.pause"),
        Binding("slash", "filter", "Filter", id="tasks.filter"),
        Binding("c", "cancel_task", "Cancel task", id="tasks.cancel"),
        Binding("x", "cleanup", "Cleanup", id="tasks.cleanup"),
        Binding("escape", "back", "Back", id="tasks.back"),
    ]

    def __init__(self, *, interval: float | None = None, auto: bool = True):
        super().__init__()
        self.interval = interval
        self.auto = auto
        self.paused = False
        self._polling = False
        self._timer: Timer | None = None
        self._tasks: list[TaskView] = []
        self._states: dict[str, str] = {}
        self._marks: dict[str, str] = {}
        self._status = "Loading DescribeConversionTasks …"
        self._error: str | None = None  # why the last poll failed

    def compose(self) -> ComposeResult:
        yield from self.header()
        with Vertical(id="tasks"):
            with Horizontal(id="tasks-bar"):
                yield Input(
                    placeholder="filter: task, state, instance, profile … (/)",
                    id="filter",
                    compact=True,
                )
                yield Label(self._status, id="tasks-status")
            yield TaskTable(id="task-table")
            yield Static("Select a task to see its details.", id="task-detail")
        yield from self.footer()

    def on_mount(self) -> None:
        self.sub_title = "Conversion tasks"
        self.query_one("#task-detail", Static).border_title = "Detail"
        self.query_one(TaskTable).focus()
        self.action_refresh()

    def on_unmount(self) -> None:
        if self._timer is not None:
            self._timer.stop()

    @on(AccountChanged)
    def _account_changed(self) -> None:
        self._tasks = []
        self._states = {}
        self.action_refresh()

    # polling --------------------------------------------------------------------------------

    @property
    def refresh_interval(self) -> float:
        return self.interval or min(DEFAULT_REFRESH, self.wizard.poll)

    def action_refresh(self) -> None:
        if self._polling:
            return  # one in flight: its end re-arms the timer
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self._polling = True
        self._set_status("refreshing …")
        self._poll()

    @work(thread=True, exclusive=True, group="tasks-poll", exit_on_error=False)
    def _poll(self) -> None:
        try:
            tasks: list[TaskView] | Exception = self.wizard.account.tasks()
        except Exception as exc:
            tasks = exc
        marks = self.wizard.ours()
        self.app.call_from_thread(self._polled, tasks, marks)

    def _polled(self, tasks: list[TaskView] | Exception, marks: dict[str, str]) -> None:
        self._polling = False
        if isinstance(tasks, Exception):
            # Whole, in the detail pane: the status line has no room for the fix.
            self._error = str(tasks)
            self._set_status("[red]cannot list the tasks: the detail below says why[/red]")
            self._show_detail()
        else:
            self._error = None
            self._tasks = tasks
            self._marks = marks
            self._notify_transitions(tasks)
            self._apply()
            active = sum(1 for t in tasks if t.active)
            self._set_status(f"{counted(len(tasks), 'task')}, {active} active")
        self._arm()

    def _arm(self) -> None:
        if self.auto and not self.paused and self.is_attached:
            self._timer = self.set_timer(self.refresh_interval, self.action_refresh)

    def _set_status(self, text: str) -> None:
        suffix = " · paused (space)" if self.paused else ""
        self.query_one("#tasks-status", Label).update(text + suffix)
        self._status = text

    def _notify_transitions(self, tasks: list[TaskView]) -> None:
        for t in tasks:
            before = self._states.get(t.task_id)
            if before in ("active", "cancelling") and t.final:
                self.wizard.task_finished(t.task_id, t.state, t.message)
            self._states[t.task_id] = t.state

    def _apply(self) -> None:
        needle = self.query_one("#filter", Input).value.strip()
        self.query_one(TaskTable).apply(self._tasks, self._marks, needle)
        self._show_detail()

    def action_pause(self) -> None:
        self.paused = not self.paused
        if self.paused and self._timer is not None:
            self._timer.stop()
            self._timer = None
        elif not self.paused:
            self.action_refresh()
        self._set_status(self._status)

    # filter, detail, sort --------------------------------------------------------------------

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self) -> None:
        self._apply()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.query_one(TaskTable).focus()

    @on(DataTable.RowHighlighted)
    def _highlighted(self) -> None:
        self._show_detail()

    @on(DataTable.HeaderSelected)
    def _header(self, event: DataTable.HeaderSelected) -> None:
        self.query_one(TaskTable).sort_by(str(event.column_key.value))

    def selected(self) -> TaskView | None:
        task_id = self.query_one(TaskTable).selected_task
        return next((t for t in self._tasks if t.task_id == task_id), None)

    def _show_detail(self) -> None:
        pane = self.query_one("#task-detail", Static)
        task = self.selected()
        if task is None and self._error and not self._tasks:
            pane.update(Text(f"Cannot list the conversion tasks:\n{self._error}", style="red"))
            return
        if task is None:
            needle = self.query_one("#filter", Input).value.strip()
            if not self._tasks:
                pane.update("No conversion tasks in this region yet.")
            elif needle and not self.query_one(TaskTable).row_count:
                # Text, not markup: the filter is what was typed.
                pane.update(Text(f"No task matches '{needle}' (escape clears the filter)."))
            else:
                pane.update("")
            return
        pane.update(detail(task, self._marks.get(task.task_id, "")))

    # cancel and cleanup ----------------------------------------------------------------------

    def action_cancel_task(self) -> None:
        task = self.selected()
        if task is None:
            return
        if not task.active:
            self.notify(
                f"{task.task_id} is {task.state}: nothing to cancel", severity="warning", timeout=4
            )
            return

        self.confirm(
            f"Cancel {task.task_id}? EC2 removes its instance and volume; "
            "the uploaded image stays in S3 until you clean it up.",
            yes="Cancel task",
            then=lambda: self._cancel(task.task_id),
        )

    @work(thread=True, group="tasks-action", exit_on_error=False)
    def _cancel(self, task_id: str) -> None:
        try:
            self.wizard.account.cancel(task_id, "cancelled from ec2-import-wizard")
        except Exception as exc:
            self.app.call_from_thread(
                self.notify, str(exc), title="Cancel failed", severity="error"
            )
            return
        self.app.call_from_thread(self.notify, f"Cancelling {task_id}", timeout=3)
        self.app.call_from_thread(self.action_refresh)

    def action_cleanup(self) -> None:
        task = self.selected()
        if task is None:
            return
        if task.active:
            self.notify(
                f"{task.task_id} is still {task.state}: EC2 may still read the image. "
                "Cancel it first, or use `ec2-import-wizard cleanup --force`.",
                severity="warning",
                timeout=6,
            )
            return

        self.confirm(
            f"Delete the uploaded parts and manifest of {task.task_id} from S3?",
            yes="Delete from S3",
            then=lambda: self.wizard.clean_up(task, None),
        )

    def action_back(self) -> None:
        # Escape undoes the filter first (its text, then its focus), then leaves.
        needle = self.query_one("#filter", Input)
        if needle.value:
            needle.value = ""
            self.query_one(TaskTable).focus()
        elif needle.has_focus:
            self.query_one(TaskTable).focus()
        elif len(self.app.screen_stack) > 2:
            self.app.pop_screen()

    def palette_commands(self) -> list[Command]:
        return [
            ("Refresh tasks", "DescribeConversionTasks now", self.action_refresh),
            ("Pause or resume auto-refresh", "stop or restart polling", self.action_pause),
            ("Filter tasks", "show only matching rows", self.action_filter),
            (
                "Cancel conversion task",
                "CancelConversionTask for the selected task",
                self.action_cancel_task,
            ),
            (
                "Clean up task",
                "delete the selected task's uploaded image from S3",
                self.action_cleanup,
            ),
        ]
