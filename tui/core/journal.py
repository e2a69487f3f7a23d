"""Run records: one JSON file per import run under the platformdirs state dir, for `resume`,
`runs`, `cleanup` and the TUI's recent runs.

A record holds the profile snapshot, S3 keys (never presigned URLs: they are bearer secrets),
parts done, the task id and state, and the image's identity (tui/core/identity.py). Writes
are atomic with mode 0600. A record is checked field by field when read: a damaged one is
named (`DamagedRecord`) and never used, and `scan` lists the good ones beside it.

One process at a time owns a run: `Journal.own` takes an exclusive `flock` on `<run_id>.lock`
beside the record, so two processes never upload, submit or clean up the same run at once.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tui.core import paths, s3keys
from tui.core.errors import InputError, WizardError
from tui.core.facts import DEFAULT_PART_SIZE, REGION_RE, bucket_problem
from tui.core.fsutil import atomic_write
from tui.core.identity import ImageIdentity
from tui.core.profiles import AfterStep, Profile, validation_error

_MD5_HEX = re.compile(r"[0-9a-f]{32}")
RUN_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class RunState(StrEnum):
    """Where a run is, in the order a run passes through the states."""

    PLANNED = "planned"
    UPLOADING = "uploading"
    UPLOADED = "uploaded"
    SUBMITTING = "submitting"  # ImportInstance sent, answer not yet recorded
    SUBMITTED = "submitted"
    FINISHING = "finishing"  # the task completed; the profile's [after] steps are not all done
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # stopped by a signal or an error: `resume` goes on


FINAL = frozenset({RunState.COMPLETED, RunState.CANCELLED, RunState.FAILED})


def new_run_id() -> str:
    return str(uuid.uuid4())


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# A record file holds at most this much: 16,384 parts (a 16 TiB image in 1 GiB parts) take
# about 900 KB with their checksums. Anything far larger is not one of ours, and is not read
# into memory.
MAX_RECORD_BYTES = 64 * 1024 * 1024
MAX_PART_SIZE = 5 << 30  # each part is a whole S3 object
PROBE_BYTES = 64 * 1024  # what check_writable writes: a record of about 5,000 parts


class RunRecord(BaseModel):
    """One run as its JSON file holds it. Its fields are checked when it is made and when it
    is read (`parse` also checks the profile snapshot and the file name), never when a field
    is set: the pipeline moves records on with plain assignments, and saves must stay cheap."""

    # Strict types (no "12" for 12), unknown keys ignored (a newer version may add some).
    model_config = ConfigDict(strict=True, extra="ignore", validate_assignment=False)

    run_id: str
    profile_name: str
    profile: dict[str, Any]  # the profile as it was when the run started; checked by `parse`
    profile_origin: str | None
    region: str
    aws_profile: str | None = None
    endpoint_url: str | None = None
    sandbox: bool = False
    image_path: str | None = None
    image_bytes: Annotated[int, Field(ge=0)] = 0
    image_format: str = ""
    image_identity: ImageIdentity | None = None  # absent in records of older versions
    # The stream-optimized VMDK made from image_path and uploaded in its place (the cache
    # folder's file; tui/core/convert.py); image_bytes and image_format are that file's.
    converted_path: str | None = None
    volume_size: Annotated[int, Field(ge=0)] = 0
    bucket: str | None = None
    manifest_key: str | None = None
    part_size: Annotated[int, Field(ge=1, le=MAX_PART_SIZE)] = DEFAULT_PART_SIZE
    parts_total: Annotated[int, Field(ge=0)] = 0
    parts_done: list[int] = Field(default_factory=list)
    # The MD5 (hex) of each part in parts_done, in its order, so a resume need not read a
    # confirmed part to hash it; empty in records of older versions (their parts are re-read).
    parts_md5: list[str] = Field(default_factory=list)
    task_id: str | None = None
    instance_id: str | None = None
    volume_id: str | None = None
    # The [after] steps done ("tags", "start", "cleanup"), in the order they were done: a
    # resume does only the others (tui/core/after.py).
    after_done: list[str] = Field(default_factory=list)
    # Not strict: a state is its value in JSON and in code alike ("completed").
    state: Annotated[RunState, Field(strict=False)] = RunState.PLANNED
    interrupted_in: Annotated[RunState | None, Field(strict=False)] = None
    message: str = ""
    created_at: str = Field(default_factory=now)
    updated_at: str = Field(default_factory=now)

    @field_validator("run_id")
    @classmethod
    def _run_id(cls, v: str) -> str:
        if not RUN_ID_RE.fullmatch(v):
            raise ValueError(f"{v[:60]!r} is not a run id (a UUID, as `runs` lists them)")
        return v

    @field_validator("after_done")
    @classmethod
    def _after_done(cls, v: list[str]) -> list[str]:
        known = [s.value for s in AfterStep]
        bad = next((s for s in v if s not in known), None)
        if bad is not None:
            raise ValueError(f"{bad[:40]!r} is not an [after] step ({', '.join(known)})")
        if len(set(v)) != len(v):
            raise ValueError("names a step twice")
        return v

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        if not REGION_RE.fullmatch(v):
            raise ValueError(f"{v[:60]!r} is not an AWS region name (e.g. us-east-1)")
        return v

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, v: str | None) -> str | None:
        problem = bucket_problem(v) if v is not None else None
        if problem:
            raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> RunRecord:
        if self.image_path is not None:
            if self.bucket is None:
                raise ValueError("bucket: is null, but the run uploads image_path to a bucket")
            if self.parts_total and self.parts_total != -(-self.image_bytes // self.part_size):
                raise ValueError(
                    f"parts_total: {self.parts_total} parts do not cover image_bytes "
                    f"{self.image_bytes} in parts of part_size {self.part_size}"
                )
        done = self.parts_done
        if done and (min(done) < 0 or max(done) >= self.parts_total):  # C speed at 16k parts
            bad = next(i for i in done if not 0 <= i < self.parts_total)
            raise ValueError(
                f"parts_done: part {bad} is out of range (the run has {self.parts_total} parts)"
            )
        md5s = self.parts_md5
        if md5s:
            if len(md5s) != len(done):
                raise ValueError(
                    f"parts_md5: {len(md5s)} checksums for the {len(done)} parts of parts_done"
                )
            bad_md5 = next((m for m in md5s if not _MD5_HEX.fullmatch(m)), None)
            if bad_md5 is not None:
                raise ValueError(f"parts_md5: {bad_md5[:40]!r} is not an MD5 in hex")
        return self

    def confirmed_parts(self) -> dict[int, str]:
        """The parts confirmed in S3 with their MD5 (index: hex); none from an older record."""
        if len(self.parts_md5) != len(self.parts_done):
            return {}
        return dict(zip(self.parts_done, self.parts_md5, strict=True))

    def set_confirmed_parts(self, parts: dict[int, str]) -> None:
        """Write `parts` (index: MD5 hex) into parts_done and parts_md5, in index order."""
        order = sorted(parts)
        self.parts_done = order
        self.parts_md5 = [parts[i] for i in order]

    @property
    def final(self) -> bool:
        return self.state in FINAL

    @property
    def short_id(self) -> str:
        return self.run_id[:8]

    @property
    def key_prefix(self) -> str:
        prefix = self.profile.get("source", {}).get("key_prefix", "")
        return prefix if isinstance(prefix, str) else ""

    def expected_key(self) -> str:
        """The manifest key this run's upload has (or will have)."""
        assert self.image_path is not None
        return s3keys.manifest_key(self.key_prefix, self.run_id, self.image_path)

    def to_json(self) -> dict[str, Any]:
        """The record as `runs --json` shows it: without the parts' checksums (16,384 of them
        at most), which only a resume reads; the file (`dumps`) keeps them."""
        return self.model_dump(mode="json", exclude={"parts_md5"})

    def dumps(self) -> str:
        # pydantic's serializer: json.dumps with indent runs in pure Python, 30 ms at 16k parts
        return self.model_dump_json(indent=2)

    @classmethod
    def parse(cls, text: str | bytes, path: Path) -> RunRecord:
        """The record in a file's text, checked field by field and against its file name.
        Raises DamagedRecord naming the first field that is wrong."""
        try:
            record = cls.model_validate_json(text)
        except ValidationError as exc:
            raise DamagedRecord.of(path, exc, cls) from None
        if path.name != f"{record.run_id}.json":
            raise DamagedRecord(path, "run_id", f"{record.run_id!r} does not match the file name")
        try:
            Profile.model_validate(record.profile)
        except ValidationError as exc:
            raise DamagedRecord.of(path, exc, Profile, under="profile") from None
        key = record.manifest_key
        if record.image_path is not None and key is not None and key != record.expected_key():
            # cleanup deletes under this key: only ever the run's own folder (known once the
            # profile's key prefix is)
            raise DamagedRecord(
                path, "manifest_key", f"{key[:120]!r} is not this run's ({record.expected_key()!r})"
            )
        return record


