"""A labelled field of the draft profile, its error right under it, and an optional pick-list
that filters as you type (instance types, zones, subnets, security groups, buckets)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, Label, OptionList, Select, TextArea
from textual.widgets.option_list import Option

from tui.core.draft import format_value, parse_value

# What a field holds once parsed (see parse_value); None is blank. The draft's values come
# from dotted paths into a profile, so a field's value is only known to be one of these.
FieldValue = str | int | bool | list[str] | None
PICK_LIMIT = 200  # options shown at once: enough to scroll, few enough to filter fast


def field_id(path: str) -> str:
    return "f-" + path.replace(".", "-")


class Form(VerticalScroll, can_focus=False):
    """A step's fields. It scrolls to follow the focus but never takes it, so a step opens with
    its first field focused and Tab goes from field to field."""

    DEFAULT_CSS = "Form { padding: 0 1; }"


class FormField(Vertical):
    """One field. `kind`: str, int, list (comma separated), bool, choice, text (multi-line)."""

    DEFAULT_CSS = """
    FormField { height: auto; }
    FormField > Horizontal { height: auto; }
    FormField .field-label { width: 30; padding: 0 1 0 0; color: $text-muted; }
    FormField.required .field-label { color: $text; }
    FormField .field-control { width: 1fr; }
    FormField TextArea.field-control { height: 3; background: $boost; }
    FormField .field-error { margin: 0 0 0 30; width: 1fr; color: $text-error; display: none; }
    FormField.-invalid .field-error { display: block; }
    FormField .field-hint { margin: 0 0 0 30; width: 1fr; color: $text-muted; display: none; }
    FormField.-hinted .field-hint { display: block; }
    FormField.-invalid .field-hint { display: none; }
    FormField OptionList { margin: 0 0 0 30; max-height: 7; display: none; }
    /* A placeholder is a hint ("e.g. …", "(default: …)"), never to be read as a value. */
    FormField Input.field-control > .input--placeholder { text-style: italic; }
    FormField SelectCurrent Static#label { text-style: italic; color: $text-disabled; }
    FormField SelectCurrent.-has-value Static#label { text-style: none; color: $foreground; }
    FormField.-picking OptionList { display: block; }
    """

    class Changed(Message):
        """The user changed the field; `value` is parsed (None: blank or unparsable)."""

        def __init__(self, field: FormField, value: FieldValue, ok: bool):
            super().__init__()
            self.field = field
            self.value = value
            self.ok = ok

        @property
        def control(self) -> FormField:
            return self.field

    def __init__(
        self,
        path: str,
        label: str,
        *,
        kind: str = "str",
        placeholder: str = "",
        choices: Sequence[str] = (),
        required: bool = False,
        pick: bool = False,
        hint: str = "",
    ):
        super().__init__(id=field_id(path), classes="required" if required else "")
        self.path = path
        self.label = label
        self.kind = kind
        self.placeholder = placeholder
        self.choices = list(choices)
        self.pick = pick
        self.hint = hint
        self._options: list[tuple[str, str]] = []  # (value, label) of the pick-list
        self._quiet = False  # set while the program (not the user) sets the value
        self._error: str | None = None
        self._shown: tuple[str, int] | None = None  # (needle, version) the pick-list shows
        self._version = 0  # of the options

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label(self.label, classes="field-label")
            yield self._control()
        # Errors and hints quote what was typed (a path may hold "[/"): text, never markup.
        yield Label("", classes="field-error", markup=False)
        yield Label(self.hint, classes="field-hint", markup=False)
        if self.pick:
            yield OptionList(classes="field-pick")

    def _control(self) -> Widget:
        if self.kind in ("choice", "bool"):
            choices = self.choices or (["true", "false"] if self.kind == "bool" else [])
            return Select(
                [(c, c) for c in choices],
                prompt=self.placeholder or "(not set)",
                compact=True,
                classes="field-control",
            )
        if self.kind == "text":
            return TextArea(
                classes="field-control", soft_wrap=True, show_line_numbers=False, compact=True
            )
        # A pick-list field keeps its cursor where a choice left it (at the end), so the next
        # key adds to the choice ("sg-1, " then the next group) instead of replacing it.
        return Input(
            placeholder=self.placeholder,
            compact=True,
            classes="field-control",
            select_on_focus=not self.pick,
        )

    def on_mount(self) -> None:
        self.set_class(bool(self.hint), "-hinted")

    # value -----------------------------------------------------------------------------

    @property
    def text(self) -> str:
        control = self.query_one(".field-control")
        if isinstance(control, Input):
            return control.value
        if isinstance(control, TextArea):
            return control.text
        assert isinstance(control, Select)
        return "" if control.value is Select.NULL else str(control.value)

    def set_value(self, value: FieldValue) -> None:
        """Show a model value without announcing it as the user's change."""
        text = format_value(value)
        control = self.query_one(".field-control")
        self._quiet = True
        try:
            if isinstance(control, Input):
                control.value = text
                control.cursor_position = len(text)
            elif isinstance(control, TextArea):
                control.load_text(text)
            elif isinstance(control, Select):
                if text and text not in self.choices:
                    self.set_choices([*self.choices, text])
                control.value = text if text else Select.NULL
        finally:
            self.call_after_refresh(self._unquiet)

    def _unquiet(self) -> None:
        self._quiet = False

    def parsed(self) -> tuple[FieldValue, str | None]:
        kind = "str" if self.kind == "choice" else self.kind
        try:
            return parse_value(kind, self.text), None
        except ValueError as exc:
            return None, str(exc)

    def set_error(self, message: str | None) -> None:
        # Called for every field at every key press: touch the DOM (and layout) only on change.
        if (message or None) == self._error:
            return
        self._error = message or None
        self.query_one(".field-error", Label).update(message or "")
        self.set_class(bool(message), "-invalid")

    @property
    def error(self) -> str | None:
        return self._error

    def set_hint(self, hint: str) -> None:
        if hint == self.hint and self.is_mounted:
            return
        self.hint = hint
        self.query_one(".field-hint", Label).update(hint)
        self.set_class(bool(hint), "-hinted")

    def set_placeholder(self, placeholder: str) -> None:
        """A hint that follows what is known (e.g. an address inside the chosen subnet)."""
        self.placeholder = placeholder
        control = self.query_one(".field-control")
        if isinstance(control, Input):
            control.placeholder = placeholder

    def set_choices(self, choices: Sequence[str]) -> None:
        control = self.query_one(".field-control")
        if isinstance(control, Select):
            current = control.value
            self.choices = list(choices)
            control.set_options([(c, c) for c in self.choices])
            if current is not Select.NULL and current in self.choices:
                control.value = current

    def focus_control(self) -> None:
        self.query_one(".field-control").focus()

    # changes from the user ---------------------------------------------------------------

    def _changed(self) -> None:
        if self._quiet:
            return
        value, problem = self.parsed()
        self.set_error(problem)
        self.post_message(self.Changed(self, value, problem is None))
        self._filter()

    @on(Input.Changed, ".field-control")
    def _input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._changed()

    @on(Select.Changed, ".field-control")
    def _select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self._changed()

    @on(TextArea.Changed, ".field-control")
    def _text_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        self._changed()

    # the pick-list -----------------------------------------------------------------------

    def set_options(self, options: Sequence[tuple[str, str]]) -> None:
        """Values to pick from, each with the label shown (e.g. a subnet with its CIDR)."""
        self._options = list(options)
        self._version += 1
        self._filter()

    def _needle(self) -> str:
        # For a list field the last comma-separated item is the one being typed.
        text = self.text
        if self.kind == "list":
            text = text.rsplit(",", 1)[-1]
        return text.strip().lower()

    def _filter(self) -> None:
        if not self.pick or not self.is_mounted:
            return
        needle = self._needle()
        if self._shown == (needle, self._version):
            self._show_picker()
            return
        self._shown = (needle, self._version)
        matches = [(v, lbl) for v, lbl in self._options if needle in lbl.lower()]
        if len(matches) == 1 and matches[0][0].lower() == needle:
            matches = []  # exactly chosen: nothing left to pick
        picker = self.query_one(OptionList)
        with self.app.batch_update():
            picker.clear_options()
            # One line each, cut at the end (a subnet's zone) when the list is narrow: a
            # wrapped choice reads as two.
            picker.add_options(
                [
                    Option(Text(lbl, no_wrap=True, overflow="ellipsis"), id=v)
                    for v, lbl in matches[:PICK_LIMIT]
                ]
            )
        self._show_picker()

    def _show_picker(self) -> None:
        if not self.pick or not self.is_mounted:
            return
        has = self.query_one(OptionList).option_count > 0
        self.set_class(has and self.has_focus_within, "-picking")

    def on_descendant_focus(self) -> None:
        self._show_picker()

    def on_descendant_blur(self) -> None:
        self.call_after_refresh(self._show_picker)

    def on_key(self, event: events.Key) -> None:
        # Down from the text box walks into the pick-list; Escape closes it.
        if not self.pick:
            return
        picker = self.query_one(OptionList)
        if event.key == "down" and isinstance(self.app.focused, Input) and picker.option_count:
            picker.focus()
            picker.highlighted = 0
            event.stop()
        elif event.key == "escape" and self.has_class("-picking"):
            self.set_class(False, "-picking")
            self.focus_control()
            event.stop()

    @on(OptionList.OptionSelected, ".field-pick")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        value = event.option.id or ""
        if self.kind == "list":
            head = [t.strip() for t in self.text.split(",")[:-1] if t.strip()]
            value = ", ".join([*head, value])
        control = self.query_one(".field-control", Input)
        control.value = value
        control.cursor_position = len(value)
        control.focus()
        self.set_class(False, "-picking")
