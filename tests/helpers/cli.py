"""The `ec2-import-wizard` command as the tests run it: in a subprocess, with a home folder and
the integration credentials of their own; what it prints (JSON events) and what it leaves (run
records, uploaded parts, conversion tasks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tomli_w

from tests.helpers.aws import CREDENTIALS, REGION


def write_profile(
    folder: Path,
    name: str,
    image: Path,
    bucket: str,
    *,
    after: dict[str, Any] | None = None,
    **source: Any,
) -> Path:
    """A profile file; `source` keys over the defaults, `after` its [after] table."""
    data: dict[str, Any] = {
        "name": name,
        "aws": {"region": REGION},
        "source": {"path": str(image), "bucket": bucket, "key_prefix": "imports", **source},
        "request": {
            "Platform": "Windows",
            "Description": f"test {name}",
            "LaunchSpecification": {
                "Architecture": "x86_64",
                "InstanceType": "m5.large",
                "Placement": {"AvailabilityZone": "us-east-1a"},
            },
        },
    }
    if after is not None:
        data["after"] = after
    path = folder / f"{name}.toml"
    path.write_text(tomli_w.dumps(data))
    return path


# For the tests that read the upload back from S3 once the import completed: the default
# [after] cleanup = "on-success" would have deleted it (tests/integration/test_after.py).
KEEP_UPLOAD = {"cleanup": "never"}


def cli_env(home: Path, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        EC2_IMPORT_WIZARD_HOME=str(home),
        AWS_ACCESS_KEY_ID=CREDENTIALS["aws_access_key_id"],
        AWS_SECRET_ACCESS_KEY=CREDENTIALS["aws_secret_access_key"],
        AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-aws-credentials"),
    )
    return env


def cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def records(home: Path) -> list[dict[str, Any]]:
    runs = home / "runs"
    return [json.loads(p.read_text()) for p in runs.glob("*.json")] if runs.is_dir() else []


def reassemble(s3: Any, bucket: str, manifest_key: str) -> bytes:
    from tui.core.manifest import parse_manifest

    manifest = parse_manifest(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    return b"".join(s3.get_object(Bucket=bucket, Key=p.key)["Body"].read() for p in manifest.parts)


def tasks_for(ec2: Any, manifest_key: str) -> list[dict[str, Any]]:
    found = []
    for task in ec2.describe_conversion_tasks()["ConversionTasks"]:
        for vol in task.get("ImportInstance", {}).get("Volumes", []):
            if manifest_key in vol["Image"]["ImportManifestUrl"]:
                found.append(task)
    return found


def start_cli(env: dict[str, str], endpoint: str, *args: str) -> subprocess.Popen[str]:
    """`ec2-import-wizard --endpoint-url ENDPOINT ARGS` in a subprocess, pipes open."""
    return subprocess.Popen(
        [sys.executable, "-m", "tui", "--endpoint-url", endpoint, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


class LiveRun:
    """A CLI process printing JSON Lines, read on a thread as they come, so a test can wait for
    an event with a time bound (a hung process never hangs the test) and still see them all."""

    def __init__(self, proc: subprocess.Popen[str]):
        self.proc = proc
        self.events: list[dict[str, Any]] = []
        self.stderr = ""
        self._cond = threading.Condition()
        self._done = False
        self._threads = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip():
                with self._cond:
                    try:
                        self.events.append(json.loads(line))
                    except ValueError:
                        self.events.append({"event": "not-json", "line": line})
                    self._cond.notify_all()
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()

    def wait_event(self, pred: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        """The first event matching `pred`; AssertionError if the output ends or time runs out."""
        deadline = time.monotonic() + timeout
        with self._cond:
            seen = 0
            while True:
                for event in self.events[seen:]:
                    if pred(event):
                        return event
                seen = len(self.events)
                left = deadline - time.monotonic()
                if self._done or left <= 0:
                    why = "its output ended" if self._done else f"{timeout:g} s passed"
                    raise AssertionError(f"no such event ({why}): {self.events[-5:]}")
                self._cond.wait(left)

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None if the process still runs after `timeout` seconds."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        for t in self._threads:
            t.join(timeout=10)
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait(30)


def no_preflight() -> tuple[str, ...]:
    """`--skip-check` for every check, for the transport tests: their seeded faults pick
    connections by order, which the preflight's own connections would move (the preflight
    has its own tests, tests/integration/test_preflight.py)."""
    from tui.core.preflight import check_ids

    return tuple(arg for check in check_ids() for arg in ("--skip-check", check))
