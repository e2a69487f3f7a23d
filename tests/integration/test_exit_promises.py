"""Exit 2 means nothing was sent or written: every input check runs before the first record
and the first byte. A change of the image while its parts are sent is its own failure (exit 1,
resumable), never "bad input". Real CLI processes against the sandbox, checked on disk."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli import cli, cli_env, events, records, start_cli, write_profile
from tests.helpers.disks import with_mbr


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_a_missing_bucket_exits_2_and_leaves_no_record(sandbox, home, tmp_path):
    image = tmp_path / "disk.raw"
    image.write_bytes(with_mbr(os.urandom(2 << 20)))
    profile = write_profile(tmp_path, "nobucket", image, "no-such-bucket-for-this-run")
    env = cli_env(home, tmp_path)
    for _ in range(2):  # and not one record per try
        done = cli(env, "--endpoint-url", sandbox, "run", str(profile), "--json")
        assert done.returncode == 2, done.stderr
        (error,) = [e for e in events(done.stdout) if e["event"] == "error"]
        assert "source.bucket" in error["message"] and "does not exist" in error["message"]
    assert records(home) == []


def _uploading(env: dict[str, str], endpoint: str, profile: Path) -> subprocess.Popen[str]:
    """`run` of 1 MiB parts one at a time, returned after its second part is in S3."""
    proc = start_cli(env, endpoint, "run", str(profile), "--json", "--part-size", "1",
                     "--workers", "1", "--poll", "0.2")  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "upload" and event["parts_done"] >= 2:
            return proc
    raise AssertionError(f"the run ended before 2 parts: {proc.communicate()}")


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda f: f.truncate(3 << 20), "shrank"),
        (lambda f: (f.seek(0, 2), f.write(b"\1" * (1 << 20))), "changed"),
    ],
    ids=["shrinks", "grows"],
)
def test_an_image_changed_mid_upload_is_exit_1_and_resumable(
    sandbox: str, sandbox_bucket: str, home: Path, tmp_path: Path, change: Any, said: str
) -> None:
    image = tmp_path / "moving.raw"
    image.write_bytes(with_mbr(os.urandom(24 << 20)))
    profile = write_profile(tmp_path, "moving", image, sandbox_bucket)
    env = cli_env(home, tmp_path)
    proc = _uploading(env, sandbox, profile)
    with image.open("r+b") as f:
        change(f)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    (error,) = [e for e in events(out) if e["event"] == "error"]
    assert f"the image {said} while it was being uploaded" in error["message"]
    assert "source.path" in error["message"] and "Traceback" not in err
    (record,) = records(home)
    assert record["state"] == "interrupted" and record["task_id"] is None
