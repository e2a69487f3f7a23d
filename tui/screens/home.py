"""Home: saved profiles (open, duplicate, rename, delete) and recent runs.

Only profile names are read while the screen paints; loading them validates enums through
botocore's model, so details arrive from a worker a moment later.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Label
from textual.worker import get_current_worker

from tui.messages import AccountChanged, RunUpdated
from tui.screens.base import BaseScreen
from tui.widgets.commands import Command
from tui.widgets.fit_table import Col, FitTable

if TYPE_CHECKING:
    from textual.worker import Worker

    from tui.core.draft import Draft
    from tui.core.profiles import ProfileStore


# At 80 columns every header stays whole: the description gives up width first, then the
# name, then the source.
PROFILE_COLUMNS = (
    Col("name", "Name", 22, least=10, shrink=2),
    Col("source", "Source", 56, least=24, shrink=1),
    Col("type", "Instance type", 14),
    Col("description", "Description", 24, least=11, shrink=3),
)
RUN_COLUMNS = (
    Col("run", "Run", 10, least=8, shrink=1),
    Col("profile", "Profile", 22, least=13, shrink=3),  # "(no runs yet)"
    Col("state", "State", 12, least=11, shrink=1),  # "interrupted"
    Col("task", "Task", 22, least=17, shrink=2),  # a task id is 17 characters
    Col("updated", "Updated", 20, least=16, shrink=2),  # 2026-12-02 13:14 (no seconds)
)


class HomeScreen(BaseScreen):
    BINDINGS = [
        Binding("enter", "open", "Open", id="home.open", show=False),
        Binding("d", "duplicate", "Duplicate", id="home.duplicate"),
        Binding("r", "rename", "Rename", id="home.rename"),
        Binding("x,delete", "delete", "Delete", id="home.delete"),
        Binding("a", "app.switch_account", "Account", id="home.account"),
    ]

    def compose(self) -> ComposeResult:
        yield from self.header()
        with Vertical(id="home"):
            with Horizontal(id="home-context"):
                yield Label("", id="context-label")
                yield Button("Switch account (a)", id="switch-account", compact=True)
            yield Label("Saved profiles", classes="section-title")
            yield FitTable(PROFILE_COLUMNS, id="profiles", cursor_type="row", zebra_stripes=True)
            with Horizontal(classes="buttons"):
                yield Button("New import (n)", variant="primary", id="new")
                yield Button("Open", id="open")
                yield Button("Duplicate (d)", id="duplicate")
                yield Button("Rename (r)", id="rename")
                yield Button("Delete (x)", variant="error", id="delete")
            yield Label("Recent runs", classes="section-title")
            yield FitTable(RUN_COLUMNS, id="runs", cursor_type="row", zebra_stripes=True)
        yield from self.footer()

    _select: str | None = None  # the row to show selected once the table is loaded
    _damaged_told = 0  # how many damaged run records the last notification counted

    @property
    def store(self) -> ProfileStore:
        return self.wizard.session.store

    def on_mount(self) -> None:
        profiles = self.query_one("#profiles", DataTable)
        profiles.add_row("loading …", "", "", "", key="")
        self.watch(self.app, "sub_title", self._show_account)  # the context, once resolved
        profiles.focus()

    def on_screen_resume(self) -> None:
        # Also sent when the screen is first shown. Loading waits for the paint: the workers
        # import pydantic and read files, and a thread holding the GIL delays the first paint.
        self.call_after_refresh(self.reload)

    @on(AccountChanged)
    def _show_account(self) -> None:
        self.query_one("#context-label", Label).update(
            Text.assemble("Account: ", (self.app.sub_title, "bold"))
        )

    def reload(self, select: str | None = None) -> None:
        """Names and details come from a worker: reading profiles loads pydantic and botocore's
        model, which the first paint must not wait for."""
        self._show_account()
        # A reload on resume (a dialog closed) must not lose the row a rename asked for.
        self._select = select or self._select
        self._load_details(self._select or self.selected())
        self._load_runs()

    @work(thread=True, exclusive=True, group="home-details", exit_on_error=False)
    def _load_details(self, selected: str | None) -> None:
        from tui.core.redact import redact_url

        rows: dict[str, tuple[str, str, str]] = {}
        store = self.store
        for name in store.names():
            try:
                p = store.load(name)
            except Exception as exc:
                rows[name] = (f"cannot load: {exc}", "", "")
                continue
            src = p.source
            source = src.path or redact_url(src.manifest_url or "")[:60]
            if src.bucket:
                source += f" → s3://{src.bucket}"
            itype = p.request.LaunchSpecification.InstanceType or ""
            rows[name] = (source, itype, p.description or "")
        if not get_current_worker().is_cancelled:  # a newer reload (e.g. a rename's) won
            self.app.call_from_thread(self._show_details, rows, selected)

    def _show_details(self, rows: dict[str, tuple[str, str, str]], selected: str | None) -> None:
        table = self.query_one("#profiles", DataTable)
        table.clear()
        for name, (source, itype, description) in rows.items():
            table.add_row(*(Text(c) for c in (name, source, itype, description)), key=name)
        if not rows:
            table.add_row("(none yet)", "press n; save it from the preview", "", "", key="")
        names = list(rows)
        self._select = None
        if selected in names:
            table.move_cursor(row=names.index(selected))

    def worker_failed(self, worker: Worker[object], error: BaseException) -> None:
        if worker.group == "home-details":  # not "loading …" for ever
            table = self.query_one("#profiles", DataTable)
            table.clear()
            table.add_row(
                Text("(cannot list)", style="red"),
                "the profiles folder: see the error",
                "",
                "",
                key="",
            )
        super().worker_failed(worker, error)

    @work(thread=True, exclusive=True, group="home-runs", exit_on_error=False)
    def _load_runs(self) -> None:
        from tui.core.journal import RunState

        rows: list[tuple[str, ...]] = []
        try:
            from tui.core.journal import scan_runs

            scan = scan_runs(sandbox=self.wizard.sandbox)
            records, damaged = scan.records, len(scan.damaged)
        except Exception:  # journal not there or unreadable: show what this session knows
            records, damaged = [], 0
        if damaged and damaged != self._damaged_told:  # once, not at every reload
            self._damaged_told = damaged
            self.app.call_from_thread(
                self.notify,
                f"{damaged} damaged run record(s) skipped: `ec2-import-wizard runs` names them",
                severity="warning",
            )
        # The task table may see a task end before the run's own poll writes it down.
        session_runs = list(self.wizard.state.runs.values())
        finished = dict(self.wizard.state.finished_tasks)
        for rec in records[:20]:  # newest first
            state: str = rec.state
            # Not over a run past its task ([after] steps left): its own state says what is due.
            past_task = RunState.FINISHING in (rec.state, rec.interrupted_in)
            if rec.task_id in finished and not rec.final and not past_task:
                state = finished[rec.task_id]
            updated = rec.updated_at[:19].replace("T", " ")
            rows.append(
                (rec.run_id, rec.short_id, rec.profile_name, state, rec.task_id or "", updated)
            )
        known = {r[0] for r in rows}
        for run in session_runs:  # started in this session, not yet recorded
            if run.run_id not in known:
                rows.insert(
                    0,
                    (
                        run.run_id,
                        run.run_id[:8],
                        run.profile_name,
                        run.status,
                        run.task_id or "",
                        "",
                    ),
                )
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show_runs, rows)

    @on(RunUpdated)
    def _run_updated(self, message: RunUpdated) -> None:
        """A run of this session moved on: the recent runs follow it."""
        from tui.core.events import DoneEvent, ErrorEvent, SubmittedEvent

        if isinstance(message.event, SubmittedEvent | DoneEvent | ErrorEvent):
            self._load_runs()

    def _show_runs(self, rows: list[tuple[str, ...]]) -> None:
        table = self.query_one("#runs", DataTable)
        table.clear()
        for run_id, *cells in rows:
            table.add_row(*cells, key=run_id)
        if not rows:
            table.add_row("", "(no runs yet)", "", "", "", key="")  # the Run column is narrow

    # actions --------------------------------------------------------------------------------

    def selected(self) -> str | None:
        table = self.query_one("#profiles", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return key or None

    @on(DataTable.RowSelected, "#profiles")
    def _row_selected(self) -> None:
        self.action_open()

    @on(DataTable.RowSelected, "#runs")
    def _run_selected(self, event: DataTable.RowSelected) -> None:
        from tui.core.journal import RUN_ID_RE
        from tui.screens.run import RunScreen

        run_id = event.row_key.value or ""
        if RUN_ID_RE.fullmatch(run_id):  # not "(no runs yet)", not a run still without an id
            self.app.push_screen(RunScreen(run_id))

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        actions = {
            "new": self.wizard.action_new_import,
            "open": self.action_open,
            "duplicate": self.action_duplicate,
            "rename": self.action_rename,
            "delete": self.action_delete,
            "switch-account": self.wizard.action_switch_account,
        }
        action = actions.get(event.button.id or "")
        if action:
            action()

    def _need_selection(self) -> str | None:
        name = self.selected()
        if name is None:
            self.notify("No saved profile selected", severity="warning", timeout=3)
        return name

    def action_open(self) -> None:
        name = self._need_selection()
        if name is not None:
            self._open(name)

    @work(thread=True, exclusive=True, group="home-open", exit_on_error=False)
    def _open(self, name: str) -> None:
        from tui.core.draft import Draft

        try:
            profile, origin = self.wizard.session.load_profile(name)
            region = self.wizard.account.target().region  # where the wizard's requests go
        except Exception as exc:
            self.app.call_from_thread(
                self.notify, str(exc), title="Cannot open", severity="error", timeout=8
            )
            return
        self.app.call_from_thread(self._opened, Draft.from_profile(profile, origin), region)

    def _opened(self, draft: Draft, region: str) -> None:
        if self.is_current:  # the user did not go elsewhere meanwhile
            self.wizard.open_profile(draft, region)

    def _name_check(self, exclude: str | None = None) -> Callable[[str], str | None]:
        from tui.core.facts import PROFILE_NAME_RE, PROFILE_NAME_RULE

        def check(value: str) -> str | None:
            if not PROFILE_NAME_RE.fullmatch(value):
                return PROFILE_NAME_RULE
            if value != exclude and self.store.exists(value):
                return f"a profile named {value!r} exists"
            return None

        return check

    def action_duplicate(self) -> None:
        from tui.screens.dialogs import PromptScreen

        name = self._need_selection()
        if name is None:
            return

        def done(new: str | None) -> None:
            if new:
                self._copy(name, new, delete_old=False)

        self.app.push_screen(
            PromptScreen(f"Duplicate {name} as", f"{name}-copy", check=self._name_check()), done
        )

    def action_rename(self) -> None:
        from tui.screens.dialogs import PromptScreen

        name = self._need_selection()
        if name is None:
            return

        def done(new: str | None) -> None:
            if new and new != name:
                self._copy(name, new, delete_old=True)

        self.app.push_screen(
            PromptScreen(f"Rename {name} to", name, check=self._name_check(exclude=name)), done
        )

    # Not exclusive: a change of the files must never be dropped for the next one.
    @work(thread=True, group="home-files", exit_on_error=False)
    def _copy(self, old: str, new: str, *, delete_old: bool) -> None:
        try:
            profile = self.store.load(old)
            self.store.save(profile.model_copy(update={"name": new}))
            if delete_old:
                self.store.delete(old)
        except Exception as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error", timeout=8)
            return
        done = f"{'Renamed' if delete_old else 'Duplicated'} {old} → {new}"
        self.app.call_from_thread(self._changed, done, new)

    # Not exclusive: a change of the files must never be dropped for the next one.
    @work(thread=True, group="home-files", exit_on_error=False)
    def _delete(self, name: str) -> None:
        try:
            path = self.store.delete(name)
        except Exception as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        self.app.call_from_thread(self._changed, f"Deleted {path}", None)

    def _changed(self, done: str, select: str | None) -> None:
        self.notify(done, timeout=3)
        self.reload(select=select)

    def action_delete(self) -> None:
        name = self._need_selection()
        if name is not None:
            self.confirm(
                f"Delete the saved profile {name}?", yes="Delete", then=lambda: self._delete(name)
            )

    def palette_commands(self) -> list[Command]:
        return [
            ("Open profile", "load the selected profile into the wizard", self.action_open),
            ("Duplicate profile", "save a copy under a new name", self.action_duplicate),
            ("Rename profile", "give the selected profile a new name", self.action_rename),
            ("Delete profile", "remove the selected profile file", self.action_delete),
        ]