class DamagedRecord(InputError):
    """A run record that is not one we can use: its file, the field and what is wrong."""

    def __init__(self, path: Path, field: str, problem: str):
        super().__init__(problem, source=str(path), field=field or None)
        self.path = path
        self.problem = f"{field}: {problem}" if field else problem

    @property
    def located(self) -> str:
        return (
            f"run record {self.path} is damaged: {self.problem} "
            "(correct it by hand, or delete the file to forget the run)"
        )

    @classmethod
    def of(
        cls, path: Path, exc: ValidationError, model: type[BaseModel], under: str = ""
    ) -> DamagedRecord:
        err = validation_error(exc, model, str(path))
        field = ".".join(p for p in (under, err.field or "") if p)
        message = err.message
        if ": " in message and message.split(": ", 1)[0] in model.model_fields:
            # a model-level check names its own field ("bucket: is null, ...")
            own, message = message.split(": ", 1)
            field = ".".join(p for p in (under, own) if p)
        if not field and message.startswith("Invalid JSON: "):
            message = f"the file is not valid JSON ({message.removeprefix('Invalid JSON: ')})"
        elif not field and "object" in message:
            message = "the file is JSON but not an object"
        return cls(path, field, message)


class RecordNotSaved(WizardError):
    """A record could not be written (the disk filled up, the folder went read-only)."""


