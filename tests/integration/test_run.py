"""`run` and `resume` end to end: real qemu-img images, the `ec2-import-wizard` command in a
subprocess, the sandbox over HTTP, and plain boto3 to check what AWS would hold afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.aws import CREDENTIALS, REGION, SESSION_TOKEN, client, spawn_sandbox
from tests.helpers.cli import (
    KEEP_UPLOAD,
    cli,
    cli_env,
    events,
    reassemble,
    records,
    tasks_for,
    write_profile,
)
from tests.helpers.disks import make_source_raw, with_mbr


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["vmdk_stream", "vhd_dynamic", "vhd_fixed"])
def test_profile_replayed_to_completion(
    kind, disk_images, sandbox, sandbox_bucket, ec2, s3, home, tmp_path
):
    image = disk_images[kind]
    profile = write_profile(
        tmp_path, f"replay-{kind.replace('_', '-')}", image, sandbox_bucket, after=KEEP_UPLOAD
    )
    env = cli_env(home, tmp_path)
    result = cli(env, "--endpoint-url", sandbox, "run", str(profile), "--json", "--poll", "0.2")
    assert result.returncode == 0, result.stderr
    evs = events(result.stdout)
    names = [e["event"] for e in evs]
    assert names[0] == "probe" and names[-1] == "done"
    assert names.index("uploaded") < names.index("submitted") < names.index("done")
    done = evs[-1]
    assert done["state"] == "completed"
    submitted = next(e for e in evs if e["event"] == "submitted")
    assert done["conversion_task_id"] == submitted["conversion_task_id"]

    # What EC2 holds now: a stopped instance with the volume attached.
    reservations = ec2.describe_instances(InstanceIds=[done["instance_id"]])["Reservations"]
    instance = reservations[0]["Instances"][0]
    assert instance["State"]["Name"] == "stopped"
    volume = ec2.describe_volumes(VolumeIds=[done["volume_id"]])["Volumes"][0]
    assert volume["Attachments"][0]["InstanceId"] == done["instance_id"]
    assert volume["Size"] == 1

    uploaded = next(e for e in evs if e["event"] == "uploaded")
    assert reassemble(s3, sandbox_bucket, uploaded["manifest_key"]) == image.read_bytes()
    assert len(tasks_for(ec2, uploaded["manifest_key"])) == 1

    (record,) = records(home)
    assert record["state"] == "completed" and record["task_id"] == done["conversion_task_id"]
    assert "X-Amz-Signature" not in json.dumps(record)  # keys only, never presigned URLs
    assert oct(Path(home / "runs" / f"{record['run_id']}.json").stat().st_mode & 0o777) == "0o600"

    # The text summary of `runs` knows it too.
    listed = cli(env, "runs")
    assert record["run_id"][:8] in listed.stdout and "completed" in listed.stdout


def test_text_mode_prints_bars_and_a_summary(disk_images, sandbox, sandbox_bucket, home, tmp_path):
    profile = write_profile(
        tmp_path, "text", disk_images["vmdk_stream"], sandbox_bucket, after=KEEP_UPLOAD
    )
    result = cli(cli_env(home, tmp_path), "--endpoint-url", sandbox, "run", str(profile))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # text mode talks on stderr
    assert "uploaded " in result.stderr and "every part verified" in result.stderr
    assert "completed: import-i-" in result.stderr
    assert "ec2-import-wizard cleanup " in result.stderr


def test_no_wait_exits_once_submitted(disk_images, sandbox, sandbox_bucket, ec2, home, tmp_path):
    profile = write_profile(tmp_path, "nowait", disk_images["vmdk_stream"], sandbox_bucket)
    env = cli_env(home, tmp_path)
    result = cli(env, "--endpoint-url", sandbox, "run", str(profile), "--json", "--no-wait")
    assert result.returncode == 0, result.stderr
    done = events(result.stdout)[-1]
    assert done["event"] == "done" and done["state"] == "submitted"
    task_id = done["conversion_task_id"]
    # ... and `resume` re-attaches to the same task instead of making another.
    (record,) = records(home)
    resumed = cli(env, "resume", record["run_id"], "--json", "--poll", "0.2")
    assert resumed.returncode == 0, resumed.stderr
    last = events(resumed.stdout)[-1]
    assert last["state"] == "completed" and last["conversion_task_id"] == task_id
    assert not any(e["event"] == "uploaded" for e in events(resumed.stdout))


def test_dry_run_sends_nothing_and_exits_0(
    disk_images, sandbox, sandbox_bucket, s3, home, tmp_path
):
    profile = write_profile(tmp_path, "dry", disk_images["vmdk_stream"], sandbox_bucket)
    result = cli(cli_env(home, tmp_path), "--endpoint-url", sandbox, "run", str(profile),
                 "--dry-run", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    done = events(result.stdout)[-1]
    assert done["state"] == "dry-run" and "DryRun" in done["message"]
    assert s3.list_objects_v2(Bucket=sandbox_bucket).get("KeyCount", 0) == 0
    assert records(home) == []


def test_bad_input_exits_2_and_writes_nothing(disk_images, sandbox, sandbox_bucket, home, tmp_path):
    env = cli_env(home, tmp_path)
    sparse = write_profile(tmp_path, "diff", disk_images["vhd_differencing"], sandbox_bucket)
    result = cli(env, "--endpoint-url", sandbox, "run", str(sparse))
    assert result.returncode == 2
    assert "differencing" in result.stderr and "Traceback" not in result.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "x"\n[request]\nPlatform = "Linux"\n')
    result = cli(env, "--endpoint-url", sandbox, "run", str(sparse), str(broken))
    assert result.returncode == 2 and "broken.toml: source: required" in result.stderr
    assert cli(env, "run", "--poll", "0", str(sparse)).returncode == 2  # argparse: usage
    assert records(home) == []


def test_network_error_exits_3(disk_images, sandbox_bucket, home, tmp_path):
    profile = write_profile(tmp_path, "net", disk_images["vmdk_stream"], sandbox_bucket)
    result = cli(cli_env(home, tmp_path), "--endpoint-url", "http://127.0.0.1:9", "run",
                 str(profile), timeout=180)  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr and "error:" in result.stderr


def test_cancelled_import_exits_1(disk_images, slow_sandbox, home, tmp_path):
    ec2 = client(slow_sandbox, "ec2")
    s3 = client(slow_sandbox, "s3")
    s3.create_bucket(Bucket="cancel-me")
    image = make_source_raw(tmp_path / "big.raw", size=64 << 20)  # about 16 s to convert
    # Sent as it is (no qemu-img step): the sandbox's conversion task is what is cancelled.
    profile = write_profile(tmp_path, "cancel", image, "cancel-me", convert="never")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", "--endpoint-url", slow_sandbox, "run", str(profile),
         "--json", "--poll", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(home, tmp_path),
    )  # fmt: skip
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(json.loads(line))
        if seen[-1]["event"] == "submitted":
            ec2.cancel_conversion_task(
                ConversionTaskId=seen[-1]["conversion_task_id"], ReasonMessage="test"
            )
            break
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    done = events(rest)[-1]
    assert done["event"] == "done" and done["state"] == "cancelled"


def test_sigint_mid_upload_then_resume_sends_only_missing_parts(
    sandbox, sandbox_bucket, s3, home, tmp_path, monkeypatch
):
    image = tmp_path / "random.raw"
    image.write_bytes(with_mbr(os.urandom(40 << 20)))
    profile = write_profile(tmp_path, "sigint", image, sandbox_bucket, after=KEEP_UPLOAD)
    env = cli_env(home, tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", "--endpoint-url", sandbox, "run", str(profile), "--json",
         "--part-size", "1", "--workers", "1", "--poll", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "upload" and event["parts_done"] >= 3:
            proc.send_signal(signal.SIGINT)
            break
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "resume" in err
    (record,) = records(home)
    assert record["state"] == "interrupted"
    present = {
        o["Key"]
        for o in s3.list_objects_v2(Bucket=sandbox_bucket).get("Contents", [])
        if ".part" in o["Key"]
    }
    assert 3 <= len(present) < 40

    # Resume in-process, counting the part PUTs botocore really sends.
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in [k for k in os.environ if k.startswith("AWS_") and k not in env]:
        monkeypatch.delenv(key)
    from tui.cli import main
    from tui.core import aws

    sent: list[str] = []
    target = aws.Target(region=REGION, endpoint_url=sandbox)
    from tui.core.upload.image import DEFAULT_WORKERS
    from tui.core.upload.parts import DRAIN_TIERS

    # The uploader's clients: one try per part PUT, sized to the run's parts and workers, one
    # for each read timeout the link's pace may call for.
    clients = [
        aws.client(target, "s3", aws.part_budget(record["part_size"], DEFAULT_WORKERS, drain))
        for drain in DRAIN_TIERS
    ]

    def count(request: Any, **_: Any) -> None:
        if request.method == "PUT" and ".part" in request.url:
            sent.append(request.url.split("?")[0].rsplit("/", 1)[1])

    for c in clients:
        c.meta.events.register("before-send.s3.PutObject", count)
    try:
        code = main(["resume", record["run_id"][:8], "--json", "--poll", "0.2"])
    finally:
        for c in clients:
            c.meta.events.unregister("before-send.s3.PutObject", count)
    assert code == 0
    assert len(sent) == 40 - len(present)
    assert not {k.rsplit("/", 1)[1] for k in present} & set(sent)
    manifest_key = records(home)[0]["manifest_key"]
    assert reassemble(s3, sandbox_bucket, manifest_key) == image.read_bytes()


def test_faults_still_complete_with_one_task_and_identical_bytes(disk_images, home, tmp_path):
    sb = spawn_sandbox(
        "--rate", str(64 << 20), "--faults", "s3-put=0.1,throttle=0.2",
        env={"EC2_IMPORT_WIZARD_SANDBOX_SEED": "7"},
    )  # fmt: skip
    try:
        s3 = client(sb.endpoint, "s3", retries={"mode": "standard", "max_attempts": 10})
        ec2 = client(sb.endpoint, "ec2", retries={"mode": "standard", "max_attempts": 10})
        s3.create_bucket(Bucket="faulty")
        image = disk_images["vhd_fixed"]
        profile = write_profile(tmp_path, "faulty", image, "faulty", after=KEEP_UPLOAD)
        result = cli(cli_env(home, tmp_path), "--endpoint-url", sb.endpoint, "run", str(profile),
                     "--json", "--poll", "0.2", "--part-size", "1")  # fmt: skip
        assert result.returncode == 0, result.stderr
        uploaded = next(e for e in events(result.stdout) if e["event"] == "uploaded")
        assert uploaded["parts"] >= 4
        assert reassemble(s3, "faulty", uploaded["manifest_key"]) == image.read_bytes()
        assert len(tasks_for(ec2, uploaded["manifest_key"])) == 1
    finally:
        sb.stop()


def test_six_profiles_queue_behind_the_five_task_limit(disk_images, home, tmp_path):
    sb = spawn_sandbox("--rate", str(1 << 20))  # 4 MiB images take about 4 s to convert
    try:
        s3 = client(sb.endpoint, "s3")
        s3.create_bucket(Bucket="six")
        profiles = [
            str(write_profile(tmp_path, f"six-{i}", disk_images["vmdk_stream"], "six"))
            for i in range(6)
        ]
        result = cli(cli_env(home, tmp_path), "--endpoint-url", sb.endpoint, "run", *profiles,
                     "--json", "--poll", "0.2", timeout=240)  # fmt: skip
        assert result.returncode == 0, result.stderr
        evs = events(result.stdout)
        active: set[str] = set()
        most = 0
        for e in evs:
            if e["event"] == "submitted":
                active.add(e["run_id"])
                most = max(most, len(active))
            elif e["event"] == "done":
                active.discard(e["run_id"])
        assert most == 5  # the sixth waited for a slot instead of failing
        dones = [e for e in evs if e["event"] == "done"]
        assert len(dones) == 6 and {d["state"] for d in dones} == {"completed"}
        assert {e["profile"] for e in dones} == {f"six-{i}" for i in range(6)}
        assert not any(e["event"] == "error" for e in evs)
    finally:
        sb.stop()


def test_dry_run_unauthorized_exits_3_with_aws_message(disk_images, tmp_path, capsys, monkeypatch):
    """Error mapping only (the sandbox grants everything): botocore's Stubber answers."""
    from botocore.stub import Stubber

    from tui.cli import main
    from tui.core import aws

    monkeypatch.setenv("EC2_IMPORT_WIZARD_HOME", str(tmp_path / "home"))
    profile = write_profile(tmp_path, "unauth", disk_images["vmdk_stream"], "some-bucket")
    target = aws.Target(region=REGION, endpoint_url="http://127.0.0.1:9")
    monkeypatch.setattr(aws, "session", lambda t: _static_session())
    ec2 = aws.client(target, "ec2", aws.ONCE)
    with Stubber(ec2) as stub:
        stub.add_client_error(
            "import_instance",
            service_error_code="UnauthorizedOperation",
            service_message="You are not authorized to perform this operation.",
            http_status_code=403,
        )
        # The preflight asks the same (tests/integration/test_preflight.py, the real sandbox):
        # skipped here, where only the pipeline's own dry run has an answer.
        from tui.core.preflight import check_ids

        skips = [arg for check in check_ids() for arg in ("--skip-check", check)]
        code = main(
            ["--endpoint-url", target.endpoint_url, "run", str(profile), "--dry-run", *skips]
        )
    assert code == 3
    err = capsys.readouterr().err
    assert "UnauthorizedOperation: You are not authorized" in err
    assert "Traceback" not in err


