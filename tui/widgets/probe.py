"""The live probe panel: what the disk image is and whether EC2 will take it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from tui.core.sources import plan_line
from tui.core.units import human_bytes

if TYPE_CHECKING:
    from tui.core.disk import ProbeResult

SHOWN_PATH = 120  # characters of a path in a message: a 10,000-character one stays one line


def shown_path(path: str) -> str:
    """A typed path as a message shows it: control characters escaped (a newline or a NUL
    would break the line), a very long one cut in the middle."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in path)
    if len(text) <= SHOWN_PATH:
        return text
    return f"{text[: SHOWN_PATH * 2 // 3]}…{text[-(SHOWN_PATH // 3) :]}"


class ProbePanel(Static):
    DEFAULT_CSS = """
    ProbePanel { height: auto; border: round $primary-muted; padding: 0 1; }
    ProbePanel.-bad { border: round $error; }
    ProbePanel.-good { border: round $success; }
    """

    def __init__(self, *, id: str | None = None):
        super().__init__(
            "Pick a disk image (VMDK, VHD, RAW, VHDX, QCOW2, VDI, OVA …) on the left or type "
            "its path.",
            id=id,
        )
        self.border_title = "Probe"

    def show_busy(self, path: str) -> None:
        self.set_classes("")
        self.update(Text(f"Probing {shown_path(path)} …", style="italic"))

    def show_message(self, message: str, *, bad: bool = False) -> None:
        self.set_class(bad, "-bad")
        self.set_class(False, "-good")
        self.update(Text(message))  # not markup: a path may hold "[" (a markup error)

    def show_result(self, result: ProbeResult) -> None:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        ok = bool(result.importable)
        table.add_row("Format", f"{result.format or 'unknown'}")
        table.add_row("Variant", result.variant or "-")
        table.add_row(
            "File size", f"{human_bytes(result.file_bytes)} ({result.file_bytes:,} bytes)"
        )
        table.add_row(
            "Virtual size", f"{human_bytes(result.virtual_bytes)} ({result.virtual_bytes:,} bytes)"
        )
        table.add_row("Suggested volume", f"{result.volume_size_gib} GiB")
        table.add_row(
            "Importable",
            Text("yes", style="green bold") if ok else Text("no", style="red bold"),
        )
        if result.plan is not None:
            table.add_row("Plan", Text(plan_line(result), style="bold"))
            table.add_row("", Text(str(result.plan["reason"])))
        for problem in result.problems:
            table.add_row(Text("Problem", style="red"), Text(problem))
        for warning in result.warnings:
            table.add_row(Text("Warning", style="yellow"), Text(warning))
        self.set_class(not ok, "-bad")
        self.set_class(ok, "-good")
        self.update(table)
