"""Modal dialogs: confirm, a name prompt (validated as you type), the account switcher, and the
keys (`?`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static
from textual.worker import Worker, WorkerState

if TYPE_CHECKING:
    from tui.app import WizardApp
    from tui.core.session import Session


Result = TypeVar("Result")


class Dialog(ModalScreen[Result | None]):
    """A modal question; escape dismisses it with None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    @property
    def wizard(self) -> WizardApp:
        return self.app  # type: ignore[return-value]

    def on_mount(self) -> None:
        if not self.wizard.blink:
            for widget in self.query(Input):
                widget.cursor_blink = False

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            self.wizard.worker_failed(event.worker, event.worker.error)


class ConfirmScreen(Dialog[bool]):
    """Yes or no; `danger` paints the yes button red."""

    def __init__(self, message: str, *, yes: str = "Yes", danger: bool = False):
        super().__init__()
        self.message = message
        self.yes = yes
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.message, classes="dialog-message")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.yes, variant="error" if self.danger else "primary", id="yes")
                yield Button("Cancel", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()  # the safe answer is the default

    @on(Button.Pressed)
    def _answer(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_cancel(self) -> None:
        self.dismiss(False)


class ChoiceScreen(Dialog[str]):
    """One of a few answers, each a button (the first is the default), or Cancel (None)."""

    def __init__(self, message: str, choices: Sequence[tuple[str, str]]):
        super().__init__()
        self.message = message
        self.choices = list(choices)  # (answer, button label)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.message, classes="dialog-message")
            with Horizontal(classes="dialog-buttons"):
                for i, (answer, label) in enumerate(self.choices):
                    yield Button(
                        label, variant="primary" if i == 0 else "default", id=f"choice-{answer}"
                    )
                yield Button("Cancel", id="no")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one(Button).focus()

    @on(Button.Pressed)
    def _answer(self, event: Button.Pressed) -> None:
        answer = (event.button.id or "").removeprefix("choice-")
        self.dismiss(answer if event.button.id != "no" else None)


class PromptScreen(Dialog[str]):
    """Ask for one line; `check` returns an error message or None."""

    def __init__(
        self,
        title: str,
        value: str = "",
        *,
        check: Callable[[str], str | None] | None = None,
        ok: str = "OK",
    ):
        super().__init__()
        self.title_text = title
        self.value = value
        self.check = check or (lambda _: None)
        self.ok = ok

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-message")
            yield Input(self.value, id="prompt-input")
            yield Label("", id="prompt-error", classes="field-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.ok, variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        self._validate(self.value)

    def _validate(self, value: str) -> str | None:
        problem = self.check(value.strip())
        label = self.query_one("#prompt-error", Label)
        label.update(problem or "")
        label.display = bool(problem)
        self.query_one("#ok", Button).disabled = bool(problem)
        return problem

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        self._validate(event.value)

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _submit(self) -> None:
        value = self.query_one(Input).value.strip()
        if self._validate(value) is None:
            self.dismiss(value)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)


class AccountScreen(Dialog[tuple[str | None, str | None]]):
    """Switch the named AWS profile and the region (the sandbox has regions only)."""

    def __init__(self, session: Session):
        super().__init__()
        self.session = session

    def compose(self) -> ComposeResult:
        from tui.core.facts import DEFAULT_REGION, IMPORT_REGIONS

        sandbox = self.session.sandbox
        regions = sorted(IMPORT_REGIONS)
        # The sandbox has no AWS config to fall back on: it runs in the default region.
        region = self.session.region or (DEFAULT_REGION if sandbox else None)
        current = region if region in regions else Select.NULL
        with Vertical(classes="dialog"):
            yield Label("Account context", classes="dialog-message")
            with Horizontal(classes="dialog-row"):
                yield Label("AWS profile", classes="field-label")
                yield Select(
                    [],
                    prompt="(default credential chain)" if not sandbox else "(sandbox)",
                    id="aws-profile",
                    disabled=sandbox,
                    compact=True,
                )
            with Horizontal(classes="dialog-row"):
                yield Label("Region", classes="field-label")
                yield Select(
                    [(r, r) for r in regions],
                    value=current,
                    prompt="(from AWS config)",
                    id="region",
                    compact=True,
                )
            yield Label("Regions where ImportInstance exists.", classes="field-hint")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Switch", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        if not self.session.sandbox:
            self._load_profiles()
        self.query_one("#region", Select).focus()

    @work(thread=True, exclusive=True, group="aws-profiles", exit_on_error=False)
    def _load_profiles(self) -> None:
        from tui.core.account import aws_profiles

        try:
            names = aws_profiles()
        except Exception:
            names = []
        self.app.call_from_thread(self._set_profiles, names)

    def _set_profiles(self, names: list[str]) -> None:
        select = self.query_one("#aws-profile", Select)
        select.set_options([(n, n) for n in names])
        if self.session.aws_profile in names:
            select.value = self.session.aws_profile

    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        profile = self.query_one("#aws-profile", Select).value
        region = self.query_one("#region", Select).value
        self.dismiss(
            (
                None if profile is Select.NULL else str(profile),
                None if region is Select.NULL else str(region),
            )
        )

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)


class HelpScreen(Dialog[None]):
    """The keys of the screen below and of the whole app, as their bindings say (`?`)."""

    BINDINGS = [
        Binding("escape,q,question_mark,f1", "cancel", "Close", id="help.close"),
    ]

    def __init__(self, title: str, sections: list[tuple[str, list[tuple[str, str]]]]):
        super().__init__()
        self.title_text = title
        self.sections = sections  # (heading, [(key, what it does)])

    def compose(self) -> ComposeResult:
        from rich.table import Table

        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True, min_width=8)
        grid.add_column()
        for heading, keys in self.sections:
            if grid.row_count:
                grid.add_row("", "")
            grid.add_row(f"[u]{heading}[/u]", "")
            for key, what in keys:
                grid.add_row(key, what)
        with VerticalScroll(classes="dialog help"):
            yield Label(f"Keys · {self.title_text}", classes="section-title")
            yield Static(grid)
            yield Label("escape, q or ? closes this", classes="dialog-hint")
