"""Run records as a user meets them: hand-edited or damaged records are named and skipped,
never used; resume checks that the image is the one the run started with; a state folder that
cannot be written (read-only, full, a symlink loop) stops a command before it sends anything.
Real CLI processes against the sandbox over HTTP, checked with boto3 and on disk."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.aws import client
from tests.helpers.cli import cli, cli_env, events, tasks_for, write_profile
from tests.helpers.disks import MIB, make_source_raw, qemu_convert


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def _keys(s3: Any, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def _uploaded(sandbox: str, s3: Any, bucket: str, home: Path, tmp_path: Path, image: Path):
    """`upload` of `image` (1 MiB parts): the run is recorded, its parts are in S3, no task."""
    env = cli_env(home, tmp_path)
    profile = write_profile(tmp_path, image.stem, image, bucket)
    done = cli(env, "--endpoint-url", sandbox, "upload", str(profile), "--json", "--part-size", "1")
    assert done.returncode == 0, done.stderr
    (path,) = (home / "runs").glob("*.json")
    return env, profile, path, json.loads(path.read_text())


# -- damaged records --------------------------------------------------------------------------

DAMAGED: list[tuple[str, Any, str]] = [
    # (case, edit of a good record or the whole text, the field the message must name)
    ("not-an-object", "[1, 2, 3]", "not an object"),
    ("not-json", "{oops", "not valid JSON"),
    ("part-size-zero", {"part_size": 0}, "part_size:"),
    ("part-size-text", {"part_size": "abc"}, "part_size:"),
    ("parts-done-null", {"parts_done": None}, "parts_done:"),
    ("parts-done-out-of-range", {"parts_done": [0, 99]}, "parts_done: part 99 is out of range"),
    ("profile-empty", {"profile": {}}, "profile.name:"),
    ("bucket-null", {"bucket": None}, "bucket: is null"),
    ("state-unknown", {"state": "paused"}, "state:"),
    ("run-id-escapes", {"run_id": "../../x"}, "run_id: '../../x' is not a run id"),
    ("run-id-elsewhere", {"run_id": str(uuid.uuid4())}, "does not match the file name"),
]


def _damage(runs: Path, good: dict[str, Any], edit: Any) -> Path:
    """A copy of `good` under a new run id of its own, damaged by `edit`."""
    run_id = str(uuid.uuid4())
    path = runs / f"{run_id}.json"
    if isinstance(edit, str):
        path.write_text(edit)
    else:
        data = {**good, "run_id": run_id, **edit}
        data["manifest_key"] = good["manifest_key"].replace(good["run_id"], data["run_id"])
        path.write_text(json.dumps(data))
    path.chmod(0o600)  # as a hand edit keeps it
    return path


def test_runs_lists_the_good_runs_and_names_each_damaged_record(
    sandbox, sandbox_bucket, home, tmp_path
):
    s3 = client(sandbox, "s3")
    image = make_source_raw(tmp_path / "good.raw", 3 * MIB)
    env, _, good_path, good = _uploaded(sandbox, s3, sandbox_bucket, home, tmp_path, image)
    damaged = {
        case: (_damage(good_path.parent, good, edit), words) for case, edit, words in DAMAGED
    }

    listed = cli(env, "runs")
    assert listed.returncode == 0, listed.stderr
    assert good["run_id"][:8] in listed.stdout and "uploaded" in listed.stdout
    assert len(listed.stdout.splitlines()) == 2  # the header and the one good run
    skipped = [line for line in listed.stderr.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == len(DAMAGED), listed.stderr
    for path, words in damaged.values():
        line = next(x for x in skipped if x.startswith(f"skipped {path}: "))
        assert words in line
    assert "Traceback" not in listed.stderr

    as_json = cli(env, "runs", "--json")
    assert as_json.returncode == 0, as_json.stderr
    (shown,) = events(as_json.stdout)
    assert shown["run_id"] == good["run_id"]
    # the lines of today's `runs --json`: the record without its profile
    assert set(shown) == {
        "run_id", "profile_name", "profile_origin", "region", "aws_profile", "endpoint_url",
        "sandbox", "image_path", "image_bytes", "image_format", "volume_size", "bucket",
        "manifest_key", "part_size", "parts_total", "parts_done", "task_id", "instance_id",
        "volume_id", "after_done", "state", "interrupted_in", "message", "created_at",
        "updated_at",
    }  # fmt: skip


@pytest.mark.parametrize("case", [c for c, _, _ in DAMAGED])
def test_a_damaged_record_is_refused_by_name_and_never_used(
    case, sandbox, sandbox_bucket, home, tmp_path
):
    s3 = client(sandbox, "s3")
    image = make_source_raw(tmp_path / f"{case}.raw", 2 * MIB)
    env, _, good_path, good = _uploaded(sandbox, s3, sandbox_bucket, home, tmp_path, image)
    edit, words = next((e, w) for c, e, w in DAMAGED if c == case)
    path = _damage(good_path.parent, good, edit)
    before = _keys(s3, sandbox_bucket)

    for command in (("resume", path.stem, "--json", "--poll", "0.2"), ("cleanup", path.stem)):
        done = cli(env, "--endpoint-url", sandbox, *command)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert f"run record {path} is damaged: " in done.stderr and words in done.stderr
        assert "Traceback" not in done.stderr
    assert _keys(s3, sandbox_bucket) == before  # nothing uploaded, nothing deleted
    assert sorted(p.name for p in tmp_path.glob("*.json")) == []  # "../../x" wrote nothing
    assert not (home / "x.json").exists()


# -- the image's identity ---------------------------------------------------------------------


def test_resume_refuses_a_same_size_vhd_put_in_place_of_the_raw(
    sandbox, sandbox_bucket, home, tmp_path
):
    s3, ec2 = client(sandbox, "s3"), client(sandbox, "ec2")
    vhd = qemu_convert(make_source_raw(tmp_path / "src.raw", 3 * MIB), tmp_path / "x.vhd", "vpc",
                       "-o", "subformat=fixed")  # fmt: skip
    image = make_source_raw(tmp_path / "disk.raw", vhd.stat().st_size, seed=1)
    env, _, _, record = _uploaded(sandbox, s3, sandbox_bucket, home, tmp_path, image)
    assert record["image_format"] == "RAW"
    with image.open("r+b") as fh:  # the same file (inode), its bytes now a VHD's
        fh.write(vhd.read_bytes())

    resumed = cli(env, "--endpoint-url", sandbox, "resume", record["run_id"], "--json")
    assert resumed.returncode == 2, resumed.stderr
    assert f"source.path: {image} is not the image run {record['run_id'][:8]} started with" in (
        resumed.stderr
    )
    assert "format RAW -> VHD" in resumed.stderr and "content" in resumed.stderr
    assert "`ec2-import-wizard run PROFILE`" in resumed.stderr
    assert tasks_for(ec2, record["manifest_key"]) == []


def test_resume_refuses_another_file_with_the_same_bytes(sandbox, sandbox_bucket, home, tmp_path):
    s3, ec2 = client(sandbox, "s3"), client(sandbox, "ec2")
    image = make_source_raw(tmp_path / "copied.raw", 2 * MIB)
    env, _, _, record = _uploaded(sandbox, s3, sandbox_bucket, home, tmp_path, image)
    copy = tmp_path / "copy.raw"
    shutil.copyfile(image, copy)
    os.replace(copy, image)  # what an editor's "save" or a restore from backup does

    resumed = cli(env, "--endpoint-url", sandbox, "resume", record["run_id"], "--json")
    assert resumed.returncode == 2, resumed.stderr
    assert "is not the image run" in resumed.stderr and "inode" in resumed.stderr
    assert tasks_for(ec2, record["manifest_key"]) == []


def test_resume_of_a_touched_image_goes_on_and_says_so(sandbox, sandbox_bucket, home, tmp_path):
    s3, ec2 = client(sandbox, "s3"), client(sandbox, "ec2")
    image = make_source_raw(tmp_path / "touched.raw", 2 * MIB)
    env, _, _, record = _uploaded(sandbox, s3, sandbox_bucket, home, tmp_path, image)
    st = image.stat()
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))

    resumed = cli(env, "--endpoint-url", sandbox, "resume", record["run_id"], "--json",
                  "--poll", "0.2")  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    warnings = [e["message"] for e in events(resumed.stdout) if e["event"] == "warning"]
    assert f"{image} was modified since the run started: parts whose bytes changed are sent " \
        "again" in warnings  # fmt: skip
    assert events(resumed.stdout)[-1]["state"] == "completed"
    assert len(tasks_for(ec2, record["manifest_key"])) == 1


def test_a_record_of_an_older_version_resumes_with_a_warning(
    sandbox, sandbox_bucket, home, tmp_path
):
    s3 = client(sandbox, "s3")
    image = make_source_raw(tmp_path / "older.raw", 2 * MIB)
    env, _, path, record = _uploaded(sandbox, s3, sandbox_bucket, home, tmp_path, image)
    path.write_text(json.dumps({k: v for k, v in record.items() if k != "image_identity"}))
    path.chmod(0o600)

    resumed = cli(env, "--endpoint-url", sandbox, "resume", record["run_id"], "--json",
                  "--poll", "0.2")  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    warnings = [e["message"] for e in events(resumed.stdout) if e["event"] == "warning"]
    assert any(w.startswith(f"{image} may have been modified since the run started") for w in
               warnings), warnings  # fmt: skip


# -- a state folder that cannot be written ----------------------------------------------------


@contextmanager
def _mounted(where: Path, *how: str) -> Iterator[None]:
    if os.geteuid() != 0:
        pytest.skip("mounting a read-only or a small file system needs root")
    done = subprocess.run(["mount", *how, str(where)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(where)], check=True)


@contextmanager
def _read_only(folder: Path) -> Iterator[None]:
    with _mounted(folder, "--bind", str(folder)):
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
        yield


def test_cleanup_on_a_read_only_home_deletes_nothing(sandbox, sandbox_bucket, home, tmp_path):
    s3 = client(sandbox, "s3")
    image = make_source_raw(tmp_path / "ro.raw", 3 * MIB)
    env, _, _, record = _uploaded(sandbox, s3, sandbox_bucket, home, tmp_path, image)
    before = _keys(s3, sandbox_bucket)
    assert len(before) == 4  # 3 parts and the manifest

    with _read_only(home):
        refused = cli(env, "--endpoint-url", sandbox, "cleanup", record["run_id"])
        assert refused.returncode == 2, refused.stderr
        assert f"{home / 'runs'}: the run records' folder cannot be written" in refused.stderr
        assert "EC2_IMPORT_WIZARD_HOME" in refused.stderr and "Traceback" not in refused.stderr
        assert _keys(s3, sandbox_bucket) == before

    cleaned = cli(env, "--endpoint-url", sandbox, "cleanup", record["run_id"])
    assert cleaned.returncode == 0, cleaned.stderr
    assert _keys(s3, sandbox_bucket) == []


def test_a_full_state_disk_stops_run_and_cleanup_before_they_send(
    sandbox, sandbox_bucket, home, tmp_path
):
    s3 = client(sandbox, "s3")
    home.mkdir()
    with _mounted(home, "-t", "tmpfs", "-o", "size=1m", "tmpfs"):
        image = make_source_raw(tmp_path / "full.raw", 3 * MIB)
        env, profile, _, record = _uploaded(sandbox, s3, sandbox_bucket, home, tmp_path, image)
        before = _keys(s3, sandbox_bucket)
        fd = os.open(home / "filler", os.O_WRONLY | os.O_CREAT)  # the disk fills up
        try:
            while os.write(fd, bytes(4096)):
                pass
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)
        full = f"{home / 'runs'}: the run records' folder is on a full disk"

        refused = cli(env, "--endpoint-url", sandbox, "cleanup", record["run_id"])
        assert refused.returncode == 2, refused.stderr
        assert full in refused.stderr and "Traceback" not in refused.stderr
        assert _keys(s3, sandbox_bucket) == before

        started = cli(env, "--endpoint-url", sandbox, "run", str(profile), "--json")
        assert started.returncode == 2, started.stderr
        assert full in started.stdout + started.stderr
        assert _keys(s3, sandbox_bucket) == before  # the new run sent no part


def test_a_runs_folder_that_is_a_symlink_loop_is_named_not_hidden(
    sandbox, sandbox_bucket, home, tmp_path
):
    s3 = client(sandbox, "s3")
    image = make_source_raw(tmp_path / "loop.raw", 2 * MIB)
    home.mkdir()
    (home / "runs").symlink_to(home / "runs")
    env = cli_env(home, tmp_path)
    loop = f"{home / 'runs'}: the run records' folder is a loop of symbolic links"

    listed = cli(env, "runs")
    assert listed.returncode == 2, (listed.stdout, listed.stderr)
    assert loop in listed.stderr and "Traceback" not in listed.stderr

    profile = write_profile(tmp_path, "loop", image, sandbox_bucket)
    started = cli(env, "--endpoint-url", sandbox, "run", str(profile), "--json")
    assert started.returncode == 2, started.stderr
    assert loop in started.stdout + started.stderr
    assert _keys(s3, sandbox_bucket) == []
