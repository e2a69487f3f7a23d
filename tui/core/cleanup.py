"""Deleting an import's uploaded image (parts and manifest) from S3: the rules that the
`cleanup` command and the TUI's tasks screen share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tui.core.errors import InputError, RefusedError
from tui.core.journal import RunRecord
from tui.core.tasks import TaskView

if TYPE_CHECKING:
    from tui.core.upload.delete import DeleteReport


def refuse_if_active(task: TaskView | None, force: bool = False) -> None:
    """EC2 may still be reading the parts of an active task."""
    if task is not None and task.active and not force:
        raise RefusedError(
            f"{task.task_id} is {task.state}: EC2 may still be reading the parts; cancel it "
            f"first (`cancel {task.task_id}`) or pass --force"
        )


def upload_location(record: RunRecord | None, task: TaskView | None) -> tuple[str, str]:
    """(bucket, manifest key): from the run record when we made the upload (it knows the key
    even when the manifest was never written), else from the task's manifest URL."""
    from tui.core.upload import parse_s3_url

    if record is not None and record.bucket and record.image_path:
        # A loaded record's manifest_key is checked to be this key (RunRecord's validation).
        return record.bucket, record.manifest_key or record.expected_key()
    if task is not None and task.manifest_url:
        return parse_s3_url(task.manifest_url)
    what = task.task_id if task else record.run_id if record else "it"
    raise InputError(f"{what} names no uploaded image: nothing to clean up")


def delete_report(s3: Any, bucket: str, key: str) -> DeleteReport:
    """Delete one upload; what went. AWS's errors as WizardErrors."""
    from tui.core.aws import map_error
    from tui.core.errors import WizardError
    from tui.core.upload import delete_upload

    try:
        return delete_upload(s3, bucket, key)
    except WizardError:
        raise
    except Exception as exc:
        raise map_error(exc) from None


def described(report: DeleteReport) -> str:
    """A line saying what a deletion took away."""
    bucket, key = report.bucket, report.manifest_key
    note = "" if report.manifest_found else " (the manifest was already gone)"
    return f"deleted {len(report.deleted)} objects from s3://{bucket}/{key}{note}"


def delete(s3: Any, bucket: str, key: str) -> str:
    """Delete one upload; a line saying what went."""
    return described(delete_report(s3, bucket, key))
