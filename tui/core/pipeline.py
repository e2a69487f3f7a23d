"""One import run as a sequence of typed events: probe, upload the parts, write the manifest,
verify every part through its presigned HEAD URL (as EC2 will), ImportInstance, watch.

The `run` and `resume` commands and the TUI drive this same class. Nothing is created in EC2
until the image is wholly in S3, and a run never makes two tasks: when ImportInstance fails in a
way that may have reached AWS, we look for a task carrying this run's manifest before retrying.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui.core import aws, journal, retry
from tui.core.errors import AwsError, InputError, Interrupted, coded
from tui.core.events import (
    ConvertedEvent,
    ConvertEvent,
    DoneEvent,
    ErrorEvent,
    Event,
    Outcome,
    ProbeEvent,
    SubmittedEvent,
    TaskEvent,
    UploadedEvent,
    UploadEvent,
    WarningEvent,
)
from tui.core.facts import ACTIVE_TASK_LIMIT, DEFAULT_PART_SIZE
from tui.core.identity import ImageIdentity, identify
from tui.core.journal import Journal, RecordNotSaved, RunRecord, RunState
from tui.core.plan import ImportPlan, plan_import
from tui.core.profiles import Profile
from tui.core.redact import redact_url
from tui.core.retry import Retry, RetryPolicy
from tui.core.tasks import TaskState, TaskView

if TYPE_CHECKING:
    from tui.core.manifest import Manifest


def _queue_full(exc: BaseException) -> bool:
    """EC2's answer when the account already has its 5 active conversion tasks."""
    return aws.error_code(exc) == "ResourceLimitExceeded"


# A resume submits the manifest already in S3 only while its URLs live this long: EC2 reads
# the parts through them for as long as the conversion takes.
MANIFEST_MIN_LIFE_S = 24 * 3600.0
MAX_BACKOFF = 300.0  # seconds: the longest wait between two tries of anything here
MAX_SUBMIT_FAILURES = 10
# ImportInstance and the look for the task it may have made: throttling, 5xx, network errors.
SUBMIT_POLICY = RetryPolicy(
    retryable=retry.is_transient,
    attempts=MAX_SUBMIT_FAILURES,
    base_delay=1.0,
    max_delay=MAX_BACKOFF,
    deadline=15 * 60.0,
)
# Waits for a free conversion-task slot (base_delay becomes the poll interval): about a day.
QUEUE_POLICY = RetryPolicy(
    retryable=_queue_full, attempts=500, base_delay=1.0, max_delay=MAX_BACKOFF
)
# The watch's DescribeConversionTasks, tried once each by botocore (aws.ONCE): a watch rides
# out network trouble for as long as a task can live, a poll at first, then at most every
# MAX_BACKOFF; every retry is told as a warning, so a long outage is seen, not silent.
WATCH_POLICY = RetryPolicy(
    retryable=retry.is_transient,
    attempts=1_000_000,
    base_delay=1.0,
    max_delay=MAX_BACKOFF,
    deadline=24 * 3600.0,
)


class TaskSlots:
    """At most 5 conversion tasks active at once: runs queue here before ImportInstance."""

    def __init__(self, limit: int = ACTIVE_TASK_LIMIT):
        self._sem = threading.BoundedSemaphore(limit)

    def acquire(self, cancel: threading.Event) -> None:
        while not self._sem.acquire(timeout=0.2):
            if cancel.is_set():
                raise Interrupted("interrupted while queued for a conversion-task slot")

    def release(self) -> None:
        self._sem.release()


class PartLog:
    """The parts a run has confirmed in S3 (index: MD5), kept in a dict as they come (O(1) a
    part) and written into the record on a save: at most once a second, and on `flush`. The
    listing on resume is what counts; the record only needs to be close."""

    SAVE_INTERVAL_S = 1.0

    def __init__(self, journal_: Journal, record: RunRecord, parts: dict[int, str]):
        self.journal = journal_
        self.record = record
        self.parts = parts
        self._saved_at = time.monotonic()

    def done(self, index: int, md5: str) -> None:
        self.parts[index] = md5
        if time.monotonic() - self._saved_at > self.SAVE_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        self._saved_at = time.monotonic()
        self.record.set_confirmed_parts(self.parts)
        self.journal.save(self.record)


