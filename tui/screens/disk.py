"""Step 1, the disk image: a local file (tree or typed path, probed live) or a manifest already
uploaded; the bucket, key prefix and URL expiry of the upload."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import struct
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.suggester import Suggester
from textual.timer import Timer
from textual.widgets import Button, DirectoryTree, Input, Label, TabbedContent, TabPane

from tui.core.paths import make_private_dir
from tui.core.units import counted
from tui.messages import AccountChanged
from tui.screens.base import StepScreen
from tui.widgets.commands import Command
from tui.widgets.form import FieldValue, Form, FormField, field_id
from tui.widgets.probe import ProbePanel, shown_path

if TYPE_CHECKING:
    from textual.worker import Worker

    from tui.core.disk import ProbeResult

# Shown in the tree: what EC2 takes, and what the probe plans a conversion (or an OVA upload) for.
DISK_SUFFIXES = frozenset(
    {".vmdk", ".vhd", ".raw", ".img", ".bin", ".vhdx", ".qcow2", ".qcow", ".vdi", ".ova", ".ovf"}
)
LOCAL_PATHS = ("source.path", "source.bucket", "source.key_prefix", "source.url_expiry_days")
MANIFEST_PATHS = ("source.manifest_url", "source.bytes")
DEMO_NAME = "demo-disk.vmdk"
DEMO_RAW = "demo-disk.raw"
DEMO_BYTES = 8 << 20
DEMO_BUCKET = "ec2-import-wizard-demo"


class DiskTree(DirectoryTree):
    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        for p in paths:
            if p.name.startswith("."):
                continue
            try:
                if p.is_dir() or p.suffix.lower() in DISK_SUFFIXES:
                    yield p
            except OSError:
                continue


class PathSuggester(Suggester):
    """Completes a typed path from the file system (folders end with '/')."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        # textual runs this in a worker that ends the app if it raises: nothing typed may.
        try:
            p = Path(value).expanduser()  # RuntimeError: "~nobody/" has no home
            folder, stem = (p, "") if value.endswith("/") else (p.parent, p.name)
            names = sorted(c.name + ("/" if c.is_dir() else "") for c in folder.iterdir())
        except (OSError, RuntimeError, ValueError):  # ValueError: a NUL in the path
            return None
        for name in names:
            if name.startswith(stem) and not name.startswith(".") and name != stem:
                return value + name[len(stem) :]
        return None


def make_demo_image(folder: Path) -> Path:
    """A small disk to import now: a stream-optimized VMDK (qemu-img) of a RAW disk with an MBR
    and one active NTFS-typed partition (what the preflight wants of a boot disk; the partition
    holds no file system, which it only warns about); the RAW itself without qemu-img."""
    make_private_dir(folder)
    raw = folder / DEMO_RAW
    if not raw.exists():
        mbr = bytearray(512)
        start, sectors = 2048, DEMO_BYTES // 512 - 2048  # from 1 MiB on, as partitioners do
        # status 0x80 (active), CHS unused, type 0x07 (NTFS), then LBA start and length
        mbr[446:462] = bytes([0x80, 0, 0, 0, 0x07, 0, 0, 0]) + struct.pack("<II", start, sectors)
        mbr[510:512] = b"\x55\xaa"
        tmp = raw.with_name(raw.name + ".tmp")
        with tmp.open("wb") as f:
            f.write(mbr)
            f.truncate(DEMO_BYTES)
        os.replace(tmp, raw)
    qemu = shutil.which("qemu-img")
    if not qemu:
        return raw
    path = folder / DEMO_NAME
    if not path.exists():
        tmp = path.with_name(path.name + ".tmp")
        subprocess.run(
            [qemu, "convert", "-q", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, tmp],
            check=True,
            capture_output=True,
        )
        os.replace(tmp, path)
    return path


