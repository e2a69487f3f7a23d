"""One process per run: a second `resume`, or a `cleanup` of a run that another process is
uploading, is refused (exit 2, naming the holder) before it sends anything; a killed run's lock
goes with its process. Real CLI processes against the sandbox over HTTP, checked with boto3."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.aws import client
from tests.helpers.cli import cli, cli_env, events, records, start_cli, tasks_for, write_profile
from tests.helpers.disks import with_mbr


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def _bucket(s3: Any) -> str:
    name = f"lock-{random.randrange(16**8):08x}"
    s3.create_bucket(Bucket=name)
    return name


def _run_until_parts(
    env: dict[str, str], endpoint: str, profile: Path, parts: int
) -> subprocess.Popen[str]:
    """`run` of 1 MiB parts one at a time, returned once `parts` of them are in S3."""
    proc = start_cli(env, endpoint, "run", str(profile), "--json", "--part-size", "1",
                  "--workers", "1", "--poll", "0.2")  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "upload" and event["parts_done"] >= parts:
            return proc
    raise AssertionError(f"the run ended before {parts} parts: {proc.communicate()}")


def _random_image(path: Path, mib: int) -> Path:
    path.write_bytes(with_mbr(os.urandom(mib << 20)))
    return path


def test_two_resumes_at_once_make_one_task(slow_sandbox, home, tmp_path):
    s3, ec2 = client(slow_sandbox, "s3"), client(slow_sandbox, "ec2")
    bucket = _bucket(s3)
    image = _random_image(tmp_path / "twice.raw", 16)  # about 4 s to convert
    profile = write_profile(tmp_path, "twice", image, bucket)
    env = cli_env(home, tmp_path)
    first = _run_until_parts(env, slow_sandbox, profile, 3)
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    (record,) = records(home)
    assert record["state"] == "interrupted" and record["task_id"] is None

    procs = [start_cli(env, slow_sandbox, "resume", record["run_id"], "--json", "--poll", "0.2")
             for _ in range(2)]  # fmt: skip
    outs = [p.communicate(timeout=120) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outs
    winner, loser = (0, 1) if procs[0].returncode == 0 else (1, 0)
    loser_out, loser_err = outs[loser]
    assert "Traceback" not in loser_err
    # It sent nothing: its only event is the refusal, naming the process that has the run.
    (refusal,) = events(loser_out)
    assert refusal["event"] == "error" and refusal["exit_code"] == 2
    holder = f"in use by process {procs[winner].pid} on {socket.gethostname()} since "
    assert holder in refusal["message"] and "RUN_ID" in refusal["message"]

    (final,) = records(home)
    assert final["state"] == "completed"
    assert len(tasks_for(ec2, final["manifest_key"])) == 1


def test_cleanup_refused_while_a_run_uploads(slow_sandbox, home, tmp_path):
    s3 = client(slow_sandbox, "s3")
    bucket = _bucket(s3)
    image = _random_image(tmp_path / "busy.raw", 40)  # 10 s to convert after the upload
    profile = write_profile(tmp_path, "busy", image, bucket)
    env = cli_env(home, tmp_path)
    proc = _run_until_parts(env, slow_sandbox, profile, 2)
    try:
        (record,) = records(home)
        before = s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0)
        assert before >= 2
        refused = cli(env, "cleanup", record["run_id"])
        assert refused.returncode == 2, refused.stderr
        assert f"in use by process {proc.pid} on {socket.gethostname()}" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) >= before  # none deleted
        assert proc.poll() is None  # the run goes on
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    assert proc.returncode == 130


def test_a_killed_runs_lock_does_not_block_resume(slow_sandbox, home, tmp_path):
    s3, ec2 = client(slow_sandbox, "s3"), client(slow_sandbox, "ec2")
    bucket = _bucket(s3)
    image = _random_image(tmp_path / "killed.raw", 12)
    profile = write_profile(tmp_path, "killed", image, bucket)
    env = cli_env(home, tmp_path)
    proc = _run_until_parts(env, slow_sandbox, profile, 2)
    proc.kill()  # SIGKILL: no handler runs, the lock file stays with the dead pid in it
    proc.communicate(timeout=30)
    (record,) = records(home)
    lock = home / "runs" / f"{record['run_id']}.lock"
    assert json.loads(lock.read_text())["pid"] == proc.pid

    resumed = cli(env, "resume", record["run_id"], "--json", "--poll", "0.2")
    assert resumed.returncode == 0, resumed.stderr
    assert events(resumed.stdout)[-1]["state"] == "completed"
    (final,) = records(home)
    assert len(tasks_for(ec2, final["manifest_key"])) == 1
