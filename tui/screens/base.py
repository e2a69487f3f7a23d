"""What every screen shares: header and footer, the palette provider, frozen cursors in tests,
and (for the wizard's steps) editing the draft through FormFields with errors shown in place."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, Footer, Header, Input, Label, Tabs, TextArea, Tree
from textual.worker import Worker, WorkerState

from tui.widgets.commands import Command, ScreenCommands
from tui.widgets.fit_table import NARROW

# The form widgets (TextArea pulls in tree-sitter) load with the first wizard step, not with
# the home screen: the first paint must not wait for them.
if TYPE_CHECKING:
    from tui.app import WizardApp
    from tui.core.draft import Draft
    from tui.widgets.form import FieldValue, FormField


class FittedFooter(Footer):
    """The footer, compact (less space around each key) below NARROW columns, so that the keys
    that matter still show at 80."""

    def on_resize(self, event: events.Resize) -> None:
        self.compact = event.size.width < NARROW


class BaseScreen(Screen[None]):
    COMMANDS = {ScreenCommands}
    TYPING: ClassVar[bool] = False
    """A form: every printable key is text, never a shortcut (a form's shortcuts use ctrl)."""

    @property
    def wizard(self) -> WizardApp:
        return self.app  # type: ignore[return-value]

    def header(self) -> ComposeResult:
        yield Header(icon="⛁")

    def footer(self) -> ComposeResult:
        yield FittedFooter()

    def on_mount(self) -> None:
        if not self.wizard.blink:
            for widget in self.query("Input, TextArea"):
                widget.cursor_blink = False  # type: ignore[attr-defined]

    def palette_commands(self) -> list[Command]:
        return []

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        # exit_on_error=False keeps the app alive when a worker raises; this keeps it visible.
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            self.worker_failed(event.worker, event.worker.error)

    def worker_failed(self, worker: Worker[object], error: BaseException) -> None:
        """One of this screen's workers raised. Screens that show a busy state put it back
        here (then call this); the app reports the error."""
        self.wizard.worker_failed(worker, error)

    def confirm(self, message: str, *, yes: str, then: Callable[[], object]) -> None:
        """Ask before what cannot be undone (a red button; the safe answer is the default);
        `then` runs on yes."""
        from tui.screens.dialogs import ConfirmScreen

        def answered(ok: bool | None) -> None:
            if ok:
                then()

        self.app.push_screen(ConfirmScreen(message, yes=yes, danger=True), answered)


class StepScreen(BaseScreen):
    """A step of the wizard: edits the fields under PREFIXES of the app's draft."""

    PREFIXES: ClassVar[tuple[str, ...]] = ()
    STEP: ClassVar[str] = ""
    TYPING = True
    BINDINGS = [
        Binding("ctrl+n", "next", "Next", id="step.next"),
        Binding("escape", "back", "Back", id="step.back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._touched: set[str] = set()

    @property
    def draft(self) -> Draft:
        return self.wizard.state.draft

    def fields(self) -> list[FormField]:
        return list(self.query("FormField"))  # type: ignore[arg-type]

    def on_mount(self) -> None:
        self.sub_title = self.STEP
        for f in self.fields():
            value = self.draft.get(f.path)
            if value is not None:
                f.set_value(value)
                self._touched.add(f.path)
        self.call_after_refresh(self.show_errors)

    def on_key(self, event: events.Key) -> None:
        # A printable key that reaches the screen was taken as text by nothing: typed before
        # the focus settled (the screen just opened), on something that takes no text (the
        # file tree, the tabs), or queued there in a burst before the focus moved to a field.
        # It is text all the same: never a shortcut, never lost.
        if not event.is_printable or event.character is None:
            return
        focused = self.focused
        if isinstance(focused, Input | TextArea):  # the burst's rest: where the focus went
            target: Widget = focused
        elif event.character == " ":
            return  # space selects in the tree, presses a button
        elif focused is None or isinstance(focused, Tree | Tabs):
            field = self.first_field()
            control = field.query_one(".field-control") if field is not None else None
            if not isinstance(control, Input):
                return
            self.set_focus(control)  # now, not later as focus() does: the next key follows
            target = control
        else:
            return  # a select or a button has the focus: a letter there is nothing
        event.stop()
        # Queued behind the focus (which selects the field's text), as the keys after it.
        target.post_message(events.Key(event.key, event.character))

    def first_field(self) -> FormField | None:
        """The field that takes what is typed before anything else has the focus."""
        return next(iter(self.fields()), None)

    def on_form_field_changed(self, event: FormField.Changed) -> None:
        self._touched.add(event.field.path)
        self.draft.set(event.field.path, event.value if event.ok else None)
        self.field_changed(event.field, event.value)
        self.show_errors()

    def field_changed(self, field: FormField, value: FieldValue) -> None:
        """Hook for screens that react to a field (e.g. probe the image)."""

    def extra_errors(self) -> dict[str, str]:
        """Checks beyond the models (e.g. the private IP inside the chosen subnet)."""
        return {}

    def screen_errors(self) -> dict[str, str]:
        from tui.core.draft import errors_under

        errors = errors_under(self.draft.errors(), self.PREFIXES)
        errors.update(self.extra_errors())
        return errors

    def show_errors(self, everything: bool = False) -> dict[str, str]:
        """Put each error next to its field; untouched fields stay quiet unless `everything`."""
        errors = self.screen_errors()
        shown: dict[str, str] = {}
        for f in self.fields():
            own = errors.get(f.path) or next(
                (msg for key, msg in errors.items() if key.startswith(f.path + ".")), None
            )
            _, parse_problem = f.parsed()
            message = parse_problem or own
            if message and (everything or f.path in self._touched or parse_problem):
                shown[f.path] = message
                f.set_error(message)
            else:
                f.set_error(None)
        # Errors that belong to a whole table (e.g. "give exactly one source") go on its banner.
        for banner in self.query(".table-error").results(Label):
            table = (banner.id or "").removeprefix("err-").replace("-", ".")
            msg = errors.get(table) if (everything or self._touched) else None
            banner.update(msg or "")
            banner.display = bool(msg)
            if msg:
                shown[table] = msg
        return shown

    def action_next(self) -> None:
        shown = self.show_errors(everything=True)
        if shown:
            first = next((f for f in self.fields() if f.path in shown), None)
            if first is not None:
                first.focus_control()
                first.scroll_visible()
            self.notify(
                f"{len(shown)} field{'s' if len(shown) > 1 else ''} to fix before going on",
                severity="warning",
                timeout=4,
            )
            return
        self.wizard.next_step(self)

    @on(Button.Pressed, "#next")
    def _next_pressed(self) -> None:
        self.action_next()

    @on(Button.Pressed, "#back")
    def _back_pressed(self) -> None:
        self.action_back()

    def action_back(self) -> None:
        self.wizard.previous_step()

    def palette_commands(self) -> list[Command]:
        return [
            ("Next step", f"check this step ({self.STEP}) and go on", self.action_next),
            ("Back", "the previous step", self.action_back),
        ]