class ImportRun:
    """One import, start to finish. `run()` blocks: call it from a thread (worker) of your own."""

    warnings: tuple[str, ...] = ()  # emitted when the run starts (`resume` sets them)
    # False when `resume` found the image touched: the journal's part checksums may be stale.
    trust_journal: bool = True

    def __init__(
        self,
        plan: ImportPlan,
        target: aws.Target,
        *,
        on_event: Callable[[Event], None],
        poll: float = 15.0,
        wait: bool = True,
        dry_run: bool = False,
        upload_only: bool = False,
        cancel: threading.Event | None = None,
        journal_: Journal | None = None,
        record: RunRecord | None = None,
        slots: TaskSlots | None = None,
        part_size: int | None = None,
        workers: int | None = None,
        pending_warning_after: float = 900.0,
        preflight: bool = False,
        skip_checks: frozenset[str] = frozenset(),
    ):
        self.plan = plan
        self.target = target
        self.on_event = on_event
        self.poll = poll
        self.wait = wait
        self.dry_run = dry_run
        self.upload_only = upload_only
        self.cancel = cancel or threading.Event()
        self.journal = journal_ or Journal()
        self.slots = slots
        self.part_size = part_size
        self.workers = workers
        self.pending_warning_after = pending_warning_after
        # The preflight (tui/core/preflight.py) before anything is sent: run, resume, wizard.
        self.preflight = preflight
        self.skip_checks = skip_checks
        self.record = record or self._new_record()
        self.run_id = self.record.run_id
        self.manifest_url: str | None = plan.profile.source.manifest_url
        self.uploaded_at: float | None = None
        self._holding_slot = False
        # A recorded run may have sent ImportInstance before it stopped: look before sending.
        self.resumed = record is not None
        self._recorded = record is not None  # a fresh run writes its record once checked

    # -----------------------------------------------------------------------------------------
    # Construction

    @classmethod
    def from_profile(
        cls, profile: Profile, origin: Path | None, target: aws.Target, **kw: Any
    ) -> ImportRun:
        return cls(plan_import(profile, origin, kw.get("part_size")), target, **kw)

    @classmethod
    def resume(
        cls, record: RunRecord, target: aws.Target, *, sandbox_alive: bool = False, **kw: Any
    ) -> ImportRun:
        """Continue a recorded run: re-attach to its task, or upload what is missing. `target`
        is where the record's requests go (`Session.target_of`, which checks the endpoint).
        `sandbox_alive`: the run used the sandbox that `target` is (the wizard's own, still
        running), so its state is still there."""
        if record.final:
            raise InputError(f"run {record.short_id} already ended {record.state}", field="RUN_ID")
        if record.sandbox and not (sandbox_alive and target.sandbox):
            raise InputError(
                "this run used --sandbox, whose state died with its process: start it again",
                field="RUN_ID",
            )
        profile = Profile.model_validate(record.profile)
        origin = Path(record.profile_origin) if record.profile_origin else None
        if profile.source.manifest_url is not None and record.task_id is None:
            # The snapshot's presigned URL was redacted: take it from the profile file again.
            if origin is None or not origin.exists():
                raise InputError("the profile file with the manifest URL is gone", field="RUN_ID")
            from tui.core.profiles import load_profile

            profile = load_profile(origin)
        if record.task_id is None and record.image_path:
            profile = profile.model_copy(
                update={"source": profile.source.model_copy(update={"path": record.image_path})}
            )
        plan = plan_import(profile, origin)
        (kw.get("journal_") or journal.Journal()).check_writable()  # before any request
        warnings = []
        if record.task_id is None and record.image_path:
            warnings = _same_image(record, plan)
        run = cls(plan, target, record=record, **kw)
        run.warnings = tuple(warnings)
        run.trust_journal = not warnings
        return run

    def _new_record(self) -> RunRecord:
        profile = self.plan.profile
        snapshot = profile.model_dump(mode="json", exclude_none=True)
        if profile.source.manifest_url:  # never a presigned signature on disk
            snapshot["source"]["manifest_url"] = redact_url(profile.source.manifest_url)
        image = self.plan.image_path
        return RunRecord(
            run_id=journal.new_run_id(),
            profile_name=profile.name,
            profile=snapshot,
            profile_origin=str(self.plan.origin) if self.plan.origin else None,
            region=self.target.region,
            aws_profile=self.target.aws_profile,
            endpoint_url=None if self.target.sandbox else self.target.endpoint_url,
            sandbox=self.target.sandbox,
            image_path=str(self.plan.image_path) if self.plan.image_path else None,
            image_bytes=self.plan.image_bytes,
            image_format=self.plan.image_format,
            # what resume checks the file against (None: an image uploaded beforehand)
            image_identity=_identify(image) if image is not None else None,
            volume_size=self.plan.volume_size,
            bucket=profile.source.bucket,
            part_size=self.part_size or DEFAULT_PART_SIZE,
        )

    def _emit_warnings(self) -> None:
        """What `resume` found worth saying before it goes on (e.g. a modified image)."""
        for message in self.warnings:
            self.emit(WarningEvent(self.run_id, message=message))

    # -----------------------------------------------------------------------------------------
    # The run

    def emit(self, event: Event) -> None:
        self.on_event(event)

    def run(self) -> DoneEvent | ErrorEvent:
        """Run to the end and return the last event emitted. Never raises: whatever stops the
        run (an AWS error, bad input, an interrupt, a bug) becomes one ErrorEvent, and the
        record says where it stopped, so `resume` can go on from there."""
        with ExitStack() as owner:
            try:
                if not self.dry_run:  # a dry run writes no record
                    owner.enter_context(self.journal.own(self.record))
                    self.journal.check_writable()  # before any request: a full disk is exit 2
                if self.resumed:
                    self._take_over()
            except Exception as exc:
                # Another process owns the run, or has ended it: say so, leave its record be.
                error = ErrorEvent.from_exception(self.run_id, exc)
                self.emit(error)
                return error
            try:
                return self._run()
            except Exception as exc:
                return self._failed(exc)
            finally:
                self._release_slot()
                if not self.dry_run and not self._recorded:
                    self.journal.forget_unrecorded(self.record)

    def _take_over(self) -> None:
        """The record as the last owner left it: it may have uploaded, submitted or ended the
        run while this process waited to start."""
        self.journal.reload(self.record)
        if self.record.final:
            raise InputError(
                f"run {self.record.short_id} already ended {self.record.state}", field="RUN_ID"
            )

    def _run(self) -> DoneEvent:
        self._emit_probe()
        self._emit_warnings()
        if self.preflight and self._nothing_sent():
            self._preflight()
        if self.dry_run:
            return self._dry_run()
        uploads = self.record.task_id is None and self.plan.image_path is not None
        converts = uploads and self.plan.action == "convert"
        if uploads and not self._stopped_after_upload():
            # Before the record is first written: a run refused here leaves nothing behind. (A
            # run whose upload finished had its bucket checked then; the listing its resume
            # starts with shows the bucket is still there.)
            self._check_bucket()
        if converts:
            self._check_convert()
        self.journal.save(self.record)
        self._recorded = True
        if self.record.task_id is None:
            if converts:
                self._convert()
                if self.preflight and not self.record.parts_done and self._guest_unread():
                    self._preflight(guest_only=True)  # what qemu-img made, before a byte of it
            if uploads:
                self._upload()
            if self.upload_only:
                return self._finish(
                    DoneEvent(
                        self.run_id,
                        state=Outcome.UPLOADED,
                        message=f"submit it with `ec2-import-wizard resume {self.run_id}`",
                        cleanup=self._cleanup_hint(),
                    )
                )
            self._submit()
        if self._stopped_in() == RunState.FINISHING:
            return self._completed()  # the task completed; [after] steps are left
        if not self.wait:
            return self._finish(
                DoneEvent(
                    self.run_id,
                    state=Outcome.SUBMITTED,
                    conversion_task_id=self.record.task_id,
                    instance_id=self.record.instance_id,
                    message="submitted; watch it with `tasks --watch`",
                    cleanup=self._cleanup_hint(),
                )
            )
        return self._watch()

    def _guest_unread(self) -> bool:
        """The source's guest could not be read before its conversion (a VHDX, a QCOW2, ...)."""
        from tui.core.guest import source_view

        return self.plan.probe is not None and source_view(self.plan.probe) is None

    def _nothing_sent(self) -> bool:
        """No task, no part and no manifest yet: what a resume checks before going on."""
        record = self.record
        return record.task_id is None and record.manifest_key is None and not record.parts_done

    def _preflight(self, *, guest_only: bool = False) -> None:
        """Every check side by side; warnings are told, a fail stops the run before its record
        is written (a resume's record stays as it was). A dry run writes no marker.
        `guest_only`: the checks of what is inside a converted image, before its upload."""
        from tui.core.preflight import run_checks, run_guest_checks

        if guest_only:
            report = run_guest_checks(
                self.plan, self.target, run_id=self.run_id, skip=self.skip_checks
            )
        else:
            report = run_checks(
                self.plan,
                self.target,
                run_id=self.run_id,
                skip=self.skip_checks,
                write_marker=not self.dry_run,
            )
        for check in report.warnings:
            fix = f"; fix: {check.fix}" if check.fix else ""
            where = f"{check.field}: " if check.field else ""
            self.emit(
                WarningEvent(self.run_id, message=f"check {check.id}: {where}{check.message}{fix}")
            )
        report.raise_for_failures()

    @property
    def recorded(self) -> bool:
        """Has this run a record on disk (something `resume` can go on from)?"""
        return self._recorded

    def abandon(self) -> ErrorEvent | None:
        """Record the run as interrupted now, from another thread, when its own is blocked in
        a request and the process must exit (a second Ctrl-C, or the first one's grace
        ended). What was in flight is checked again by `resume`. None if the run had ended."""
        if self.dry_run or not self._recorded or self.record.final:
            return None
        if self.record.state == RunState.INTERRUPTED:
            return None  # its own thread has just recorded how it stopped
        return self._failed(Interrupted("interrupted"))

    def _failed(self, exc: Exception) -> ErrorEvent:
        error = ErrorEvent.from_exception(self.run_id, exc)
        try:
            self._record_failure(exc, error)
        except RecordNotSaved as unsaved:
            # The disk filled up (or went read-only) under the run: say both, the first cause
            # first; the record on disk is the last one saved, which `resume` can go on from.
            error = dataclasses.replace(error, message=f"{error.message}; and {unsaved}")
        self.emit(error)
        return error

    def _record_failure(self, exc: Exception, error: ErrorEvent) -> None:
        if self.dry_run or not self._recorded:
            return  # refused before its record was written: nothing to resume or to mark
        summary = coded(error.code, error.message)
        if self.record.final:
            self.journal.update(self.record, message=summary)
            return
        # Stopped, not finished: `resume` continues from the state recorded here.
        if isinstance(exc, Interrupted):
            summary = f"interrupted: resume with `ec2-import-wizard resume {self.run_id}`"
        stopped_in = self.record.state
        if stopped_in == RunState.INTERRUPTED:  # a resume that stopped before moving on
            stopped_in = self.record.interrupted_in or RunState.PLANNED
        self.journal.update(
            self.record, interrupted_in=stopped_in, state=RunState.INTERRUPTED, message=summary
        )

    def _warn_retry(self, action: str, retry_: Retry) -> None:
        """A retry of a long-lived step, told: minutes of network trouble are seen."""
        error = aws.map_error(retry_.error)
        code = f"{error.code}: " if isinstance(error, AwsError) and error.code else ""
        self.emit(
            WarningEvent(
                self.run_id,
                message=f"{action} failed ({code}{error.message}); trying again in "
                f"{retry_.delay:.0f} s (try {retry_.attempt + 1})",
            )
        )

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Interrupted("interrupted")

    def _sleep(self, seconds: float) -> None:
        if self.cancel.wait(seconds):
            raise Interrupted("interrupted")

    def _emit_probe(self) -> None:
        p = self.plan.probe
        self.emit(
            ProbeEvent(
                self.run_id,
                path=str(self.plan.image_path or self.plan.profile.source.manifest_url or ""),
                format=self.plan.image_format,
                file_bytes=self.plan.image_bytes,
                virtual_bytes=p.virtual_bytes if p else 0,
                volume_size_gib=self.plan.volume_size,
                warnings=tuple(p.warnings) if p else (),
                plan=self.plan.action,
                plan_reason=str(p.plan["reason"]) if p and p.plan else "",
            )
        )
        if p is not None:
            for w in p.warnings:
                self.emit(WarningEvent(self.run_id, message=w))

    # -- convert ------------------------------------------------------------------------------

    def _check_convert(self) -> None:
        """qemu-img is there and the cache folder has room: refused before anything is sent."""
        from tui.core import convert

        assert self.plan.probe is not None
        convert.check_ready(self.plan.probe)

    def _convert(self) -> None:
        """Make (or reuse) the stream-optimized VMDK the upload sends instead of the source."""
        from tui.core import convert, qemu

        probe = self.plan.probe
        assert probe is not None

        def progress(p: qemu.ConvertProgress) -> None:
            self.emit(ConvertEvent(self.run_id, **dataclasses.asdict(p)))

        made = convert.convert(probe, on_progress=progress, cancel=self.cancel)
        if self.resumed and not made.reused:
            # Made again: its bytes need not match the parts the journal holds checksums of.
            self.trust_journal = False
        self.plan.upload_path = made.path
        self.plan.image_format = "VMDK"
        self.plan.image_bytes = made.bytes
        self.journal.update(
            self.record, converted_path=str(made.path), image_bytes=made.bytes, image_format="VMDK"
        )
        self.emit(
            ConvertedEvent(
                self.run_id,
                path=str(made.path),
                source_format=probe.format or "",
                bytes=made.bytes,
                source_bytes=probe.file_bytes,
                reused=made.reused,
                seconds=round(made.seconds, 3),
            )
        )

    def _byte_range(self) -> tuple[int, int] | None:
        """The OVA member's bytes, when its stream-optimized VMDK is sent from the tar."""
        probe = self.plan.probe
        if self.plan.action != "upload-from-ova" or probe is None or probe.ova is None:
            return None
        return int(probe.ova["offset"]), int(probe.ova["length"])

    def _remove_converted(self) -> None:
        from tui.core import convert

        if self.record.converted_path and convert.remove(self.record.converted_path):
            self.journal.update(self.record, converted_path=None)

    # -- upload -------------------------------------------------------------------------------

    def _check_bucket(self) -> None:
        from tui.core import upload

        bucket = self.plan.profile.source.bucket
        assert bucket is not None
        s3 = aws.client(self.target, "s3")  # aws.ORDINARY: a dead network fails in under a minute
        try:
            upload.check_bucket(s3, bucket, self.target.region, create=self.target.sandbox)
        except (InputError, AwsError):
            raise
        except Exception as exc:
            raise aws.map_error(exc) from None

    def _upload(self) -> None:
        from tui.core import upload

        src = self.plan.profile.source
        assert self.plan.image_path is not None and src.bucket is not None
        warning = upload.temporary_credentials_warning(aws.session(self.target))
        if warning:
            self.emit(WarningEvent(self.run_id, message=warning))
        # A resumed run keeps its part size: the part keys and ranges depend on it.
        part_size = self.record.part_size
        parts_total = -(-self.plan.image_bytes // part_size)
        # A touched image (its mtime moved) may hold other bytes than the journal's checksums:
        # then every part is read and checked again.
        done = self.record.confirmed_parts() if self.trust_journal else {}
        if self._uploaded_before(done, parts_total) and self._resume_at_submit(done):
            return
        self.journal.update(
            self.record, state=RunState.UPLOADING, part_size=part_size, parts_total=parts_total
        )
        known = dict(done)
        log = PartLog(self.journal, self.record, done)

        def progress(p: upload.UploadProgress) -> None:  # it has the event's own fields
            self.emit(UploadEvent(self.run_id, **dataclasses.asdict(p)))

        try:
            options = upload.UploadOptions(
                part_size=part_size,
                expiry_days=src.url_expiry_days,
                # A new run's folder (its new run id) is empty: nothing there to look for.
                check_existing=self.resumed,
            )
            if self.workers:
                options = dataclasses.replace(options, workers=self.workers)
            result = upload.upload_image(
                # One try per call: the part's own retry budget (upload.PART_POLICY) is the only.
                aws.client(self.target, "s3", aws.part_budget(part_size, options.workers)),
                self.plan.upload_path or self.plan.image_path,
                src.bucket,
                src.key_prefix,
                self.run_id,
                file_format=self.plan.image_format,
                volume_size=self.plan.volume_size,
                options=options,
                on_progress=progress,
                on_part_done=log.done,
                cancel=self.cancel,
                known_parts=known,
                key_name=str(self.plan.image_path),
                byte_range=self._byte_range(),
                part_client=lambda drain: aws.client(
                    self.target, "s3", aws.part_budget(part_size, options.workers, drain)
                ),
            )
        except (Interrupted, InputError, AwsError):
            log.flush()
            raise
        except Exception as exc:
            log.flush()
            if self.cancel.is_set():
                raise Interrupted("interrupted") from None
            raise aws.map_error(exc) from None
        self.manifest_url = result.manifest_url
        self.record.set_confirmed_parts(log.parts)
        self.journal.update(self.record, manifest_key=result.manifest_key, parts_total=result.parts)
        # upload_image has fetched the manifest and HEADed every part through the presigned
        # URLs, as EC2 will: a wrong URL or a short part fails here, not an hour into a task.
        self.uploaded_at = time.monotonic()
        self.journal.update(self.record, state=RunState.UPLOADED)
        self.emit(
            UploadedEvent(
                self.run_id,
                bucket=src.bucket,
                manifest_key=result.manifest_key,
                manifest_url=redact_url(result.manifest_url),
                expires_at=result.expires_at.isoformat(timespec="seconds"),
                parts=result.parts,
                bytes=result.bytes,
                parts_sent=result.parts_sent,
                parts_skipped=result.parts_skipped,
            )
        )

    def _stopped_after_upload(self) -> bool:
        """Did an earlier process of this run record its upload and verification finished?"""
        stopped_in = self.record.state
        if stopped_in == RunState.INTERRUPTED:
            stopped_in = self.record.interrupted_in or RunState.PLANNED
        return (
            self.resumed
            and stopped_in in (RunState.UPLOADED, RunState.SUBMITTING)
            and self.record.manifest_key is not None
        )

    def _uploaded_before(self, done: dict[int, str], parts_total: int) -> bool:
        """Did an earlier process of this run upload and verify every part and the manifest?"""
        return self._stopped_after_upload() and len(done) == parts_total == self.record.parts_total

    def _resume_at_submit(self, done: dict[int, str]) -> bool:
        """Go straight to submit if S3 still holds what the run uploaded and verified: one
        listing of the run's folder (every part with the size and MD5 the journal holds) and
        the manifest through its presigned GET URL (its parts, and URLs that live a day more).
        No part is read or checked again. False: something is missing or stale, and the
        upload goes through again (sending only what it must)."""
        from tui.core import s3keys, upload
        from tui.core.manifest import ManifestError, parse_manifest, plan_parts
        from tui.core.upload.parts import Listed, list_folder
        from tui.core.upload.presign import Presigner, UrlChecker

        src = self.plan.profile.source
        key = self.record.manifest_key
        assert self.plan.image_path is not None and src.bucket is not None and key is not None
        s3 = aws.client(self.target, "s3", aws.part_budget(self.record.part_size))
        ranges = plan_parts(self.plan.image_bytes, self.record.part_size)
        keys = [
            s3keys.part_key(src.key_prefix, self.run_id, str(self.plan.image_path), i)
            for i in range(len(ranges))
        ]
        try:
            found = list_folder(
                s3, src.bucket, s3keys.run_folder(src.key_prefix, self.run_id), self.cancel
            )
        except upload.Cancelled:
            raise Interrupted("interrupted") from None
        if any(
            found.get(k) != Listed(end - start + 1, done[i])
            for i, (k, (start, end)) in enumerate(zip(keys, ranges, strict=True))
        ):
            return False
        url = Presigner(s3, src.bucket, src.url_expiry_days * 86400)("get_object", key)
        checker = UrlChecker(1, self.cancel)
        try:
            body = checker.fetch_manifest(url)
        except upload.Cancelled:
            raise Interrupted("interrupted") from None
        finally:
            checker.close()
        try:
            manifest = parse_manifest(body) if body is not None else None
        except ManifestError:
            manifest = None
        expires = _earliest_expiry(manifest) if manifest is not None else None
        if (
            manifest is None
            or manifest.size != self.plan.image_bytes
            or [(p.key, p.start, p.end) for p in manifest.parts]
            != [(k, s, e) for k, (s, e) in zip(keys, ranges, strict=True)]
            or expires is None
            or expires < time.time() + MANIFEST_MIN_LIFE_S
        ):
            return False
        self.manifest_url = url
        self.uploaded_at = time.monotonic()
        self.journal.update(self.record, state=RunState.UPLOADED)
        self.emit(
            UploadedEvent(
                self.run_id,
                bucket=src.bucket,
                manifest_key=key,
                manifest_url=redact_url(url),
                expires_at=datetime.fromtimestamp(expires, UTC).isoformat(timespec="seconds"),
                parts=len(ranges),
                bytes=self.plan.image_bytes,
                parts_sent=0,
                parts_skipped=len(ranges),
            )
        )
        return True

    # -- submit -------------------------------------------------------------------------------

    def _import_params(self, manifest_url: str, dry_run: bool = False) -> dict[str, Any]:
        params = self.plan.request(manifest_url).to_params()
        if dry_run:
            params["DryRun"] = True
        return params

    def _submit(self) -> None:
        assert self.manifest_url is not None  # run() uploads first (a resume re-checks by HEAD)
        params = self._import_params(self.manifest_url)
        if self.slots is not None:
            self.slots.acquire(self.cancel)
            self._holding_slot = True
        # botocore must not retry ImportInstance on its own: a retry after a timeout could
        # create a second task. SUBMIT_POLICY retries the whole step instead, and after a
        # failure that may have reached AWS the next try first looks for the task it made.
        ec2 = aws.client(self.target, "ec2", aws.ONCE)
        # This process owns the run (run() holds its lock), so the look and the send below are
        # one step. A fresh run need not look: its manifest key holds its new run id.
        maybe_sent = self.resumed

        def attempt() -> tuple[str, str | None]:
            nonlocal maybe_sent
            if maybe_sent:
                try:
                    found = self._find_existing_task()
                except Exception as exc:
                    if retry.is_transient(exc):
                        raise
                    raise aws.map_error(exc) from None  # cannot look, so must not send
                if found is not None:
                    return found.task_id, found.instance_id
            self.journal.update(self.record, state=RunState.SUBMITTING)
            try:
                resp = ec2.import_instance(**params)
            except Exception as exc:
                # An AWS error code is AWS's answer: nothing was created. Without an answer
                # (a timeout, a dropped connection) the request may have been carried out.
                if aws.error_code(exc) is None and retry.is_connection_error(exc):
                    maybe_sent = True
                raise
            task = resp["ConversionTask"]
            return task["ConversionTaskId"], (task.get("ImportInstance") or {}).get("InstanceId")

        def queue_full(_: Retry) -> None:
            self.emit(
                WarningEvent(
                    self.run_id,
                    message="5 conversion tasks are active in this account: "
                    "waiting for one to finish",
                )
            )

        # A full queue is not a failure: it gets its own, patient policy around the failures'.
        queue = dataclasses.replace(QUEUE_POLICY, base_delay=min(self.poll, MAX_BACKOFF))
        self._check_cancel()
        try:
            task_id, instance_id = queue.call(
                lambda: SUBMIT_POLICY.call(
                    attempt,
                    cancel=self.cancel,
                    on_retry=lambda r: self._warn_retry("ImportInstance", r),
                ),
                cancel=self.cancel,
                on_retry=queue_full,
            )
        except (Interrupted, InputError, AwsError):
            raise
        except Exception as exc:
            if aws.error_code(exc) is not None and not (
                retry.is_transient(exc) or _queue_full(exc)
            ):
                # AWS refused this request: sending it again would not help.
                self.journal.update(self.record, state=RunState.FAILED, message=str(exc))
            raise aws.map_error(exc) from None  # otherwise resumable: the record keeps state
        self._submitted(task_id, instance_id)

    def _submitted(self, task_id: str, instance_id: str | None) -> None:
        self.journal.update(
            self.record, task_id=task_id, instance_id=instance_id, state=RunState.SUBMITTED
        )
        self.emit(SubmittedEvent(self.run_id, conversion_task_id=task_id, instance_id=instance_id))

    def _find_existing_task(self) -> TaskView | None:
        """A task whose manifest is this run's (same bucket and key), if AWS has one. Raises
        botocore's errors as they are: the caller decides whether to look again."""
        key = self.record.manifest_key
        if key is None:
            return None
        # Retried with the submission it guards (SUBMIT_POLICY), not by botocore as well.
        ec2 = aws.client(self.target, "ec2", aws.ONCE)
        tasks = ec2.describe_conversion_tasks().get("ConversionTasks", [])
        for item in tasks:
            view = TaskView.from_api(item)
            if view.manifest_url and _same_object(view.manifest_url, self.record.bucket, key):
                return view
        return None

    def _release_slot(self) -> None:
        if self._holding_slot and self.slots is not None:
            self._holding_slot = False
            self.slots.release()

    # -- watch --------------------------------------------------------------------------------

    def _watch(self) -> DoneEvent:
        assert self.record.task_id is not None
        task_id = self.record.task_id
        ec2 = aws.client(self.target, "ec2", aws.ONCE)
        blips = dataclasses.replace(WATCH_POLICY, base_delay=min(self.poll, MAX_BACKOFF))
        last: TaskView | None = None
        warned = False
        started = self.uploaded_at or time.monotonic()
        while True:
            try:
                resp = blips.call(
                    lambda: ec2.describe_conversion_tasks(ConversionTaskIds=[task_id]),
                    cancel=self.cancel,
                    on_retry=lambda r: self._warn_retry("DescribeConversionTasks", r),
                )
            except Interrupted:
                raise
            except Exception as exc:
                raise aws.map_error(exc) from None
            items = resp.get("ConversionTasks", [])
            if not items:
                raise AwsError(
                    f"{self.record.task_id} is no longer listed by EC2",
                    code="InvalidConversionTaskId",
                )
            view = TaskView.from_api(items[0])
            if view != last:
                last = view
                if view.volume_id and view.volume_id != self.record.volume_id:
                    self.journal.update(self.record, volume_id=view.volume_id)
                self.emit(TaskEvent(self.run_id, task=view))
            if view.final:
                return self._ended(view)
            if (
                not warned
                and view.phase == "pending"
                and time.monotonic() - started > self.pending_warning_after
            ):
                warned = True
                self.emit(
                    WarningEvent(
                        self.run_id,
                        message=f"{view.task_id} is still Pending "
                        f"{int(time.monotonic() - started)} s after the upload finished: "
                        "EC2 may not be able to read the manifest URL (wrong URL, expired, "
                        "or an image URL given instead of a manifest)",
                    )
                )
            self._sleep(self.poll)

    def _ended(self, view: TaskView) -> DoneEvent:
        if view.state == TaskState.COMPLETED:
            self.journal.update(
                self.record,
                state=RunState.FINISHING,
                message=view.message,
                instance_id=view.instance_id or self.record.instance_id,
                volume_id=view.volume_id or self.record.volume_id,
            )
            return self._completed(view.message)
        self.journal.update(self.record, state=RunState.CANCELLED, message=view.message)
        return self._finish(
            DoneEvent(
                self.run_id,
                state=Outcome.CANCELLED,
                conversion_task_id=view.task_id,
                instance_id=view.instance_id,
                volume_id=view.volume_id,
                message=view.message,
                cleanup=self._cleanup_hint(),
            )
        )

    def _completed(self, message: str = "") -> DoneEvent:
        """The task completed: the profile's [after] steps not done yet (tui/core/after.py),
        each recorded as it is done, then the run is completed."""
        from tui.core.account import Account
        from tui.core.after import AfterSteps

        if self.record.state != RunState.FINISHING:
            self.journal.update(self.record, state=RunState.FINISHING)
        steps = AfterSteps(
            Account.of(self.target),
            self.journal,
            self.record,
            self.plan.profile.after,
            self.emit,
            self.cancel,
            poll=self.poll,
        )
        steps.run()
        self.journal.update(self.record, state=RunState.COMPLETED, message=message)
        return self._finish(
            DoneEvent(
                self.run_id,
                state=Outcome.COMPLETED,
                conversion_task_id=self.record.task_id,
                instance_id=self.record.instance_id,
                volume_id=self.record.volume_id,
                message=message,
                cleanup=self._cleanup_hint(),
                instance_state=steps.instance_state,
                after_done=tuple(self.record.after_done),
            )
        )

    def _stopped_in(self) -> RunState:
        """The state the run was in when it last stopped (or is in, if it did not)."""
        if self.record.state == RunState.INTERRUPTED:
            return self.record.interrupted_in or RunState.PLANNED
        return self.record.state

    def _cleanup_hint(self) -> tuple[str, ...]:
        if self.record.manifest_key is None or self.target.sandbox:
            return ()  # nothing uploaded, or the sandbox's S3 goes with its process
        if "cleanup" in self.record.after_done:
            return ()  # [after] cleanup deleted it
        return (f"ec2-import-wizard cleanup {self.run_id}",)

    def _finish(self, done: DoneEvent) -> DoneEvent:
        if done.state == Outcome.COMPLETED:
            self._remove_converted()  # the volume exists: the converted copy has done its work
        self.emit(done)
        return done

    # -- dry run ------------------------------------------------------------------------------

    def _dry_run(self) -> DoneEvent:
        """Everything local, then ImportInstance with DryRun=true: no upload, nothing created."""
        src = self.plan.profile.source
        url = src.manifest_url
        if url is None:
            # An unsigned URL of where the manifest would go: EC2 checks permissions only.
            from tui.core import s3keys

            assert self.plan.image_path is not None
            key = s3keys.manifest_key(src.key_prefix, self.run_id, str(self.plan.image_path))
            url = f"https://{src.bucket}.s3.{self.target.region}.amazonaws.com/{key}"
        params = self._import_params(url, dry_run=True)
        ec2 = aws.client(self.target, "ec2", aws.ONCE)
        try:
            ec2.import_instance(**params)
        except Exception as exc:
            if aws.error_code(exc) == "DryRunOperation":
                message = aws.map_error(exc).message
                return self._finish(DoneEvent(self.run_id, state=Outcome.DRY_RUN, message=message))
            raise aws.map_error(exc) from None
        raise AwsError("EC2 ran the request although DryRun was set", code="DryRunIgnored")


def _identify(path: Path) -> ImageIdentity:
    try:
        return identify(path)
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}", field="source.path") from None


