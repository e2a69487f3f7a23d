"""Run records: one JSON file per import run under the platformdirs state dir, for `resume`,
`runs`, `cleanup` and the TUI's recent runs.

A record holds the profile snapshot, S3 keys (never presigned URLs: they are bearer secrets),
parts done, the task id and state. Writes are atomic with mode 0600.

One process at a time owns a run: `Journal.own` takes an exclusive `flock` on `<run_id>.lock`
beside the record, so two processes never upload, submit or clean up the same run at once.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from tui.core import paths
from tui.core.errors import InputError
from tui.core.fsutil import atomic_write

RUN_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class RunState(StrEnum):
    """Where a run is, in the order a run passes through the states."""

    PLANNED = "planned"
    UPLOADING = "uploading"
    UPLOADED = "uploaded"
    SUBMITTING = "submitting"  # ImportInstance sent, answer not yet recorded
    SUBMITTED = "submitted"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # stopped by a signal or an error: `resume` goes on


FINAL = frozenset({RunState.COMPLETED, RunState.CANCELLED, RunState.FAILED})


def new_run_id() -> str:
    return str(uuid.uuid4())


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class RunRecord:
    run_id: str
    profile_name: str
    profile: dict[str, Any]  # the profile as it was when the run started
    profile_origin: str | None
    region: str
    aws_profile: str | None = None
    endpoint_url: str | None = None
    sandbox: bool = False
    image_path: str | None = None
    image_bytes: int = 0
    image_format: str = ""
    volume_size: int = 0
    bucket: str | None = None
    manifest_key: str | None = None
    part_size: int = 0
    parts_total: int = 0
    parts_done: list[int] = field(default_factory=list)
    task_id: str | None = None
    instance_id: str | None = None
    volume_id: str | None = None
    state: RunState = RunState.PLANNED
    interrupted_in: RunState | None = None  # the state it was stopped in
    message: str = ""
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)

    @property
    def final(self) -> bool:
        return self.state in FINAL

    @property
    def short_id(self) -> str:
        return self.run_id[:8]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        """Raises ValueError or TypeError for a record that is not one of ours."""
        known = {f.name for f in fields(cls)}
        record = cls(**{k: v for k, v in data.items() if k in known})
        record.state = RunState(record.state)
        if record.interrupted_in is not None:
            record.interrupted_in = RunState(record.interrupted_in)
        return record


class Journal:
    """Run records on disk. Thread-safe: the uploader's workers report parts concurrently."""

    def __init__(self, root: Path | None = None):
        self.root = root if root is not None else paths.runs_dir()
        self._lock = threading.Lock()

    def path_for(self, run_id: str) -> Path:
        return self.root / f"{run_id}.json"

    def lock_path_for(self, run_id: str) -> Path:
        return self.root / f"{run_id}.lock"

    @contextmanager
    def own(self, record: RunRecord) -> Iterator[None]:
        """Hold the run for this process, or raise InputError naming the process that holds it.
        The kernel drops a flock when its process dies, so a killed run never stays locked."""
        lock = RunLock(self.lock_path_for(record.run_id))
        lock.acquire(record.short_id)
        try:
            yield
        finally:
            lock.release()

    @contextmanager
    def own_latest(self, record: RunRecord | None) -> Iterator[None]:
        """`own` a run's record, brought up to date from disk once held (no record: nothing to
        hold). What cleanup does before touching a run's upload."""
        if record is None:
            yield
            return
        with self.own(record):
            self.reload(record)
            yield

    def reload(self, record: RunRecord) -> None:
        """Bring `record` up to what is on disk (another process may have moved it on)."""
        try:
            fresh = RunRecord.from_json(json.loads(self.path_for(record.run_id).read_text()))
        except FileNotFoundError:
            return  # a fresh run, not saved yet
        except (ValueError, TypeError) as exc:
            raise InputError(
                f"run record is damaged: {exc}", source=str(self.path_for(record.run_id))
            ) from None
        for f in fields(RunRecord):
            setattr(record, f.name, getattr(fresh, f.name))

    def save(self, record: RunRecord) -> None:
        with self._lock:
            record.updated_at = now()
            atomic_write(self.path_for(record.run_id), json.dumps(record.to_json(), indent=2))

    def update(self, record: RunRecord, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(record, key, value)
        self.save(record)

    def load(self, ref: str) -> RunRecord:
        """A run by its id or an unambiguous prefix of it (the first 8 characters usually)."""
        if RUN_ID_RE.fullmatch(ref):
            path = self.path_for(ref)
        else:
            if not re.fullmatch(r"[0-9a-f-]{4,36}", ref):
                raise InputError(
                    f"{ref!r} is not a run id (see `ec2-import-wizard runs`)", field="RUN_ID"
                )
            matches = sorted(self.root.glob(f"{ref}*.json")) if self.root.is_dir() else []
            if len(matches) > 1:
                raise InputError(f"{ref!r} matches several runs: give more of it", field="RUN_ID")
            path = matches[0] if matches else self.path_for(ref)
        try:
            return RunRecord.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            raise InputError(
                f"no run {ref!r} in {self.root} (see `ec2-import-wizard runs`)", field="RUN_ID"
            ) from None
        except (ValueError, TypeError) as exc:
            raise InputError(f"run record is damaged: {exc}", source=str(path)) from None

    def find_by_task(self, task_id: str) -> RunRecord | None:
        return next((r for r in self.list() if r.task_id == task_id), None)

    def list(self) -> list[RunRecord]:
        """Every readable record, newest first (damaged ones are skipped, not fatal)."""
        if not self.root.is_dir():
            return []
        records = []
        for path in self.root.glob("*.json"):
            try:
                records.append(RunRecord.from_json(json.loads(path.read_text())))
            except (OSError, ValueError, TypeError):
                continue
        return sorted(records, key=lambda r: (r.updated_at, r.run_id), reverse=True)


@dataclass(frozen=True)
class Holder:
    """Who holds a run's lock, as that process wrote it into the lock file."""

    pid: int
    host: str
    since: str

    def describe(self) -> str:
        return f"process {self.pid} on {self.host} since {self.since}"


class RunLock:
    """An exclusive, non-blocking flock on one run's lock file, with its holder written in."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self, label: str) -> None:
        paths.make_private_dir(self.path.parent)  # as the records
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            who = holder.describe() if holder else "another process"
            raise InputError(
                f"run {label} is in use by {who}: wait for it to end, or stop it first",
                field="RUN_ID",
            ) from None
        except BaseException:
            os.close(fd)
            raise
        # One write at offset 0, then the length: a reader sees the whole line or retries.
        data = json.dumps(
            {"pid": os.getpid(), "host": socket.gethostname(), "since": now()}
        ).encode()
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
        self._fd = fd

    def release(self) -> None:
        # The file stays: unlinking it would let a third process lock a fresh inode while a
        # second still waits on the old one.
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing drops the flock


def _read_holder(fd: int) -> Holder | None:
    """The holder written into a locked file; None if it cannot be read (it is being written,
    or a version without it holds the lock)."""
    for _ in range(20):
        try:
            data = json.loads(os.pread(fd, 4096, 0))
            return Holder(pid=int(data["pid"]), host=str(data["host"]), since=str(data["since"]))
        except (OSError, ValueError, KeyError, TypeError):
            time.sleep(0.01)  # the holder is between its lock and its write
    return None


def list_runs(sandbox: bool | None = None) -> list[RunRecord]:
    """Newest first; with `sandbox`, only the runs made with (True) or without (False) it: a
    sandbox run's S3 data and task died with its process, so an account's views leave it out."""
    records = Journal().list()
    return records if sandbox is None else [r for r in records if r.sandbox == sandbox]
