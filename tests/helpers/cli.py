"""The `ec2-import-wizard` command as the tests run it: in a subprocess, with a home folder and
the integration credentials of their own; what it prints (JSON events) and what it leaves (run
records, uploaded parts, conversion tasks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import tomli_w

from tests.helpers.aws import CREDENTIALS, REGION


def write_profile(folder: Path, name: str, image: Path, bucket: str, **source: Any) -> Path:
    data = {
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
    path = folder / f"{name}.toml"
    path.write_text(tomli_w.dumps(data))
    return path


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