@dataclass(frozen=True)
class Scan:
    """What the runs folder holds: the records that can be used, and the files that cannot."""

    records: list[RunRecord]
    damaged: list[DamagedRecord]


class Journal:
    """Run records on disk. Thread-safe: the uploader's workers report parts concurrently."""

    def __init__(self, root: Path | None = None):
        self.root = root if root is not None else paths.runs_dir()
        self._lock = threading.Lock()

    def _checked(self, run_id: str) -> str:
        # Every path below is built from an id that passed this: "../../x" never leaves runs/.
        if not RUN_ID_RE.fullmatch(run_id):
            raise InputError(
                f"{run_id[:60]!r} is not a run id (see `ec2-import-wizard runs`)", field="RUN_ID"
            )
        return run_id

    def path_for(self, run_id: str) -> Path:
        return self.root / f"{self._checked(run_id)}.json"

    def lock_path_for(self, run_id: str) -> Path:
        return self.root / f"{self._checked(run_id)}.lock"

    def state_error(self, exc: OSError, kind: type[WizardError] = InputError) -> WizardError:
        """An OSError of the runs folder as the line a user reads: which folder, what is
        wrong with it, and what to do. An InputError (exit 2) unless told otherwise."""
        move = f"or set {paths.HOME_ENV} to a folder that is"
        code = exc.errno
        if code == errno.EEXIST:  # mkdir's answer for a loop, a dangling link or a file
            try:
                os.stat(self.root)
                code = errno.ENOTDIR
            except OSError as why:
                code = why.errno
        if code == errno.ELOOP:
            problem = f"is a loop of symbolic links: remove it or point it at a folder, {move}"
        elif code in (errno.ENOSPC, errno.EDQUOT):
            problem = f"is on a full disk: free some space there, {move} on another disk"
        elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
            problem = f"cannot be written ({os.strerror(code)}): make it writable, {move} writable"
        elif code == errno.ENOTDIR:
            problem = f"is not a folder (or a part of its path is a file): move that file, {move}"
        else:
            problem = f"cannot be used ({exc.strerror or exc}): {move} usable"
        return kind(f"the run records' folder {problem}", source=str(self.root))

    def check_writable(self) -> None:
        """Raise InputError (source: the runs folder, with the fix) unless a record can be
        written there now: call it before the first request of anything that records. Cheap:
        one small temp file made, written and removed (no fsync)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".writable.", suffix=".tmp")
            try:
                # a full disk still lets an empty file be made: write what a record may need
                os.write(fd, bytes(PROBE_BYTES))
            finally:
                os.close(fd)
                os.unlink(tmp)
        except OSError as exc:
            raise self.state_error(exc) from None

    @contextmanager
    def own(self, record: RunRecord) -> Iterator[None]:
        """Hold the run for this process, or raise InputError naming the process that holds it.
        The kernel drops a flock when its process dies, so a killed run never stays locked."""
        lock = RunLock(self.lock_path_for(record.run_id))
        try:
            lock.acquire(record.short_id)
        except OSError as exc:
            raise self.state_error(exc) from None
        try:
            yield
        finally:
            lock.release()

    def forget_unrecorded(self, record: RunRecord) -> None:
        """Remove the lock file of a run refused before its record was first written (bad
        input, a failed preflight), while this process holds it: no record names its id, so no
        other process can be waiting on it, and nothing is left behind."""
        if not self.path_for(record.run_id).exists():
            with suppress(FileNotFoundError):
                self.lock_path_for(record.run_id).unlink()

    @contextmanager
    def own_latest(self, record: RunRecord | None) -> Iterator[None]:
        """`own` a run's record, brought up to date from disk once held (no record: nothing to
        hold), and checked writable. What cleanup does before touching a run's upload: it must
        be able to write down what it deleted before it deletes anything."""
        if record is None:
            yield
            return
        with self.own(record):
            self.reload(record)
            self.check_writable()
            yield

    def _read(self, path: Path) -> RunRecord:
        """The record in `path`; DamagedRecord if it cannot be used, FileNotFoundError as is."""
        try:
            with path.open("rb") as fh:
                text = fh.read(MAX_RECORD_BYTES + 1)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise DamagedRecord(path, "", f"cannot be read ({exc.strerror or exc})") from None
        if len(text) > MAX_RECORD_BYTES:
            raise DamagedRecord(path, "", f"is over {MAX_RECORD_BYTES >> 20} MiB")
        return RunRecord.parse(text, path)

    def reload(self, record: RunRecord) -> None:
        """Bring `record` up to what is on disk (another process may have moved it on)."""
        try:
            fresh = self._read(self.path_for(record.run_id))
        except FileNotFoundError:
            return  # a fresh run, not saved yet
        for name in RunRecord.model_fields:
            setattr(record, name, getattr(fresh, name))

    def save(self, record: RunRecord) -> None:
        path = self.path_for(record.run_id)
        with self._lock:
            record.updated_at = now()
            try:
                atomic_write(path, record.dumps())
            except OSError as exc:
                # Not exit 2: a run saves after it has sent (check_writable comes first).
                raise self.state_error(exc, RecordNotSaved) from None

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
                    f"{ref[:60]!r} is not a run id (see `ec2-import-wizard runs`)", field="RUN_ID"
                )
            matches = [p for p in self._files() if p.name.startswith(ref)]
            if len(matches) > 1:
                raise InputError(f"{ref!r} matches several runs: give more of it", field="RUN_ID")
            if not matches:
                raise InputError(
                    f"no run {ref!r} in {self.root} (see `ec2-import-wizard runs`)", field="RUN_ID"
                )
            path = matches[0]
        try:
            return self._read(path)
        except FileNotFoundError:
            raise InputError(
                f"no run {ref!r} in {self.root} (see `ec2-import-wizard runs`)", field="RUN_ID"
            ) from None

    def find_by_task(self, task_id: str) -> RunRecord | None:
        return next((r for r in self.list() if r.task_id == task_id), None)

    def _files(self) -> list[Path]:
        """The record files (`*.json`), sorted; none if the folder is not there yet. A folder
        that cannot be read (a symlink loop, no permission) is an InputError, not "no runs"."""
        try:
            with os.scandir(self.root) as entries:
                names = sorted(e.name for e in entries if e.name.endswith(".json"))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise self.state_error(exc) from None
        return [self.root / name for name in names]

    def scan(self) -> Scan:
        """Every record, newest first, and every damaged file (by name, in name order): a bad
        record never hides the good ones."""
        records, damaged = [], []
        for path in self._files():
            try:
                records.append(self._read(path))
            except FileNotFoundError:
                continue  # removed since the folder was listed
            except DamagedRecord as exc:
                damaged.append(exc)
        records.sort(key=lambda r: (r.updated_at, r.run_id), reverse=True)
        return Scan(records, damaged)

    def list(self) -> list[RunRecord]:
        """Every good record, newest first (see `scan` for the damaged ones)."""
        return self.scan().records


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


def scan_runs(sandbox: bool | None = None) -> Scan:
    """Newest first; with `sandbox`, only the runs made with (True) or without (False) it: a
    sandbox run's S3 data and task died with its process, so an account's views leave it out.
    The damaged files are all there, whichever kind of run they were."""
    scan = Journal().scan()
    if sandbox is None:
        return scan
    return Scan([r for r in scan.records if r.sandbox == sandbox], scan.damaged)


def list_runs(sandbox: bool | None = None) -> list[RunRecord]:
    return scan_runs(sandbox).records
