"""The typed events of one import run. The CLI prints them (bars or JSON Lines), the TUI renders
them; both get the same objects from the same pipeline (docs/design.md sections 1 and 3)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from tui.core.errors import EXIT_FAILED, EXIT_OK
from tui.core.tasks import TaskView


@dataclass(frozen=True)
class Event:
    run_id: str
    name: ClassVar[str] = "event"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {"event": self.name, **data}


@dataclass(frozen=True)
class ProbeEvent(Event):
    """The disk image was probed and matches the profile."""

    name: ClassVar[str] = "probe"
    path: str = ""
    format: str = ""
    file_bytes: int = 0
    virtual_bytes: int = 0
    volume_size_gib: int = 0
    warnings: tuple[str, ...] = ()
    plan: str = ""  # "upload", "convert" or "upload-from-ova" (docs/design.md, the probe's plan)
    plan_reason: str = ""


@dataclass(frozen=True)
class ConvertEvent(Event):
    """Progress of qemu-img converting the image to a stream-optimized VMDK (a few a second).
    Bytes count the source's virtual size, the way qemu-img walks it."""

    name: ClassVar[str] = "convert"
    percent: float = 0.0
    bytes_done: int = 0
    bytes_total: int = 0
    bytes_per_s: float = 0.0
    eta_s: float | None = None


@dataclass(frozen=True)
class ConvertedEvent(Event):
    """The stream-optimized VMDK to upload is ready (made now, or reused from the cache)."""

    name: ClassVar[str] = "converted"
    path: str = ""  # the converted file in the cache folder
    source_format: str = ""
    bytes: int = 0  # what will be sent
    source_bytes: int = 0  # what the source file(s) hold
    reused: bool = False
    seconds: float = 0.0


@dataclass(frozen=True)
class UploadEvent(Event):
    """Upload progress (throttled by the uploader: a few a second at most)."""

    name: ClassVar[str] = "upload"
    parts_done: int = 0
    parts_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    bytes_per_s: float = 0.0
    eta_s: float | None = None


@dataclass(frozen=True)
class UploadedEvent(Event):
    """Every part and the manifest are in S3 and verified through their presigned HEAD URLs."""

    name: ClassVar[str] = "uploaded"
    bucket: str = ""
    manifest_key: str = ""
    manifest_url: str = ""  # the presigned GET EC2 is given, its secrets REDACTED
    expires_at: str = ""  # when the presigned URLs stop working (UTC, ISO 8601)
    parts: int = 0
    bytes: int = 0
    parts_sent: int = 0
    parts_skipped: int = 0


@dataclass(frozen=True)
class SubmittedEvent(Event):
    name: ClassVar[str] = "submitted"
    conversion_task_id: str = ""
    instance_id: str | None = None


@dataclass(frozen=True)
class TaskEvent(Event):
    """The conversion task's state or progress changed."""

    name: ClassVar[str] = "task"
    task: TaskView | None = None

    def to_json(self) -> dict[str, Any]:
        body = self.task.to_json() if self.task else {}
        return {"event": self.name, "run_id": self.run_id, **body}


@dataclass(frozen=True)
class TaggedEvent(Event):
    """[after] tags: CreateTags on the instance and every volume of it."""

    name: ClassVar[str] = "tagged"
    resources: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StartedEvent(Event):
    """[after] start: StartInstances, then the instance was seen running."""

    name: ClassVar[str] = "started"
    instance_id: str = ""
    state: str = ""  # "running"
    seconds: float = 0.0  # from StartInstances until it was seen running


@dataclass(frozen=True)
class CleanedEvent(Event):
    """[after] cleanup = "on-success": the run's parts and manifest were deleted from S3."""

    name: ClassVar[str] = "cleaned"
    bucket: str = ""
    manifest_key: str = ""
    objects: int = 0  # how many were deleted


@dataclass(frozen=True)
class WarningEvent(Event):
    name: ClassVar[str] = "warning"
    message: str = ""


class Outcome(StrEnum):
    """How a run ended (DoneEvent.state)."""

    COMPLETED = "completed"  # the task completed: the instance and its volume exist
    CANCELLED = "cancelled"  # the task ended cancelled (by a user, or EC2 failed it)
    SUBMITTED = "submitted"  # --no-wait: the task is EC2's now
    UPLOADED = "uploaded"  # upload only: `resume` submits it
    DRY_RUN = "dry-run"  # DryRun=true: EC2 says the request would succeed


SUCCEEDED = frozenset({Outcome.COMPLETED, Outcome.SUBMITTED, Outcome.UPLOADED, Outcome.DRY_RUN})


@dataclass(frozen=True)
class DoneEvent(Event):
    """The run ended; `state` says how."""

    name: ClassVar[str] = "done"
    state: Outcome = Outcome.COMPLETED
    conversion_task_id: str | None = None
    instance_id: str | None = None
    volume_id: str | None = None
    message: str = ""
    cleanup: tuple[str, ...] = field(default=())
    # "running" when [after] start started it; None: as ImportInstance leaves it (stopped)
    instance_state: str | None = None
    after_done: tuple[str, ...] = ()  # the [after] steps done, in order

    @property
    def succeeded(self) -> bool:
        return self.state in SUCCEEDED

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.succeeded else EXIT_FAILED


@dataclass(frozen=True)
class ErrorEvent(Event):
    name: ClassVar[str] = "error"
    code: str = ""
    message: str = ""
    exit_code: int = EXIT_FAILED

    @classmethod
    def from_exception(cls, run_id: str, exc: BaseException) -> ErrorEvent:
        """Any exception as the event a user reads: AWS's code when there is one, else the
        kind of error (a bug shows as its exception type, exit 3 like any unmapped error)."""
        from tui.core.aws import map_error
        from tui.core.errors import AwsError, Interrupted, without_code

        err = map_error(exc)
        if isinstance(err, Interrupted):
            code = "Interrupted"
        else:
            code = (err.code if isinstance(err, AwsError) else None) or type(err).__name__
        # The code travels on its own: the message never repeats it (`errors.coded` joins them).
        message = without_code(code, err.located)
        return cls(run_id, code=code, message=message, exit_code=err.exit_code)
