"""AWS for the tests: credentials, boto3 clients for a local endpoint, the `sandbox` command in a
subprocess, and an import done by hand with plain boto3 (never the project's own client code),
so a test sees what any AWS client would."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------------------------
# Credentials and clients

# For the in-process endpoint (tests/conftest.py's `s3_endpoint`, `aws_env`).
TEST_REGION = "us-east-1"
TEST_CREDENTIALS = {
    "aws_access_key_id": "AKIATESTTESTTEST0000",
    "aws_secret_access_key": "tests-secret-key-must-never-be-written",
}

# For the `sandbox` command in a subprocess (tests/integration/conftest.py).
REGION = "us-east-1"
CREDENTIALS = {
    "aws_access_key_id": "AKIAINTEGRATION00000",
    "aws_secret_access_key": "integration-secret-key-must-never-be-written",
}
SESSION_TOKEN = "integration-session-token-must-never-be-written"
# Every pair the tests sign with against a sandbox, as EC2_IMPORT_WIZARD_SANDBOX_CREDENTIALS
# gives them to it (tests/conftest.py sets it); `cli_home`'s and the benchmarks' pairs too.
SANDBOX_TEST_CREDENTIALS = ",".join(
    f"{key}:{secret}"
    for key, secret in (
        (TEST_CREDENTIALS["aws_access_key_id"], TEST_CREDENTIALS["aws_secret_access_key"]),
        (CREDENTIALS["aws_access_key_id"], CREDENTIALS["aws_secret_access_key"]),
        ("AKIATESTS00000000000", "tests-secret-never-written"),
        ("AKIAPRIVATE000000000", "private-secret"),
        ("AKIABENCHBENCH000000", "bench"),
    )
)
PART_SIZE = 1024 * 1024  # small parts, so a 4 MiB image has several


def make_s3_client(endpoint: str, **config: Any) -> Any:
    """A SigV4, path-style S3 client for a local endpoint (as tui.core.aws.client makes)."""
    import boto3
    from botocore.config import Config

    options: dict[str, Any] = {
        "signature_version": "s3v4",
        "s3": {"addressing_style": "path"},
        "retries": {"mode": "standard", "max_attempts": 3},
        **config,
    }
    return boto3.session.Session(
        region_name=TEST_REGION,
        aws_access_key_id=TEST_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=TEST_CREDENTIALS["aws_secret_access_key"],
    ).client("s3", endpoint_url=endpoint, config=Config(**options))


def client(endpoint: str, service: str, **config: Any) -> Any:
    import boto3
    from botocore.config import Config

    options: dict[str, Any] = {"retries": {"mode": "standard", "max_attempts": 3}, **config}
    if service == "s3":
        options.setdefault("signature_version", "s3v4")
        options.setdefault("s3", {"addressing_style": "path"})
    return boto3.session.Session(region_name=REGION, **CREDENTIALS).client(
        service, endpoint_url=endpoint, config=Config(**options)
    )


# ---------------------------------------------------------------------------------------------
# The `sandbox` command in a subprocess


@dataclass
class SandboxProcess:
    endpoint: str
    proc: subprocess.Popen[str]

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        stderr = self.proc.stderr.read() if self.proc.stderr else ""
        return rc, stderr


def spawn_sandbox(*args: str, env: dict[str, str] | None = None) -> SandboxProcess:
    """Start `ec2-import-wizard sandbox ARGS` on a free port and wait for its endpoint line."""
    cmd = [sys.executable, "-m", "tui", "sandbox", "--port", "0", *args]
    # The sandbox checks signatures: it knows every pair the tests sign with.
    known = {"EC2_IMPORT_WIZARD_SANDBOX_CREDENTIALS": SANDBOX_TEST_CREDENTIALS}
    full_env = {**os.environ, **known, **(env or {})}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("endpoint: "):
        proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        raise RuntimeError(f"sandbox did not start: {line!r} {err}")
    return SandboxProcess(line.split(" ", 1)[1].strip(), proc)


# ---------------------------------------------------------------------------------------------
# Building an upload by hand: parts, presigned URLs and the manifest (the data format comes
# from tui.core.manifest; everything sent goes through plain boto3)


@dataclass
class Upload:
    bucket: str
    manifest_key: str
    manifest_url: str
    image_format: str
    image_bytes: int
    volume_size: int
    manifest_xml: bytes


def presign(s3: Any, method: str, bucket: str, key: str, expires: int = 3600) -> str:
    return str(
        s3.generate_presigned_url(method, Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires)
    )


def prepare_upload(
    s3: Any,
    bucket: str,
    image: Path,
    image_format: str,
    *,
    volume_size: int = 1,
    upload_parts: bool = True,
    upload_manifest: bool = True,
    part_size: int = PART_SIZE,
    prefix: str | None = None,
    manifest_expires: int = 3600,
) -> Upload:
    from tui.core.manifest import Manifest, ManifestPart, plan_parts

    data = image.read_bytes()
    prefix = prefix or f"imports/{random.randrange(16**8):08x}"
    parts = []
    for index, (start, end) in enumerate(plan_parts(len(data), part_size)):
        key = f"{prefix}/{image.name}.part{index}"
        if upload_parts:
            s3.put_object(Bucket=bucket, Key=key, Body=data[start : end + 1])
        parts.append(
            ManifestPart(
                index=index,
                start=start,
                end=end,
                key=key,
                head_url=presign(s3, "head_object", bucket, key),
                get_url=presign(s3, "get_object", bucket, key),
                delete_url=presign(s3, "delete_object", bucket, key),
            )
        )
    manifest_key = f"{prefix}/{image.name}manifest.xml"
    manifest = Manifest(
        file_format=image_format,
        size=len(data),
        volume_size=volume_size,
        parts=parts,
        self_destruct_url=presign(s3, "delete_object", bucket, manifest_key),
    )
    xml = manifest.to_xml()
    if upload_manifest:
        s3.put_object(Bucket=bucket, Key=manifest_key, Body=xml)
    return Upload(
        bucket=bucket,
        manifest_key=manifest_key,
        manifest_url=presign(s3, "get_object", bucket, manifest_key, manifest_expires),
        image_format=image_format,
        image_bytes=len(data),
        volume_size=volume_size,
        manifest_xml=xml,
    )


def import_instance(ec2: Any, upload: Upload, **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "Platform": "Windows",
        "LaunchSpecification": {"Architecture": "x86_64", "InstanceType": "m1.xlarge"},
        "DiskImages": [
            {
                "Image": {
                    "Format": upload.image_format,
                    "Bytes": upload.image_bytes,
                    "ImportManifestUrl": upload.manifest_url,
                },
                "Volume": {"Size": upload.volume_size},
            }
        ],
        **extra,
    }
    return dict(ec2.import_instance(**params)["ConversionTask"])


def describe_task(ec2: Any, task_id: str) -> dict[str, Any]:
    return dict(ec2.describe_conversion_tasks(ConversionTaskIds=[task_id])["ConversionTasks"][0])


def wait_task(
    ec2: Any,
    task_id: str,
    until: Callable[[dict[str, Any]], bool] = lambda t: t["State"] in ("completed", "cancelled"),
    timeout: float = 20.0,
    interval: float = 0.05,
    seen: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        task = describe_task(ec2, task_id)
        if seen is not None:
            seen.append(task)
        if until(task):
            return task
        if time.monotonic() > deadline:
            raise AssertionError(f"task {task_id} still {task['State']}: {task}")
        time.sleep(interval)


def cancel_quietly(ec2: Any, task_id: str) -> None:
    from botocore.exceptions import ClientError

    with contextlib.suppress(ClientError):  # already finished: nothing to cancel
        ec2.cancel_conversion_task(ConversionTaskId=task_id)
