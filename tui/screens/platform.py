"""Step 3: platform, the request's description, DryRun, and the profile's own description."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Label

from tui.screens.base import StepScreen
from tui.widgets.form import Form, FormField


class PlatformScreen(StepScreen):
    STEP = "3/4 Platform"
    PREFIXES = ("request.Platform", "request.Description", "request.DryRun", "description")

    def compose(self) -> ComposeResult:
        yield from self.header()
        with Form(id="platform"):
            yield Label("Request", classes="section-title")
            yield FormField(
                "request.Platform",
                "Platform",
                kind="choice",
                choices=["Windows"],
                required=True,
                hint="ImportInstance imports Windows instances only",
            )
            yield FormField(
                "request.Description", "Description", placeholder="sent with the request"
            )
            yield FormField(
                "request.DryRun",
                "Dry run",
                kind="bool",
                hint="true: EC2 checks permissions and parameters, creates nothing",
            )
            yield Label("Profile", classes="section-title")
            yield FormField(
                "description", "Profile description", placeholder="a note kept in the profile file"
            )
            with Horizontal(classes="buttons"):
                yield Button("Back", id="back")
                yield Button("Next: preview", variant="primary", id="next")
        yield from self.footer()

    def on_mount(self) -> None:
        self.query_one("#f-request-Platform .field-control").focus()
