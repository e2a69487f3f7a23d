"""The pipeline in-process, as the TUI drives it: events from a thread, cancel by event."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.helpers.aws import CREDENTIALS, client, presign
from tests.helpers.disks import MIB, make_source_raw
from tests.helpers.proxy import FaultyProxy
from tui.core.aws import Target
from tui.core.errors import RefusedError
from tui.core.events import (
    DoneEvent,
    ErrorEvent,
    Event,
    SubmittedEvent,
    TaskEvent,
    UploadedEvent,
    UploadEvent,
    WarningEvent,
)
from tui.core.journal import Journal
from tui.core.pipeline import ImportRun
from tui.core.plan import plan_import
from tui.core.profiles import Profile


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["aws_secret_access_key"])
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("EC2_IMPORT_WIZARD_HOME", str(tmp_path / "home"))


def test_pending_long_after_upload_warns_of_a_wrong_manifest_url(env, sandbox, s3, sandbox_bucket):
    """A manifest URL that leads nowhere (presigned, as S3 wants, for a key never uploaded):
    EC2 (and the sandbox) keep the task Pending with no error. The pipeline says what is
    probably wrong, and a cancel stops it cleanly."""
    url = presign(s3, "get_object", sandbox_bucket, "nothing/here/manifest.xml")
    signature = url.split("X-Amz-Signature=")[1]
    profile = Profile.model_validate(
        {
            "name": "pending",
            "source": {
                "manifest_url": url,
                "format": "RAW",
                "bytes": 4194304,
                "volume_size": 1,
            },
            "request": {"Platform": "Windows"},
        }
    )
    seen: list[Event] = []
    cancel = threading.Event()

    def on_event(event: Event) -> None:
        seen.append(event)
        if isinstance(event, WarningEvent):
            cancel.set()  # what a user does on reading it

    run = ImportRun(
        plan_import(profile, None),
        Target(endpoint_url=sandbox),
        on_event=on_event,
        poll=0.1,
        cancel=cancel,
        pending_warning_after=1.0,
    )
    result = run.run()
    assert isinstance(result, ErrorEvent) and result.code == "Interrupted"
    assert result.exit_code == 130
    warning = next(e for e in seen if isinstance(e, WarningEvent))
    assert "still Pending" in warning.message and "manifest URL" in warning.message
    assert any(isinstance(e, SubmittedEvent) for e in seen)
    assert all(e.task.phase == "pending" for e in seen if isinstance(e, TaskEvent) and e.task)
    record = Journal().load(run.run_id)
    assert record.state == "interrupted" and record.task_id
    assert signature not in str(record.profile)  # a presigned signature never reaches disk


@pytest.mark.parametrize(
    "failure, code, exit_code",
    [
        (RuntimeError("a bug in whoever renders the events"), "InternalError", 3),
        (RefusedError("refused for a good reason"), "RefusedError", 1),
        (KeyError("missing"), "InternalError", 3),
    ],
    ids=["bug", "refused", "keyerror"],
)
def test_any_failure_is_one_error_event_and_a_resumable_record(
    env, sandbox, sandbox_bucket, tmp_path, failure, code, exit_code
):
    """Whatever stops a run mid-upload, the caller gets one error event (returned, never
    raised) and the record says where it stopped, so `resume` finishes the import."""
    image = make_source_raw(tmp_path / "disk.raw", size=3 * MIB)
    profile = Profile.model_validate(
        {
            "name": "injected",
            "source": {"path": str(image), "bucket": sandbox_bucket},
            "request": {"Platform": "Windows"},
        }
    )
    seen: list[Event] = []

    def on_event(event: Event) -> None:
        seen.append(event)
        if isinstance(event, UploadEvent) and event.parts_done:
            raise failure  # injected where the run is busiest: parts in flight

    run = ImportRun(
        plan_import(profile, None),
        Target(endpoint_url=sandbox),
        on_event=on_event,
        poll=0.1,
        part_size=1 * MIB,
        workers=1,
    )
    result = run.run()
    errors = [e for e in seen if isinstance(e, ErrorEvent)]
    assert errors == [result]
    assert (result.code, result.exit_code) == (code, exit_code)
    assert str(failure.args[0]) in result.message
    record = Journal().load(run.run_id)
    assert (record.state, record.interrupted_in) == ("interrupted", "uploading")
    assert code in record.message

    resumed: list[Event] = []
    done = ImportRun.resume(record, Target(endpoint_url=sandbox), on_event=resumed.append, poll=0.1)
    final = done.run()
    assert isinstance(final, DoneEvent) and final.state == "completed", resumed
    assert Journal().load(run.run_id).state == "completed"


def _part_requests(log: list[tuple[str, str, int]]) -> dict[str, list[str]]:
    """The methods the proxy answered for each part key, in order."""
    by_part: dict[str, list[str]] = {}
    for method, path, _status in log:
        if ".part" in path:
            by_part.setdefault(path, []).append(method)
    return by_part


def test_a_new_run_costs_each_part_its_put_and_one_presigned_head(
    env, sandbox, sandbox_bucket, tmp_path
):
    """A new run's folder is new: no HEAD before the PUT, then the check EC2's way (counted by
    a recording proxy in front of the sandbox, not by our bookkeeping)."""
    image = make_source_raw(tmp_path / "disk.raw", size=4 * MIB)
    profile = Profile.model_validate(
        {
            "name": "count",
            "source": {"path": str(image), "bucket": sandbox_bucket},
            "request": {"Platform": "Windows"},
        }
    )
    proxy = FaultyProxy(sandbox)
    try:
        run = ImportRun(
            plan_import(profile, None),
            Target(endpoint_url=proxy.url),
            on_event=lambda e: None,
            upload_only=True,
            part_size=MIB // 4,
            workers=4,
        )
        result = run.run()
    finally:
        proxy.close()
    assert isinstance(result, DoneEvent) and result.state == "uploaded", result
    by_part = _part_requests(proxy.log)
    assert len(by_part) == 16
    assert all(methods == ["PUT", "HEAD"] for methods in by_part.values()), by_part
    part_total = sum(len(m) for m in by_part.values())
    assert part_total / len(by_part) <= 2.0
    # The rest does not grow with the parts: the bucket's check, the manifest's PUT and GET.
    assert len(proxy.log) - part_total <= 5, [r for r in proxy.log if ".part" not in r[1]]


def _uploaded_run(image: Path, bucket: str, endpoint: str) -> str:
    """A run uploaded and verified by one process (`upload`), to be resumed by another."""
    profile = Profile.model_validate(
        {
            "name": "resume-at-submit",
            "source": {"path": str(image), "bucket": bucket},
            "request": {"Platform": "Windows"},
            "after": {"cleanup": "never"},  # a test reads the parts back once it completed
        }
    )
    run = ImportRun(
        plan_import(profile, None),
        Target(endpoint_url=endpoint),
        on_event=lambda e: None,
        upload_only=True,
        part_size=MIB // 4,
    )
    assert isinstance(run.run(), DoneEvent)
    return run.run_id


def test_resume_of_an_uploaded_run_goes_straight_to_submit(env, sandbox, sandbox_bucket, tmp_path):
    """No part is sent, HEADed or re-verified, nor the bucket checked again: one listing of
    the run's folder, the manifest through its presigned URL, then the submission (counted by
    a recording proxy)."""
    image = make_source_raw(tmp_path / "disk.raw", size=4 * MIB)
    run_id = _uploaded_run(image, sandbox_bucket, sandbox)
    record = Journal().load(run_id)
    assert record.state == "uploaded" and len(record.confirmed_parts()) == 16
    proxy = FaultyProxy(sandbox)
    seen: list[Event] = []
    try:
        done = ImportRun.resume(
            record, Target(endpoint_url=proxy.url), on_event=seen.append, poll=0.1
        )
        final = done.run()
    finally:
        proxy.close()
    assert isinstance(final, DoneEvent) and final.state == "completed", seen
    assert [r for r in proxy.log if ".part" in r[1]] == []
    # Ours, before the submission (EC2's calls are POST /; after them the sandbox reads the
    # manifest as EC2 does, through the same proxy).
    first_post = next(i for i, r in enumerate(proxy.log) if r[:2] == ("POST", "/"))
    s3_requests = [(m, p) for m, p, _ in proxy.log[:first_post]]
    bucket_path = f"/{sandbox_bucket}"
    lists = [r for r in s3_requests if r == ("GET", bucket_path)]
    manifest = [r for r in s3_requests if r[1].endswith("manifest.xml")]
    assert len(lists) == 1 and manifest == [("GET", manifest[0][1])], s3_requests
    assert len(s3_requests) == 2, s3_requests
    uploaded = next(e for e in seen if isinstance(e, UploadedEvent))
    assert (uploaded.parts_sent, uploaded.parts_skipped) == (0, 16)


def test_resume_of_an_uploaded_run_with_a_part_gone_sends_that_part_alone(
    env, sandbox, sandbox_bucket, tmp_path
):
    image = make_source_raw(tmp_path / "disk.raw", size=4 * MIB)
    run_id = _uploaded_run(image, sandbox_bucket, sandbox)
    record = Journal().load(run_id)
    s3 = client(sandbox, "s3")
    gone = f"{run_id}/disk.raw.part5"
    s3.delete_object(Bucket=sandbox_bucket, Key=gone)
    proxy = FaultyProxy(sandbox)
    try:
        final = ImportRun.resume(
            record, Target(endpoint_url=proxy.url), on_event=lambda e: None, poll=0.1
        ).run()
    finally:
        proxy.close()
    assert isinstance(final, DoneEvent) and final.state == "completed", final
    ours = proxy.log[: next(i for i, r in enumerate(proxy.log) if r[:2] == ("POST", "/"))]
    puts = [p for m, p, _ in ours if m == "PUT" and ".part" in p]
    assert puts == [f"/{sandbox_bucket}/{gone}"]
    # The manifest is written again, so every part's new URL is checked (one HEAD each).
    assert sum(1 for m, p, _ in ours if m == "HEAD" and ".part" in p) == 16
    body = b"".join(
        s3.get_object(Bucket=sandbox_bucket, Key=f"{run_id}/disk.raw.part{i}")["Body"].read()
        for i in range(16)
    )
    assert body == image.read_bytes()
