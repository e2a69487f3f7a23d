"""What a run does once its conversion task completed: the profile's `[after]` table.

Steps, in this order: `tags` (CreateTags on the instance and every EBS volume attached to it,
found with DescribeInstances), `start` (StartInstances, then DescribeInstances until it is
running, within START_WAIT_S) and `cleanup` (the run's parts and manifest deleted from S3, as
the `cleanup` command does). Each step done is written into the run record (`after_done`)
before the next begins, so a `resume` of a run stopped among them does only those left, never
one done twice. (A step cut short by a kill, sent but not yet recorded, is sent again: each is
harmless to repeat, as CreateTags sets the same tags, StartInstances on a running instance
changes nothing and a deletion finds nothing left.) A step that fails says what was done,
what is left, and how to do it.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable

from tui.core.account import Account
from tui.core.errors import AwsError, Interrupted, WizardError
from tui.core.events import CleanedEvent, Event, StartedEvent, TaggedEvent
from tui.core.journal import Journal, RunRecord
from tui.core.profiles import After
from tui.core.profiles import AfterStep as Step
from tui.core.retry import RetryPolicy

START_WAIT_S = 15 * 60.0  # EC2 starts an instance in a minute or two; a Windows boot is longer
MAX_START_POLL_S = 15.0  # botocore's own instance_running waiter polls every 15 s


# What each step is, for "done: ...; left: ..." and the commands a user can run instead.
_SAID = {Step.TAGS: "tag", Step.START: "start", Step.CLEANUP: "clean up"}


def steps_for(after: After, record: RunRecord) -> list[Step]:
    """The steps this run's [after] asks for. cleanup only deletes what this run uploaded (an
    image given as source.manifest_url was uploaded by someone else: `cleanup TASK_ID`)."""
    steps = []
    if after.tags:
        steps.append(Step.TAGS)
    if after.start:
        steps.append(Step.START)
    if after.cleanup == "on-success" and record.image_path and record.bucket:
        steps.append(Step.CLEANUP)
    return steps


def steps_left(after: After, record: RunRecord) -> list[Step]:
    return [s for s in steps_for(after, record) if s not in record.after_done]


class NotRunningYet(Exception):
    """The instance is starting (or EC2 does not show the start yet): look again."""


class StartFailed(AwsError):
    """The instance did not come up running after StartInstances."""


@dataclasses.dataclass
class AfterSteps:
    """The steps left of one completed run, done in order. `run()` raises the first failure,
    its message saying what was done and what is left."""

    account: Account
    journal: Journal
    record: RunRecord
    after: After
    emit: Callable[[Event], None]
    cancel: threading.Event
    poll: float = 15.0
    instance_state: str | None = None  # "running" once started (by this process or before)

    def run(self) -> None:
        if Step.START in self.record.after_done:
            self.instance_state = "running"
        for step in steps_left(self.after, self.record):
            if self.cancel.is_set():
                raise Interrupted("interrupted")
            try:
                {Step.TAGS: self._tags, Step.START: self._start, Step.CLEANUP: self._cleanup}[
                    step
                ]()
            except Interrupted:
                raise
            except Exception as exc:
                raise self._failed(step, exc) from None
            self.journal.update(self.record, after_done=[*self.record.after_done, step.value])

    def _instance_id(self) -> str:
        if not self.record.instance_id:
            raise AwsError("the completed task names no instance", code="MissingInstanceId")
        return self.record.instance_id

    def _tags(self) -> None:
        instance = self.account.instance(self._instance_id())
        volumes = list(instance.volume_ids)
        if self.record.volume_id and self.record.volume_id not in volumes:
            volumes.append(self.record.volume_id)  # the task's volume, even when not attached
        resources = (instance.instance_id, *volumes)
        self.account.tag(resources, self.after.tags)
        self.emit(TaggedEvent(self.record.run_id, resources=resources, tags=dict(self.after.tags)))

    def _start(self) -> None:
        instance_id = self._instance_id()
        began = time.monotonic()
        self.account.start(instance_id)
        seen: list[str] = []

        def look() -> str:
            state = self.account.instance(instance_id).state
            seen.append(state)
            if state == "running":
                return state
            # Just after StartInstances EC2 may still show the instance stopped; back to
            # stopped after pending means the start failed (capacity, a volume, a limit).
            if state == "pending" or (state == "stopped" and "pending" not in seen):
                raise NotRunningYet(state)
            raise StartFailed(
                f"{instance_id} went {' -> '.join(dict.fromkeys(seen))} after StartInstances "
                "instead of running: see its state reason with `aws ec2 describe-instances "
                f"--instance-ids {instance_id}`",
                code="InstanceNotRunning",
            )

        policy = RetryPolicy(
            retryable=lambda e: isinstance(e, NotRunningYet),
            attempts=1_000_000,
            base_delay=min(self.poll, MAX_START_POLL_S),
            max_delay=MAX_START_POLL_S,
            deadline=START_WAIT_S,
        )
        try:
            state = policy.call(look, cancel=self.cancel)
        except NotRunningYet as exc:
            raise StartFailed(
                f"{instance_id} is still {exc} {int(time.monotonic() - began)} s after "
                "StartInstances",
                code="InstanceNotRunning",
            ) from None
        self.instance_state = state
        self.emit(
            StartedEvent(
                self.record.run_id,
                instance_id=instance_id,
                state=state,
                seconds=round(time.monotonic() - began, 3),
            )
        )

    def _cleanup(self) -> None:
        from tui.core import cleanup

        bucket, key = cleanup.upload_location(self.record, None)
        report = cleanup.delete_report(self.account.client("s3"), bucket, key)
        self.emit(
            CleanedEvent(
                self.record.run_id, bucket=bucket, manifest_key=key, objects=len(report.deleted)
            )
        )

    def _failed(self, step: Step, exc: Exception) -> WizardError:
        """The step's error, saying that the import completed, what was done and what is left."""
        from tui.core.aws import map_error

        err = map_error(exc)
        done = [_SAID[Step(s)] for s in self.record.after_done]
        left = [_SAID[s] for s in steps_left(self.after, self.record)]
        record = self.record
        said = (
            f"{err.message}. The import itself completed ({record.task_id}, instance "
            f"{record.instance_id}); [after] done: {', '.join(done) or 'nothing'}; left: "
            f"{', '.join(left)} (failed at {_SAID[step]}). Do what is left with "
            f"`ec2-import-wizard resume {record.run_id}`"
        )
        if step == Step.CLEANUP:
            said += f" or `ec2-import-wizard cleanup {record.run_id}`"
        if isinstance(err, AwsError):
            return AwsError(said, code=err.code)
        failed = WizardError(said)
        failed.exit_code = err.exit_code
        return failed