class DiskScreen(StepScreen):
    STEP = "1/4 Disk image"
    PREFIXES = ("source",)
    BINDINGS = [Binding("ctrl+g", "demo_image", "Demo image", id="disk.demo")]

    def __init__(self) -> None:
        super().__init__()
        self._probe: tuple[str, ProbeResult | str] | None = None  # (path, result or why not)
        self._probe_timer: Timer | None = None
        self._next_when_probed = False  # Next was asked for before the probe's result came
        self._stash: dict[str, FieldValue] = {}

    def compose(self) -> ComposeResult:
        yield from self.header()
        start = self.wizard.start_dir or Path.cwd()
        # A saved profile's path may be anything: a name too long, a NUL, "~nobody/".
        with contextlib.suppress(OSError, RuntimeError, ValueError):
            image = self.draft.image_path()
            if image is not None and image.parent.is_dir():
                start = image.parent
        with Horizontal(id="disk"):
            with Vertical(id="tree-pane"):
                yield Label("Disk images", classes="section-title")
                yield DiskTree(start, id="tree")
            with Form(id="disk-form"):
                yield Label("", id="err-source", classes="table-error")
                with TabbedContent(id="source-mode"):
                    with TabPane("Local disk image", id="local"):
                        yield FormField(
                            "source.path",
                            "Disk image path",
                            placeholder="e.g. /path/to/disk.vmdk",
                            required=True,
                        )
                        yield ProbePanel(id="probe")
                        if self.wizard.sandbox:
                            yield Button("Use a demo disk image (ctrl+g)", id="demo", compact=True)
                        yield FormField(
                            "source.convert",
                            "Convert",
                            kind="choice",
                            choices=["auto", "always", "never"],
                            placeholder="auto (when needed or when it saves sending)",
                        )
                        yield FormField(
                            "source.bucket",
                            "S3 bucket",
                            placeholder="e.g. amzn-s3-demo-bucket",
                            required=True,
                            pick=True,
                        )
                        yield FormField(
                            "source.key_prefix",
                            "Key prefix",
                            placeholder="(none) e.g. imports/",
                        )
                        yield FormField(
                            "source.url_expiry_days",
                            "URL expiry (days)",
                            kind="choice",
                            choices=[str(d) for d in range(1, 8)],
                            placeholder="(default: 7)",
                        )
                    with TabPane("Uploaded manifest", id="manifest"):
                        yield FormField(
                            "source.manifest_url",
                            "Manifest URL",
                            placeholder="e.g. https://…manifest.xml?X-Amz-…",
                            required=True,
                        )
                        yield FormField(
                            "source.bytes", "Image bytes", kind="int", placeholder="e.g. 1179593728"
                        )
                yield Label("Both kinds", classes="section-title")
                yield FormField(
                    "source.format",
                    "Format",
                    kind="choice",
                    choices=["VMDK", "VHD", "RAW"],
                    placeholder="(default: detected)",
                )
                yield FormField(
                    "source.volume_size",
                    "Volume size (GiB)",
                    kind="int",
                    placeholder="(default: virtual size)",
                )
                with Horizontal(classes="buttons"):
                    yield Button("Back", id="back")
                    yield Button("Next: launch specification", variant="primary", id="next")
        yield from self.footer()

    def on_mount(self) -> None:
        self.query_one("#tree", DiskTree).show_root = True
        self.query_one("#f-source-path .field-control", Input).suggester = PathSuggester()
        if self.draft.get("source.manifest_url"):
            self.query_one("#source-mode", TabbedContent).active = "manifest"
        if self.draft.get("source.path"):
            self._schedule_probe(0.01)
        self.query_one("#f-source-bucket", FormField).set_hint("loading buckets from the account …")
        self._load_buckets()

    @on(AccountChanged)
    def _account_changed(self) -> None:
        self._load_buckets()

    # pick-list of buckets ----------------------------------------------------------------

    @work(thread=True, exclusive=True, group="buckets", exit_on_error=False)
    def _load_buckets(self) -> None:
        try:
            names = self.wizard.account.buckets()
        except Exception as exc:
            self.app.call_from_thread(self._buckets_failed, str(exc))
            return
        self.app.call_from_thread(self._show_buckets, names)

    def _show_buckets(self, names: list[str]) -> None:
        field = self.query_one("#f-source-bucket", FormField)
        field.set_options([(n, n) for n in names])
        field.set_hint(f"{counted(len(names), 'bucket')} in the account: type or pick")

    def _buckets_failed(self, message: str) -> None:
        self.query_one("#f-source-bucket", FormField).set_hint(
            f"cannot list buckets: {message}; type the name"
        )

    # source mode -------------------------------------------------------------------------

    @property
    def mode(self) -> str:
        return self.query_one("#source-mode", TabbedContent).active or "local"

    def first_field(self) -> FormField:
        # Typing on the tree or the tabs goes to the visible kind of source: a path or a URL.
        path = "source.path" if self.mode == "local" else "source.manifest_url"
        return self.query_one(f"#{field_id(path)}", FormField)

    @on(TabbedContent.TabActivated, "#source-mode")
    def _mode_changed(self) -> None:
        """Only the visible kind of source goes into the draft (a profile takes exactly one);
        the other kind's values wait in a stash in case the user switches back."""
        keep, drop = (
            (LOCAL_PATHS, MANIFEST_PATHS) if self.mode == "local" else (MANIFEST_PATHS, LOCAL_PATHS)
        )
        for path in drop:
            value = self.draft.get(path)
            if value is not None:
                self._stash[path] = value
                self.draft.set(path, None)
        for path in keep:
            if path in self._stash:
                self.draft.set(path, self._stash.pop(path))
        self.show_errors()

    # the tree and the probe --------------------------------------------------------------

    @on(DirectoryTree.FileSelected)
    def _file_selected(self, event: DirectoryTree.FileSelected) -> None:
        self.query_one("#source-mode", TabbedContent).active = "local"
        field = self.query_one("#f-source-path", FormField)
        # Posts Changed like typing does.
        field.query_one(".field-control", Input).value = str(event.path)

    def field_changed(self, field: FormField, value: FieldValue) -> None:
        if field.path == "source.path":
            self._next_when_probed = False  # a Next pressed for another path
            self._schedule_probe(0.25)
        elif field.path == "source.convert" and self._probe is not None:
            self.call_later(self._start_probe)  # the plan is the convert mode's (a probe under way
            # finds the mode changed when it ends, and probes again)

    def _schedule_probe(self, delay: float) -> None:
        # Debounced: typing a path probes once the user pauses, not at every key.
        if self._probe_timer is not None:
            self._probe_timer.stop()
        self._probe_timer = self.set_timer(delay, self._start_probe)

    def _start_probe(self) -> None:
        path = self.draft.get("source.path")
        panel = self.query_one("#probe", ProbePanel)
        if not path:
            self._probe = None
            panel.show_message("Pick a disk image (VMDK, VHD or RAW) on the left or type its path.")
            self.show_errors()
            return
        panel.show_busy(path)
        self._run_probe(path, self._convert_mode())

    def _convert_mode(self) -> str:
        return self.draft.get("source.convert") or "auto"

    @work(thread=True, exclusive=True, group="probe", exit_on_error=False)
    def _run_probe(self, path: str, convert: str) -> None:
        result = probe_path(path, convert)
        self.app.call_from_thread(self._probed, path, result, convert)

    def worker_failed(self, worker: Worker[object], error: BaseException) -> None:
        if worker.group == "probe":  # not "Probing …" for ever: the error, in the probe box
            self._next_when_probed = False
            self.query_one("#probe", ProbePanel).show_message(
                f"cannot probe the image: {type(error).__name__}: {error}"[:200], bad=True
            )
        super().worker_failed(worker, error)

    def _probed(self, path: str, result: ProbeResult | str, convert: str = "auto") -> None:
        if path != self.draft.get("source.path"):
            return  # the user typed on meanwhile
        if convert != self._convert_mode():
            self._start_probe()  # the convert mode changed meanwhile: plan for the new one
            return
        self._probe = (path, result)
        panel = self.query_one("#probe", ProbePanel)
        if isinstance(result, str):
            panel.show_message(result, bad=True)
        else:
            panel.show_result(result)
            self.query_one("#f-source-volume_size", FormField).set_hint(
                f"suggested: {result.volume_size_gib} GiB (never less)"
            )
        self.show_errors()
        if self._next_when_probed:
            self._next_when_probed = False
            if self.is_current:  # not if the user left the step meanwhile
                super().action_next()

    def extra_errors(self) -> dict[str, str]:
        """The image against the form: exists, importable, format, volume size and the keys'
        length agree."""
        from tui.core.errors import InputError
        from tui.core.plan import check_key_length

        errors: dict[str, str] = {}
        path = self.draft.get("source.path")
        if self.mode != "local" or not path:
            return errors
        if self._probe is None or self._probe[0] != path:
            return errors  # the probe is on its way (action_next waits for it)
        result = self._probe[1]
        if isinstance(result, str):
            errors["source.path"] = result
            return errors
        if not result.importable:
            errors["source.path"] = "; ".join(result.problems) or "not an importable disk image"
            return errors
        fmt = self.draft.get("source.format")
        sent = result.upload_format or result.format
        if fmt and fmt != sent:
            errors["source.format"] = f"the image is sent as {sent}: leave this unset or fix it"
        try:  # the keys' length needs the image's size: the plan's check, here with its result
            check_key_length(self.draft.get("source.key_prefix") or "", path, result.file_bytes)
        except InputError as exc:
            errors["source.key_prefix"] = exc.message
        size = self.draft.get("source.volume_size")
        if isinstance(size, int) and size < result.volume_size_gib:
            errors["source.volume_size"] = (
                f"{size} GiB is smaller than the image's virtual size "
                f"(needs {result.volume_size_gib} GiB)"
            )
        return errors

    # demo image (sandbox) ------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # The demo image exists for the sandbox only: elsewhere its key is neither shown nor bound.
        if action == "demo_image":
            return self.wizard.sandbox
        return True

    @on(Button.Pressed, "#demo")
    def action_demo_image(self) -> None:
        self.query_one("#probe", ProbePanel).show_busy("a new demo disk image")
        self._make_demo()

    @work(thread=True, exclusive=True, group="demo", exit_on_error=False)
    def _make_demo(self) -> None:
        from tui.core.paths import demo_dir

        try:
            path = make_demo_image(demo_dir())
        except Exception as exc:
            self.app.call_from_thread(
                self.query_one("#probe", ProbePanel).show_message,
                f"cannot make a demo image: {exc}",
                bad=True,
            )
            return
        self.app.call_from_thread(self._use_demo, path)

    def _use_demo(self, path: Path) -> None:
        self.query_one("#source-mode", TabbedContent).active = "local"
        self.query_one("#f-source-path .field-control", Input).value = str(path)
        bucket = self.query_one("#f-source-bucket .field-control", Input)
        if not bucket.value:
            bucket.value = DEMO_BUCKET

    # navigation ----------------------------------------------------------------------------

    def action_next(self) -> None:
        path = self.draft.get("source.path")
        if self.mode == "local" and path and (self._probe is None or self._probe[0] != path):
            # The image is not probed yet (the user was quick): probe it now, go on after.
            if self._probe_timer is not None:
                self._probe_timer.stop()
            self._next_when_probed = True
            self.query_one("#probe", ProbePanel).show_busy(path)
            self._run_probe(path, self._convert_mode())
            return
        super().action_next()

    def palette_commands(self) -> list[Command]:
        commands = super().palette_commands()
        if self.wizard.sandbox:
            commands.append(
                ("Use a demo disk image", "make a small VMDK to import", self.action_demo_image)
            )
        return commands