def _same_image(record: RunRecord, plan: ImportPlan) -> list[str]:
    """Refuse to resume with another image than the run started with (InputError on
    source.path); the warnings to give when it is the same file, perhaps modified."""
    assert plan.image_path is not None
    path = plan.image_path
    was = record.image_identity
    now = _identify(path)
    differs = was.differences(now) if was is not None else []
    if was is None and now.size != record.image_bytes:  # all an older record can tell
        differs.append(f"size {record.image_bytes} -> {now.size} bytes")
    if plan.image_format != record.image_format:
        differs.append(f"format {record.image_format} -> {plan.image_format}")
    if differs:
        raise InputError(
            f"{path} is not the image run {record.short_id} started with "
            f"({'; '.join(differs)}): start a new run with `ec2-import-wizard run PROFILE`",
            field="source.path",
        )
    if was is None:
        return [
            f"{path} may have been modified since the run started (its record predates image "
            "identities): parts whose bytes changed are sent again"
        ]
    if now.mtime_ns != was.mtime_ns:
        return [
            f"{path} was modified since the run started: parts whose bytes changed are sent again"
        ]
    return []


def _earliest_expiry(manifest: Manifest) -> float | None:
    """When the first of a manifest's SigV4 URLs expires (epoch seconds); None if one is not
    SigV4 or cannot be read."""
    from urllib.parse import parse_qs, urlsplit

    urls = [manifest.self_destruct_url]
    for p in manifest.parts:
        urls += [p.head_url, p.get_url, *([p.delete_url] if p.delete_url else [])]
    earliest: float | None = None
    for url in urls:
        query = parse_qs(urlsplit(url).query)
        try:
            signed = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            ends = signed.timestamp() + int(query["X-Amz-Expires"][0])
        except (KeyError, ValueError):
            return None
        earliest = ends if earliest is None else min(earliest, ends)
    return earliest


def _same_object(url: str, bucket: str | None, key: str) -> bool:
    """Does a (presigned) URL point at s3://bucket/key, in any of S3's URL styles?"""
    from tui.core.upload import parse_s3_url

    try:
        return parse_s3_url(url) == (bucket, key)
    except InputError:
        return False
