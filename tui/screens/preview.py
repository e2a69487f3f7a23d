"""Step 4, the preview: the request exactly as the `preview` command prints it (the same
`tui.core.plan.build_preview`), the boto3 parameters, a GET URL, the manifest to be written,
and the preflight's checks (the `check` command's). Reveal, copy (OSC 52), save as a profile,
upload and submit; a failed check keeps `u` from uploading and says what to fix, where."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Label, Static, TabbedContent, TabPane

from tui.core.aws import Target
from tui.core.draft import DRAFT_NAME
from tui.core.facts import PROFILE_NAME_RE, PROFILE_NAME_RULE
from tui.core.redact import redact_url
from tui.screens.base import BaseScreen
from tui.widgets.commands import Command

if TYPE_CHECKING:
    from tui.core.draft import Draft
    from tui.core.plan import ImportPlan, Preview
    from tui.core.preflight import CheckResult, Report

TAB_TITLES = {
    "lines": "Request (as sent)",
    "json": "boto3 params",
    "url": "GET URL",
    "manifest": "Manifest",
    "checks": "Checks",
}
TABS = tuple(TAB_TITLES)
TAB_NAMES = {  # in a sentence
    "lines": "request",
    "json": "boto3 params",
    "url": "GET URL",
    "manifest": "manifest XML",
    "checks": "checks",
}
# The file `Y` saves each tab to (the copy for a terminal that takes no OSC 52).
SAVED_AS = {
    "lines": "request.txt",
    "json": "boto3-params.json",
    "url": "get-url.txt",
    "manifest": "manifest.xml",
    "checks": "checks.txt",
}
STATUS_STYLE = {"fail": "bold red", "warn": "yellow", "pass": "green"}
# Where a field named by a check is edited: the wizard's step, as its title says.
STEP_OF_FIELD = (
    ("source.", "step 1/4, Disk image"),
    ("request.LaunchSpecification.", "step 2/4, Launch specification"),
    ("", "step 3/4, Platform"),
)


def where_to_fix(field: str) -> str:
    if not field:
        return "the account or the network"
    return next(step for prefix, step in STEP_OF_FIELD if field.startswith(prefix))


def checks_text(report: Report) -> Text:
    """The checks, fails first, then warns, then passes: each its status, id, field and fix."""
    order = {"fail": 0, "warn": 1, "pass": 2}
    text = Text()
    for check in sorted(report.checks, key=lambda c: order[str(c.status)]):
        text.append(check.line + "\n", style=STATUS_STYLE[str(check.status)])
    return text


def checks_summary(report: Report) -> str:
    """`checks: 1 fail, 2 warn, 13 pass`, naming only the counts that are not zero."""
    fails, warns = len(report.failures), len(report.warnings)
    counts = ((fails, "fail"), (warns, "warn"), (len(report.checks) - fails - warns, "pass"))
    return "checks: " + ", ".join(f"{n} {what}" for n, what in counts if n)


def manifest_sketch(plan: ImportPlan, *, reveal: bool = False) -> tuple[str, str]:
    """Where the manifest goes, and the manifest the upload will write (placeholders where the
    presigned URLs will be); for an uploaded image, the URL EC2 reads it from."""
    if plan.image_path is None:
        given = plan.profile.source.manifest_url or ""
        return "Already uploaded; EC2 reads it from:", given if reveal else redact_url(given)
    from tui.core import s3keys
    from tui.core.manifest import Manifest, ManifestPart, plan_parts
    from tui.core.plan import RUN_ID_PLACEHOLDER

    src = plan.profile.source
    path = str(plan.image_path)

    def url(verb: str, key: str) -> str:
        return f"<presigned {verb} of s3://{src.bucket}/{key}>"

    parts = []
    for i, (start, end) in enumerate(plan_parts(plan.image_bytes)):
        key = s3keys.part_key(src.key_prefix, RUN_ID_PLACEHOLDER, path, i)
        parts.append(
            ManifestPart(i, start, end, key, url("HEAD", key), url("GET", key), url("DELETE", key))
        )
    mkey = s3keys.manifest_key(src.key_prefix, RUN_ID_PLACEHOLDER, path)
    manifest = Manifest(
        plan.image_format, plan.image_bytes, plan.volume_size, parts, url("DELETE", mkey)
    )
    xml = manifest.to_xml(validate=False).decode()
    where = f"s3://{src.bucket}/{mkey} (URLs valid {src.url_expiry_days} days)"
    if plan.probe is not None and plan.probe.plan is not None:
        from tui.core.sources import plan_line

        where = f"Plan: {plan_line(plan.probe)}\n{where}"
    return where, xml


class PreviewScreen(BaseScreen):
    BINDINGS = [
        Binding("v", "reveal", "Reveal", id="preview.reveal"),
        Binding("y", "copy", "Copy", id="preview.copy"),
        Binding("Y", "save_copy", "Save copy to a file", id="preview.save_copy", show=False),
        Binding("s", "save", "Save profile", id="preview.save"),
        Binding("u", "submit", "Upload & submit", id="preview.submit"),
        Binding("escape", "back", "Back", id="preview.back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.reveal = False
        self.preview: Preview | None = None
        self.plan: ImportPlan | None = None
        self.target: Target = Target()
        self.texts: dict[str, str] = {}  # each tab's text as copied (and saved by `Y`)
        self.report: Report | None = None  # None until the checks have answered

    def compose(self) -> ComposeResult:
        yield from self.header()
        yield Label("", id="preview-status")
        with TabbedContent(id="preview-tabs"):
            for tab, title in TAB_TITLES.items():
                with TabPane(title, id=tab), VerticalScroll():
                    yield Static("Building the preview …", id=f"text-{tab}", classes="preview-text")
        with Horizontal(classes="buttons"):
            yield Button("Back", id="back")
            yield Button("Reveal (v)", id="reveal")
            yield Button("Copy (y)", id="copy")
            yield Button("Save as profile (s)", id="save")
            yield Button("Upload & submit (u)", variant="success", id="submit")
        yield from self.footer()

    def on_mount(self) -> None:
        self.sub_title = "4/4 Preview"
        self._build()

    @property
    def draft(self) -> Draft:
        return self.wizard.state.draft

    @work(thread=True, exclusive=True, group="preview", exit_on_error=False)
    def _build(self) -> None:
        from tui.core.plan import build_preview, plan_import

        try:
            # Where the request will go (the sandbox's own endpoint too: its port, a real URL).
            target = self.wizard.account.target()
            # The run goes to the wizard's account: the profile says so, whatever it said before
            # (a switch of region after it was opened).
            self.draft.set("aws.region", target.region)
            if self.wizard.session.aws_profile and not self.wizard.sandbox:
                self.draft.set("aws.profile", self.wizard.session.aws_profile)
            profile = self.draft.profile()
            # The very call the `preview` command makes: the texts are equal by construction.
            preview = build_preview(profile, self.draft.origin, target)
            plan = plan_import(profile, self.draft.origin)
        except Exception as exc:
            self.app.call_from_thread(self._failed, exc)
            return
        self.app.call_from_thread(self._built, preview, plan, target)

    @work(thread=True, exclusive=True, group="preview-checks", exit_on_error=False)
    def _check(self, plan: ImportPlan) -> None:
        from tui.core.preflight import CheckResult, Report, Status

        try:
            report = self.wizard.account.check(plan)
        except Exception as exc:  # the checks report AWS's errors; this is anything else
            report = Report((CheckResult("preflight", Status.FAIL, "", str(exc)),))
        self.app.call_from_thread(self._checked, report)

    def _checked(self, report: Report) -> None:
        self.report = report
        fails, warns = len(report.failures), len(report.warnings)
        label = f"Checks ✗ {fails}" if fails else f"Checks ! {warns}" if warns else "Checks ✓"
        self.query_one("#preview-tabs", TabbedContent).get_tab("checks").label = label
        self._show()

    def _failed(self, exc: Exception) -> None:
        from tui.core.errors import WizardError

        where = exc.field if isinstance(exc, WizardError) else None
        message = f"Cannot build the request: {exc}"
        if where:
            message += "\nGo back (escape) and fix the field named above."
        self.query_one("#preview-status", Label).update(Text(message, style="bold red"))
        for tab in TABS:
            self.query_one(f"#text-{tab}", Static).update("")
        self.query_one("#submit", Button).disabled = True
        self.query_one("#save", Button).disabled = True
        self.query_one("#text-checks", Static).update("")

    def _built(self, preview: Preview, plan: ImportPlan, target: Target) -> None:
        self.preview = preview
        self.plan = plan
        self.target = target
        self._show()
        self._check(plan)

    def _show(self) -> None:
        if self.preview is None or self.plan is None:
            return
        p = self.preview
        where, manifest = manifest_sketch(self.plan, reveal=self.reveal)
        self.texts = {
            "lines": p.as_lines(reveal=self.reveal),
            "json": json.dumps(p.as_json(reveal=self.reveal)["boto3_params"], indent=2),
            "url": p.as_url(reveal=self.reveal),
            "manifest": manifest,
        }
        for tab, text in self.texts.items():
            # The manifest's S3 key heads its tab; copied is the XML alone.
            shown = f"{where}\n\n{text}" if tab == "manifest" else text
            self.query_one(f"#text-{tab}", Static).update(Text(shown))
        if self.report is None:
            checked = "checks: running …"
            self.query_one("#text-checks", Static).update(
                "Asking the account and reading the disk (what `check PROFILE` does) …"
            )
        else:
            checked = checks_summary(self.report)
            self.texts["checks"] = "\n".join(c.line for c in self.report.checks)
            self.query_one("#text-checks", Static).update(checks_text(self.report))
        state = "revealed: signatures shown" if self.reveal else "secrets REDACTED (v reveals)"
        mode = " (sandbox)" if self.target.sandbox else ""
        self.query_one("#preview-status", Label).update(
            Text(
                f"Endpoint {p.endpoint}{mode} · {self.target.region} · "
                f"{len(p.params)} parameters · {state}\n{checked}"
            )
        )
        self.query_one("#reveal", Button).label = "Hide (v)" if self.reveal else "Reveal (v)"

    # actions --------------------------------------------------------------------------------

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        action = {
            "back": self.action_back,
            "reveal": self.action_reveal,
            "copy": self.action_copy,
            "save": self.action_save,
            "submit": self.action_submit,
        }.get(event.button.id or "")
        if action:
            action()

    def action_back(self) -> None:
        self.wizard.previous_step()

    def action_reveal(self) -> None:
        self.reveal = not self.reveal
        self._show()

    def _visible(self) -> tuple[str, str] | None:
        """The visible tab and its text, once built."""
        tab = self.query_one("#preview-tabs", TabbedContent).active or "lines"
        text = self.texts.get(tab)
        return (tab, text) if text else None

    def action_copy(self) -> None:
        """OSC 52: the terminal may take it or drop it, and never says which, so the notice
        says what was done and how to get the text when it did not arrive."""
        import os

        visible = self._visible()
        if visible is None:
            return
        tab, text = visible
        self.app.copy_to_clipboard(text)
        what = "with secrets" if self.reveal else "redacted"
        lines = [
            f"Sent the {TAB_NAMES[tab]} ({what}) to the terminal's clipboard, if it accepts OSC 52."
        ]
        if os.environ.get("TMUX"):
            lines.append("tmux passes it on only with `set -g set-clipboard on`.")
        lines.append("Nothing to paste? Y saves it to a file.")
        self.notify("\n".join(lines), title="Copy", timeout=8)

    def action_save_copy(self) -> None:
        visible = self._visible()
        if visible is not None:
            self._save_copy(*visible)

    @work(thread=True, group="preview-save-copy", exit_on_error=False)
    def _save_copy(self, tab: str, text: str) -> None:
        from tui.core.fsutil import atomic_write
        from tui.core.paths import copies_dir

        path = copies_dir() / SAVED_AS[tab]
        try:
            atomic_write(path, text if text.endswith("\n") else text + "\n")
        except OSError as exc:
            self.app.call_from_thread(
                self.notify, f"{path}: {exc}", title="Not saved", severity="error", timeout=8
            )
            return
        what = "with secrets" if self.reveal else "redacted"
        self.app.call_from_thread(
            self.notify, f"The {TAB_NAMES[tab]} ({what}) is in {path}", title="Saved", timeout=8
        )

    def action_save(self) -> None:
        if self.preview is None:
            return
        from tui.screens.dialogs import PromptScreen

        store = self.wizard.session.store
        current = self.draft.get("name")
        suggested = current or default_name(self.draft)

        def check(value: str) -> str | None:
            if not PROFILE_NAME_RE.fullmatch(value):
                return PROFILE_NAME_RULE
            return None

        def named(name: str | None) -> None:
            if not name:
                return
            if not store.exists(name):
                self._save(name)
                return
            self.confirm(
                f"A profile named {name} exists in {store.root}. Overwrite it?",
                yes="Overwrite",
                then=lambda: self._save(name),
            )

        self.app.push_screen(
            PromptScreen("Save as profile named", suggested, check=check, ok="Save"), named
        )

    @work(thread=True, group="preview-save", exit_on_error=False)  # never dropped: not exclusive
    def _save(self, name: str) -> None:
        try:
            path = self.wizard.session.store.save(self.draft.profile(name), overwrite=True)
        except Exception as exc:
            self.app.call_from_thread(
                self.notify, str(exc), title="Not saved", severity="error", timeout=8
            )
            return
        self.app.call_from_thread(self._saved, name, path)

    def _saved(self, name: str, path: Path) -> None:
        self.draft.set("name", name)
        self.draft.origin = path
        self.notify(f"Saved {path}", title="Profile saved", timeout=4)

    def action_submit(self) -> None:
        if self.plan is None:
            return
        if self.report is not None and self.report.failures:
            self._refuse(self.report.failures)
            return
        # Checks still running: the run's own preflight asks again before its first byte.
        try:
            profile = self.draft.profile()
        except Exception as exc:
            self.notify(str(exc), severity="error")
            return
        self.wizard.submit(profile, self.draft.origin)

    def _refuse(self, failures: list[CheckResult]) -> None:
        """Nothing is uploaded: the checks tab comes forward, and the first fail says what to
        fix and on which step."""
        self.query_one("#preview-tabs", TabbedContent).active = "checks"
        first = failures[0]
        where = f"{first.field} ({where_to_fix(first.field)})" if first.field else where_to_fix("")
        more = f" (and {len(failures) - 1} more in the Checks tab)" if len(failures) > 1 else ""
        self.notify(
            f"{first.message}\nFix {where}: {first.fix}{more}",
            title=f"Not uploaded: check {first.id} failed",
            severity="error",
            timeout=12,
        )

    def palette_commands(self) -> list[Command]:
        return [
            (
                "Reveal or hide secrets",
                "presigned-URL signatures in the preview",
                self.action_reveal,
            ),
            ("Copy preview", "the visible tab to the clipboard (OSC 52)", self.action_copy),
            (
                "Save preview to a file",
                "the visible tab, for a terminal without OSC 52 (Y)",
                self.action_save_copy,
            ),
            (
                "Save as profile",
                "write the profile file (asks before overwriting)",
                self.action_save,
            ),
            (
                "Upload and submit",
                "run the import: upload, manifest, ImportInstance",
                self.action_submit,
            ),
        ]


def default_name(draft: Draft) -> str:
    path = draft.image_path()
    if path is None:
        return DRAFT_NAME
    stem = "".join(c if c.isalnum() or c in "._-" else "-" for c in path.stem).strip("-._")
    return stem[:64] or DRAFT_NAME