def probe_path(path: str, convert: str = "auto") -> ProbeResult | str:
    """What the image is and its plan for `convert`, or a one-line reason the file cannot be
    probed. Never raises: a typed path can be anything (too long, a symlink loop, a FIFO, a
    NUL, "~nobody/")."""
    from tui.core.disk import probe

    shown = shown_path(path)
    if "\0" in path:
        return f"{shown}: a path cannot contain a NUL character"
    try:
        p = Path(path).expanduser()
    except RuntimeError:  # "~name" of no user
        return f"no such file: {shown} (no home folder for {shown_path(path.split('/')[0])})"
    try:
        st = p.stat()
        if stat.S_ISREG(st.st_mode) and not os.access(p, os.R_OK):
            return f"cannot read {shown}: permission denied"
    except FileNotFoundError:
        return f"no such file: {shown}"
    except NotADirectoryError:
        return f"no such file: {shown} (a part of it is a file, not a folder)"
    except PermissionError:
        return f"cannot read {shown}: permission denied"
    except OSError as exc:  # ENAMETOOLONG, ELOOP, EIO …
        return f"cannot read {shown}: {exc.strerror or exc}"
    if stat.S_ISDIR(st.st_mode):
        return f"{shown} is a folder: pick a disk image file"
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        return f"{shown} is not a disk image file (a FIFO, a socket or a device)"
    try:
        return probe(p, convert)  # handles its own OS errors (the file may change meanwhile)
    except Exception as exc:
        return f"cannot read {shown}: {exc}"