def _static_session() -> Any:
    import boto3

    return boto3.Session(region_name=REGION, **CREDENTIALS)


def test_interrupted_while_watching_then_resume(disk_images, slow_sandbox, home, tmp_path):
    s3 = client(slow_sandbox, "s3")
    s3.create_bucket(Bucket="watch-stop")
    profile = write_profile(tmp_path, "watch", disk_images["raw"], "watch-stop")
    env = cli_env(home, tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", "--endpoint-url", slow_sandbox, "run", str(profile),
         "--json", "--poll", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if json.loads(line)["event"] == "submitted":
            time.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            break
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    (record,) = records(home)
    assert record["task_id"] and record["state"] == "interrupted"
    resumed = cli(env, "resume", record["run_id"], "--json", "--poll", "0.2")
    assert resumed.returncode == 0, resumed.stderr
    evs = events(resumed.stdout)
    assert evs[-1]["state"] == "completed"
    assert evs[-1]["conversion_task_id"] == record["task_id"]
    assert not any(e["event"] in ("upload", "uploaded", "submitted") for e in evs)


def test_cleanup_by_run_id_refuses_while_active_then_deletes(
    disk_images, slow_sandbox, home, tmp_path
):
    s3 = client(slow_sandbox, "s3")
    ec2 = client(slow_sandbox, "ec2")
    s3.create_bucket(Bucket="clean-me")
    image = make_source_raw(tmp_path / "clean.raw", size=32 << 20)  # about 8 s to convert
    profile = write_profile(tmp_path, "clean", image, "clean-me", convert="never")
    env = cli_env(home, tmp_path)
    result = cli(env, "--endpoint-url", slow_sandbox, "run", str(profile), "--no-wait", "--json")
    assert result.returncode == 0, result.stderr
    (record,) = records(home)
    assert s3.list_objects_v2(Bucket="clean-me")["KeyCount"] > 1

    refused = cli(env, "cleanup", record["run_id"])
    assert refused.returncode == 1 and "--force" in refused.stderr
    assert s3.list_objects_v2(Bucket="clean-me")["KeyCount"] > 1  # nothing deleted

    ec2.cancel_conversion_task(ConversionTaskId=record["task_id"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        task = ec2.describe_conversion_tasks(ConversionTaskIds=[record["task_id"]])
        if task["ConversionTasks"][0]["State"] == "cancelled":
            break
        time.sleep(0.2)
    done = cli(env, "cleanup", record["run_id"][:8])
    assert done.returncode == 0, done.stderr
    assert "deleted 5 objects" in done.stdout  # 4 parts of 10 MiB and the manifest
    assert s3.list_objects_v2(Bucket="clean-me")["KeyCount"] == 0


def test_sandbox_ignores_aws_profile(disk_images, home, tmp_path):
    image = disk_images["vmdk_stream"]
    profile = write_profile(tmp_path, "noprofile", image, "sandbox-bucket")
    env = {**cli_env(home, tmp_path), "AWS_PROFILE": "does-not-exist"}
    result = cli(env, "--sandbox", "run", str(profile), "--json", "--poll", "0.2")
    assert result.returncode == 0, result.stderr
    assert events(result.stdout)[-1]["state"] == "completed"


def test_sandbox_runs_stay_out_of_the_accounts_views(disk_images, home, tmp_path):
    """A sandbox run's S3 data and task die with its process: `runs` lists it only with
    --sandbox, and says so on stderr without it."""
    profile = write_profile(tmp_path, "play", disk_images["vmdk_stream"], "sandbox-bucket")
    env = cli_env(home, tmp_path)
    played = cli(env, "--sandbox", "run", str(profile), "--json", "--poll", "0.2")
    assert played.returncode == 0, played.stderr
    (record,) = records(home)
    assert record["sandbox"] is True

    real = cli(env, "runs")
    assert real.returncode == 0, real.stderr
    assert record["run_id"][:8] not in real.stdout
    assert "1 run made with --sandbox (add it to see them) not shown" in real.stderr
    real_json = cli(env, "runs", "--json")
    assert real_json.stdout == ""

    sandboxed = cli(env, "--sandbox", "runs", "--json")
    assert sandboxed.returncode == 0, sandboxed.stderr
    assert [e["run_id"] for e in events(sandboxed.stdout)] == [record["run_id"]]
    assert sandboxed.stderr == ""


def test_temporary_credentials_are_warned_about_and_never_written(
    disk_images, sandbox, sandbox_bucket, home, tmp_path
):
    profile = write_profile(tmp_path, "token", disk_images["vmdk_stream"], sandbox_bucket)
    env = {**cli_env(home, tmp_path), "AWS_SESSION_TOKEN": SESSION_TOKEN}
    result = cli(env, "--endpoint-url", sandbox, "run", str(profile), "--poll", "0.2")
    assert result.returncode == 0, result.stderr
    assert "temporary" in result.stderr and SESSION_TOKEN not in result.stderr
    upload = cli(env, "--endpoint-url", sandbox, "upload", str(profile))
    assert upload.returncode == 0, upload.stderr
    assert "X-Amz-Security-Token=REDACTED" in upload.stdout + upload.stderr
    assert SESSION_TOKEN not in upload.stdout + upload.stderr
    for path in home.rglob("*"):
        if path.is_file():
            assert SESSION_TOKEN not in path.read_text(errors="replace"), path


def test_upload_then_resume_submits_it(disk_images, sandbox, sandbox_bucket, ec2, home, tmp_path):
    profile = write_profile(tmp_path, "later", disk_images["vhd_dynamic"], sandbox_bucket)
    env = cli_env(home, tmp_path)
    uploaded = cli(env, "--endpoint-url", sandbox, "upload", str(profile))
    assert uploaded.returncode == 0, uploaded.stderr
    assert "X-Amz-Signature=REDACTED" in uploaded.stdout
    (record,) = records(home)
    assert record["state"] == "uploaded" and record["task_id"] is None
    resumed = cli(env, "resume", record["run_id"], "--json", "--poll", "0.2")
    assert resumed.returncode == 0, resumed.stderr
    evs = events(resumed.stdout)
    assert next(e for e in evs if e["event"] == "uploaded")["parts_sent"] == 0  # all there
    assert evs[-1]["state"] == "completed"
    assert len(tasks_for(ec2, record["manifest_key"])) == 1
