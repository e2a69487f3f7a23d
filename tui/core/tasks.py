"""Conversion tasks as the UI and the CLI show them, from DescribeConversionTasks items.

One view model for the `tasks` table, the TUI's live table and the pipeline's watch loop: the
phase, percent and ids are worked out here once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class TaskState(StrEnum):
    """A conversion task's State as EC2 reports it (docs/protocol.md section 6)."""

    ACTIVE = "active"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


ACTIVE_STATES = frozenset({TaskState.ACTIVE, TaskState.CANCELLING})
FINAL_STATES = frozenset({TaskState.COMPLETED, TaskState.CANCELLED})
_PROGRESS_RE = re.compile(r"Progress:\s*(\d{1,3})%")
_DOWNLOADED_RE = re.compile(r"Downloaded\s+(\d+)")


@dataclass(frozen=True)
class TaskView:
    task_id: str
    state: str  # a TaskState as EC2 sends it (kept as text: EC2 may add states)
    message: str  # the task's StatusMessage, else the volume's
    instance_id: str | None
    volume_id: str | None
    zone: str | None
    expires: str | None  # ExpirationTime as EC2 sends it (a plain string)
    image_bytes: int | None
    bytes_converted: int | None
    image_format: str | None
    manifest_url: str | None
    volume_size: int | None
    volume_status: str | None
    description: str | None
    kind: str  # "instance" | "volume"

    @classmethod
    def from_api(cls, item: dict[str, Any]) -> TaskView:
        imp = item.get("ImportInstance") or {}
        vol_task = item.get("ImportVolume")
        if vol_task:
            volume = vol_task
            kind = "volume"
            instance_id = None
            description = vol_task.get("Description")
        else:
            volumes = imp.get("Volumes") or [{}]
            volume = volumes[0]
            kind = "instance"
            instance_id = imp.get("InstanceId")
            description = imp.get("Description")
        image = volume.get("Image") or {}
        vol = volume.get("Volume") or {}
        message = item.get("StatusMessage") or volume.get("StatusMessage") or ""
        return cls(
            task_id=item.get("ConversionTaskId", ""),
            state=item.get("State", ""),
            message=message,
            instance_id=instance_id,
            volume_id=vol.get("Id"),
            zone=volume.get("AvailabilityZone"),
            expires=item.get("ExpirationTime"),
            image_bytes=image.get("Size"),
            bytes_converted=volume.get("BytesConverted"),
            image_format=image.get("Format"),
            manifest_url=image.get("ImportManifestUrl"),
            volume_size=vol.get("Size"),
            volume_status=volume.get("Status"),
            description=description,
            kind=kind,
        )

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def percent(self) -> float | None:
        """Percent done: EC2's "Progress: NN%" when it says so, else bytes converted."""
        if self.state == TaskState.COMPLETED:
            return 100.0
        m = _PROGRESS_RE.search(self.message)
        if m:
            return float(min(100, int(m.group(1))))
        if self.image_bytes and self.bytes_converted is not None:
            return round(100.0 * min(self.bytes_converted, self.image_bytes) / self.image_bytes, 1)
        return None

    @property
    def phase(self) -> str:
        """A word for the state a human reads first."""
        if self.state != TaskState.ACTIVE:
            return self.state
        if _PROGRESS_RE.search(self.message):
            return "converting"
        if _DOWNLOADED_RE.search(self.message):
            return "downloading"
        return "pending"

    def row(self) -> tuple[str, ...]:
        """Columns of the table (same order as COLUMNS)."""
        pct = self.percent
        return (
            self.task_id,
            self.state,
            self.message,
            "" if pct is None else f"{pct:.0f}%",
            self.instance_id or "",
            self.volume_id or "",
            self.zone or "",
            self.expires or "",
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "conversion_task_id": self.task_id,
            "state": self.state,
            "phase": self.phase,
            "message": self.message,
            "percent": self.percent,
            "instance_id": self.instance_id,
            "volume_id": self.volume_id,
            "availability_zone": self.zone,
            "expiration_time": self.expires,
            "image_bytes": self.image_bytes,
            "bytes_converted": self.bytes_converted,
        }


COLUMNS = ("Task", "State", "Message", "Done", "Instance", "Volume", "Zone", "Expires")


def views(response: dict[str, Any]) -> list[TaskView]:
    return [TaskView.from_api(t) for t in response.get("ConversionTasks", [])]


def format_table(tasks: list[TaskView]) -> str:
    """A plain-text table like the legacy describe-conversion-tasks."""
    from tui.core.units import text_table

    return text_table([COLUMNS, *(t.row() for t in tasks)], max_widths={2: 40})
