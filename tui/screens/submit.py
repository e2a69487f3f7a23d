"""Submit: the upload's progress (bar, parts, throughput, ETA) and the run's events, with cancel.
Once EC2 has the task, the conversion tasks screen takes over."""

from __future__ import annotations

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.widgets import Button, Label, ProgressBar, RichLog

from tui.core.errors import coded
from tui.core.events import (
    ConvertedEvent,
    ConvertEvent,
    DoneEvent,
    ErrorEvent,
    SubmittedEvent,
    UploadedEvent,
    UploadEvent,
)
from tui.core.units import human_bytes, human_duration
from tui.messages import RunUpdated
from tui.screens.base import BaseScreen
from tui.state import RunState
from tui.widgets.commands import Command


class EventLog(RichLog):
    """The run's events, each wrapped to the log's width, and wrapped again when the width
    changes (a long S3 key or error is read whole at 80 columns, not cut at the border).
    `expand`: the log's own width, not the line's measure (capped by the console's width)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, wrap=True, min_width=1, markup=False, highlight=False)
        self.lines_added: list[str] = []
        self._width = 0

    def add(self, lines: list[str]) -> None:
        self.lines_added += lines
        for line in lines:
            self.write(Text(line), expand=True)

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._width:
            self._width = event.size.width
            self.clear()
            for line in self.lines_added:
                self.write(Text(line), expand=True)


class SubmitScreen(BaseScreen):
    BINDINGS = [
        Binding("ctrl+c", "cancel_run", "Cancel upload", id="submit.cancel", priority=True),
        Binding("escape", "back", "Back", id="submit.back"),
    ]

    def __init__(self, run: RunState, *, follow: bool = True):
        super().__init__()
        self.run = run
        self.follow = follow  # open the tasks screen once submitted (tests may turn it off)

    def compose(self) -> ComposeResult:
        yield from self.header()
        with Vertical(id="submit"):
            yield Label("", id="run-title", classes="section-title")
            yield Label("Preparing: probing the image and starting the upload …", id="run-phase")
            # Determinate from the start (an indeterminate bar animates: no stable screenshot).
            yield ProgressBar(total=1, show_eta=False, id="upload-bar")
            with Horizontal(id="upload-stats"):
                yield Label("", id="stat-parts")
                yield Label("", id="stat-bytes")
                yield Label("", id="stat-rate")
                yield Label("", id="stat-eta")
            yield Label("Events", classes="section-title")
            yield EventLog(id="run-log")
            with Horizontal(classes="buttons"):
                yield Button("Cancel (ctrl+c)", variant="error", id="cancel")
                yield Button("Conversion tasks (t)", id="tasks")
        yield from self.footer()

    def on_mount(self) -> None:
        self.sub_title = "Submit"
        self.query_one("#run-title", Label).update(f"Import of {self.run.profile_name}")
        self.query_one("#run-log", EventLog).add(self.run.log)
        if self.run.last_convert is not None and self.run.last_upload is None:
            self._show_convert(self.run.last_convert)
        if self.run.last_upload is not None:
            self._show_upload(self.run.last_upload)
        if self.run.done is not None:
            self._finished(self.run.done)

    @on(RunUpdated)
    def _run_updated(self, message: RunUpdated) -> None:
        run = message.run
        if run is not self.run:
            return
        self.query_one("#run-title", Label).update(
            f"Import of {run.profile_name} · run {run.run_id}"
        )
        match message.event:
            case ConvertEvent() as converting:
                self._show_convert(converting)
            case ConvertedEvent(reused=reused):
                how = "reused from the cache" if reused else "converted"
                self._phase(f"Image {how}; starting the upload …")
            case UploadEvent() as upload:
                self._show_upload(upload)
            case UploadedEvent():
                self._phase("Uploaded and verified; submitting ImportInstance …")
                bar = self.query_one("#upload-bar", ProgressBar)
                bar.update(total=bar.total or 1, progress=bar.total or 1)
            case SubmittedEvent(conversion_task_id=task_id):
                self._phase(f"Submitted: {task_id}; EC2 is converting the image.")
                self.query_one("#cancel", Button).display = False  # the tasks screen cancels it
                if self.follow and self.is_current:
                    self.wizard.action_tasks()
            case DoneEvent() | ErrorEvent() as end:
                self._finished(end)
        self.refresh_bindings()
        log = self.query_one("#run-log", EventLog)
        log.add(run.log[len(log.lines_added) :])

    def _phase(self, text: str) -> None:
        self.query_one("#run-phase", Label).update(text)

    def _show_convert(self, e: ConvertEvent) -> None:
        self._phase("Converting to a stream-optimized VMDK with qemu-img …")
        self.query_one("#upload-bar", ProgressBar).update(total=100, progress=e.percent)
        self.query_one("#stat-parts", Label).update(f"qemu-img {e.percent:.0f}%")
        self.query_one("#stat-bytes", Label).update(
            f"{human_bytes(e.bytes_done)} of {human_bytes(e.bytes_total)} virtual"
        )
        self.query_one("#stat-rate", Label).update(f"{human_bytes(int(e.bytes_per_s))}/s")
        self.query_one("#stat-eta", Label).update(f"ETA {human_duration(e.eta_s)}")

    def _show_upload(self, e: UploadEvent) -> None:
        self._phase("Uploading the image parts to S3 …")
        self.query_one("#upload-bar", ProgressBar).update(
            total=max(1, e.bytes_total), progress=e.bytes_done
        )
        self.query_one("#stat-parts", Label).update(f"parts {e.parts_done}/{e.parts_total}")
        self.query_one("#stat-bytes", Label).update(
            f"{human_bytes(e.bytes_done)} of {human_bytes(e.bytes_total)}"
        )
        self.query_one("#stat-rate", Label).update(f"{human_bytes(int(e.bytes_per_s))}/s")
        self.query_one("#stat-eta", Label).update(f"ETA {human_duration(e.eta_s)}")

    def _finished(self, event: DoneEvent | ErrorEvent) -> None:
        self.query_one("#cancel", Button).display = False  # nothing left to cancel
        if isinstance(event, ErrorEvent):
            self._phase(f"[b red]Failed[/]: {escape(coded(event.code, event.message))}")
        else:
            self._phase(f"Finished: [b]{event.state}[/] {event.message}".rstrip())

    def cancellable(self) -> bool:
        """Until EC2 has the task (then the tasks screen cancels it) and while it runs."""
        return self.run.done is None and not self.run.task_id and not self.run.cancel.is_set()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Once the run can no longer be cancelled here, the footer stops offering it.
        return self.cancellable() if action == "cancel_run" else True

    @on(Button.Pressed, "#cancel")
    def action_cancel_run(self) -> None:
        if not self.cancellable():
            return
        self.run.cancel.set()
        self.refresh_bindings()
        self._phase("Cancelling: finishing the parts in flight …")
        self.query_one("#cancel", Button).disabled = True

    @on(Button.Pressed, "#tasks")
    def _tasks(self) -> None:
        self.wizard.action_tasks()

    def action_back(self) -> None:
        self.app.pop_screen()

    def palette_commands(self) -> list[Command]:
        return [("Cancel upload", "stop this run before it is submitted", self.action_cancel_run)]
