"""The profile's [after] table and `run`'s flags over it, end to end: the real CLI in a
subprocess, the sandbox over HTTP (moto's instance and volume), plain boto3 to see what EC2 and
S3 hold afterwards."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from tests.helpers.aws import client, spawn_sandbox
from tests.helpers.cli import cli, cli_env, events, records, write_profile

FAST_RATE = 64 * 1024 * 1024


def with_after(profile: Path, **after: Any) -> Path:
    data = tomllib.loads(profile.read_text())
    data["after"] = after
    profile.write_text(tomli_w.dumps(data))
    return profile


def tags_of(ec2: Any, resource_id: str) -> dict[str, str]:
    found = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [resource_id]}])["Tags"]
    return {t["Key"]: t["Value"] for t in found}


def under(s3: Any, bucket: str, prefix: str) -> list[str]:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for o in listing.get("Contents", [])]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_tags_start_and_cleanup_after_the_task_completed(
    disk_images, sandbox, sandbox_bucket, ec2, s3, home, tmp_path
):
    profile = with_after(
        write_profile(tmp_path, "after-all", disk_images["vmdk_stream"], sandbox_bucket),
        tags={"Name": "app01", "env": "test"},
        start=True,
    )
    env = cli_env(home, tmp_path)
    result = cli(env, "--endpoint-url", sandbox, "run", str(profile), "--json", "--poll", "0.2",
                 "--tag", "owner=ops", "--tag", "env=prod")  # fmt: skip
    assert result.returncode == 0, result.stderr
    evs = events(result.stdout)
    names = [e["event"] for e in evs]
    # In this order, after the task completed and before the end.
    assert names[-4:] == ["tagged", "started", "cleaned", "done"], names
    done = evs[-1]
    assert done["state"] == "completed" and done["instance_state"] == "running"
    assert done["after_done"] == ["tags", "start", "cleanup"]
    assert done["cleanup"] == []

    instance = ec2.describe_instances(InstanceIds=[done["instance_id"]])["Reservations"][0][
        "Instances"
    ][0]
    assert instance["State"]["Name"] == "running"
    want = {"Name": "app01", "env": "prod", "owner": "ops"}  # the flags over the profile's
    assert tags_of(ec2, done["instance_id"]) == want
    assert tags_of(ec2, done["volume_id"]) == want
    tagged = next(e for e in evs if e["event"] == "tagged")
    assert tagged["resources"] == [done["instance_id"], done["volume_id"]]

    (record,) = records(home)
    assert record["state"] == "completed" and record["after_done"] == ["tags", "start", "cleanup"]
    assert under(s3, sandbox_bucket, f"imports/{record['run_id']}/") == []
    cleaned = next(e for e in evs if e["event"] == "cleaned")
    assert cleaned["objects"] == 2  # one 4 MiB part and the manifest


def test_text_mode_says_what_was_done(disk_images, sandbox, sandbox_bucket, home, tmp_path):
    profile = write_profile(tmp_path, "after-text", disk_images["vmdk_stream"], sandbox_bucket)
    result = cli(cli_env(home, tmp_path), "--endpoint-url", sandbox, "run", str(profile),
                 "--poll", "0.2", "--tag", "Name=web", "--start")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "tagged i-" in result.stderr and "Name=web" in result.stderr
    assert "started i-" in result.stderr and "the instance is running" in result.stderr
    assert "cleaned up: deleted 2 objects" in result.stderr
    assert "ec2-import-wizard cleanup " not in result.stderr  # nothing is left to clean up


def test_cleanup_never_leaves_the_upload_and_the_instance_stopped(
    disk_images, sandbox, sandbox_bucket, ec2, s3, home, tmp_path
):
    profile = with_after(
        write_profile(tmp_path, "after-never", disk_images["vmdk_stream"], sandbox_bucket),
        cleanup="never",
    )
    env = cli_env(home, tmp_path)
    result = cli(env, "--endpoint-url", sandbox, "run", str(profile), "--json", "--poll", "0.2")
    assert result.returncode == 0, result.stderr
    evs = events(result.stdout)
    assert not any(e["event"] in ("tagged", "started", "cleaned") for e in evs)
    done = evs[-1]
    assert done["after_done"] == [] and done["instance_state"] is None
    assert done["cleanup"] == [f"ec2-import-wizard cleanup {done['run_id']}"]
    assert len(under(s3, sandbox_bucket, f"imports/{done['run_id']}/")) == 2
    instance = ec2.describe_instances(InstanceIds=[done["instance_id"]])["Reservations"][0][
        "Instances"
    ][0]
    assert instance["State"]["Name"] == "stopped"

    # The flag over the profile: on-success although the profile says never.
    again = cli(env, "--endpoint-url", sandbox, "run", str(profile), "--json", "--poll", "0.2",
                "--cleanup", "on-success")  # fmt: skip
    assert again.returncode == 0, again.stderr
    run_id = events(again.stdout)[-1]["run_id"]
    assert under(s3, sandbox_bucket, f"imports/{run_id}/") == []


@pytest.mark.parametrize("stopped", ["failed", "killed"])
def test_a_run_stopped_after_completion_is_resumed_and_each_step_is_done_once(
    stopped, disk_images, home, tmp_path
):
    """StartInstances refused once (UnauthorizedOperation): the import completed and is
    tagged, the run says what is left and exits 3; `resume` starts and cleans up, and tags
    nothing again. "killed": the record as a SIGKILL during the start leaves it (finishing,
    tags done), which `resume` goes on from the same way."""
    sb = spawn_sandbox(
        "--rate", str(FAST_RATE), env={"EC2_IMPORT_WIZARD_SANDBOX_DENY": "ec2:StartInstances:1"}
    )  # fmt: skip
    try:
        ec2, s3 = client(sb.endpoint, "ec2"), client(sb.endpoint, "s3")
        s3.create_bucket(Bucket="after-resume")
        profile = with_after(
            write_profile(tmp_path, "after-resume", disk_images["vmdk_stream"], "after-resume"),
            tags={"Name": "app02"},
            start=True,
        )
        env = cli_env(home, tmp_path)
        first = cli(env, "--endpoint-url", sb.endpoint, "run", str(profile), "--json",
                    "--poll", "0.2")  # fmt: skip
        assert first.returncode == 3, first.stderr
        evs = events(first.stdout)
        assert [e["event"] for e in evs][-2:] == ["tagged", "error"]
        error = evs[-1]
        assert error["code"] == "UnauthorizedOperation"
        assert "The import itself completed" in error["message"]
        assert "done: tag; left: start, clean up" in error["message"]
        assert f"resume {error['run_id']}" in error["message"]
        (record,) = records(home)
        assert record["state"] == "interrupted" and record["interrupted_in"] == "finishing"
        assert record["after_done"] == ["tags"]
        assert len(under(s3, "after-resume", f"imports/{record['run_id']}/")) == 2
        if stopped == "killed":
            path = home / "runs" / f"{record['run_id']}.json"
            killed = {**record, "state": "finishing", "interrupted_in": None, "message": ""}
            path.write_text(json.dumps(killed))

        resumed = cli(env, "resume", record["run_id"], "--json", "--poll", "0.2")
        assert resumed.returncode == 0, resumed.stderr
        names = [e["event"] for e in events(resumed.stdout)]
        assert "tagged" not in names and "task" not in names
        assert names[-3:] == ["started", "cleaned", "done"]
        (record,) = records(home)
        assert record["state"] == "completed"
        assert record["after_done"] == ["tags", "start", "cleanup"]
        instance = ec2.describe_instances(InstanceIds=[record["instance_id"]])["Reservations"][0][
            "Instances"
        ][0]
        assert instance["State"]["Name"] == "running"
        assert tags_of(ec2, record["instance_id"]) == {"Name": "app02"}
        assert under(s3, "after-resume", f"imports/{record['run_id']}/") == []

        # Finished: a third go does nothing at all.
        third = cli(env, "resume", record["run_id"], "--json")
        assert third.returncode == 2 and "already ended completed" in third.stderr
    finally:
        sb.stop()


@pytest.mark.parametrize(
    ("after", "field", "says"),
    [
        ({"tags": {"aws:owner": "x"}}, "after.tags", "starts with 'aws:'"),
        ({"tags": {"Name": "x" * 257}}, "after.tags", "at most 256"),
        ({"tags": {"k" * 129: "x"}}, "after.tags", "at most 128"),
        ({"tags": {"": "x"}}, "after.tags", "tag key is empty"),
        ({"tags": {f"t{i}": "x" for i in range(51)}}, "after.tags", "at most 50"),
        ({"tags": {"Name": 3}}, "after.tags.Name", "valid string"),
        ({"cleanup": "always"}, "after.cleanup", "'on-success' or 'never'"),
        ({"start": "yes"}, "after.start", "valid boolean"),
        ({"strat": True}, "after.strat", "did you mean 'start'?"),
    ],
)
def test_bad_after_values_exit_2_naming_the_field(
    after, field, says, disk_images, sandbox, sandbox_bucket, s3, home, tmp_path
):
    profile = with_after(
        write_profile(tmp_path, "after-bad", disk_images["vmdk_stream"], sandbox_bucket), **after
    )
    result = cli(cli_env(home, tmp_path), "--endpoint-url", sandbox, "run", str(profile))
    assert result.returncode == 2, result.stderr
    assert f"after-bad.toml: {field}: " in result.stderr and says in result.stderr
    assert "Traceback" not in result.stderr
    assert s3.list_objects_v2(Bucket=sandbox_bucket).get("KeyCount", 0) == 0
    assert records(home) == []


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (("--tag", "aws:x=1"), "--tag: tag key 'aws:x' starts with 'aws:'"),
        (("--tag", "novalue"), "is not KEY=VALUE"),
        (("--cleanup", "always"), "invalid choice: 'always'"),
    ],
)
def test_bad_after_flags_exit_2(
    flags, says, disk_images, sandbox, sandbox_bucket, s3, home, tmp_path
):
    profile = write_profile(tmp_path, "after-flags", disk_images["vmdk_stream"], sandbox_bucket)
    result = cli(cli_env(home, tmp_path), "--endpoint-url", sandbox, "run", str(profile), *flags)
    assert result.returncode == 2, result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr
    assert s3.list_objects_v2(Bucket=sandbox_bucket).get("KeyCount", 0) == 0


def test_saved_profiles_keep_after(disk_images, sandbox_bucket, home, tmp_path):
    from tui.core.profiles import ProfileStore, load_profile

    path = with_after(
        write_profile(tmp_path, "after-save", disk_images["vmdk_stream"], sandbox_bucket),
        tags={"Name": "app01", "cost center": "42"},
        cleanup="never",
        start=True,
    )
    profile = load_profile(path)
    store = ProfileStore(tmp_path / "store")
    saved = store.save(profile)
    assert tomllib.loads(saved.read_text())["after"] == {
        "tags": {"Name": "app01", "cost center": "42"},
        "cleanup": "never",
        "start": True,
    }
    assert store.load("after-save") == profile
    # A profile without [after] is saved without one (the defaults say nothing).
    plain = load_profile(write_profile(tmp_path, "plain", disk_images["vmdk_stream"], "b-1"))
    assert "after" not in plain.to_toml()


def _run_on_a_terminal(env: dict[str, str], *args: str) -> tuple[int, str, bytes]:
    """The CLI with stderr on a pty (stdout a pipe): exit code, stdout, what the terminal got."""
    import os
    import pty
    import subprocess
    import sys

    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tui", *args],
            stdout=subprocess.PIPE, stderr=slave, env=env, text=True,
        )  # fmt: skip
        os.close(slave)
        got = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the process closed its end
                break
            if not chunk:
                break
            got += chunk
        out, _ = proc.communicate(timeout=120)
        return proc.returncode, out, got
    finally:
        os.close(master)


def test_the_end_of_a_run_rings_the_terminal_only_in_text_mode(
    disk_images, sandbox, sandbox_bucket, home, tmp_path
):
    profile = write_profile(tmp_path, "after-bell", disk_images["vmdk_stream"], sandbox_bucket)
    env = {**cli_env(home, tmp_path), "EC2_IMPORT_WIZARD_NOTIFY_AFTER": "0", "TERM": "xterm"}
    env.pop("VTE_VERSION", None)
    code, _, terminal = _run_on_a_terminal(env, "--endpoint-url", sandbox, "run", str(profile),
                                           "--poll", "0.2")  # fmt: skip
    assert code == 0, terminal
    assert terminal.endswith(b"\a\x1b]9;ec2-import-wizard: after-bell completed\a")
    code, out, terminal = _run_on_a_terminal(env, "--endpoint-url", sandbox, "run",
                                             str(profile), "--poll", "0.2", "--json")  # fmt: skip
    assert code == 0, terminal
    assert b"\a" not in terminal and "\a" not in out and "\x1b]" not in out
    # Piped (as every other test here runs it): nothing.
    piped = cli(env, "--endpoint-url", sandbox, "run", str(profile), "--poll", "0.2")
    assert piped.returncode == 0 and "\a" not in piped.stderr
