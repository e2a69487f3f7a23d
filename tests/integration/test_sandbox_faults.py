"""Faults, task expiry and the `sandbox` command's own behaviour (signals, bad options)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.helpers.aws import (
    client,
    import_instance,
    prepare_upload,
    spawn_sandbox,
    wait_task,
)


@pytest.fixture(scope="module")
def always_failing() -> Iterator[str]:
    sb = spawn_sandbox("--faults", "s3-put=1,throttle=1", "--rate", "1e9")
    try:
        yield sb.endpoint
    finally:
        sb.stop()


@pytest.fixture(scope="module")
def flaky() -> Iterator[str]:
    sb = spawn_sandbox(
        "--faults",
        "s3-put=0.3, throttle=0.3",
        "--rate",
        "1e9",
        env={"EC2_IMPORT_WIZARD_SANDBOX_SEED": "7"},
    )
    try:
        yield sb.endpoint
    finally:
        sb.stop()


def test_throttled_ec2_calls_are_request_limit_exceeded_on_503(always_failing: str) -> None:
    once = client(always_failing, "ec2", retries={"mode": "standard", "total_max_attempts": 1})
    with pytest.raises(ClientError) as exc:
        once.describe_conversion_tasks()
    err = exc.value.response
    assert err["Error"]["Code"] == "RequestLimitExceeded"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 503
    # boto3 treats it as throttling and retries, as against AWS; moto's own actions too.
    thrice = client(always_failing, "ec2", retries={"mode": "standard", "total_max_attempts": 3})
    with pytest.raises(ClientError) as exc:
        thrice.describe_instances()
    assert exc.value.response["Error"]["Code"] == "RequestLimitExceeded"
    assert exc.value.response["ResponseMetadata"]["RetryAttempts"] == 2


def test_failed_part_puts_are_s3_internal_errors(always_failing: str) -> None:
    s3 = client(always_failing, "s3", retries={"mode": "standard", "total_max_attempts": 2})
    s3.create_bucket(Bucket="faulty")
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="faulty", Key="imports/x/disk.vmdk.part0", Body=b"x" * 100_000)
    assert exc.value.response["Error"]["Code"] == "InternalError"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert exc.value.response["ResponseMetadata"]["RetryAttempts"] == 1
    # Only part objects fail: the manifest and everything else go through.
    s3.put_object(Bucket="faulty", Key="imports/x/disk.vmdkmanifest.xml", Body=b"<manifest/>")
    body = s3.get_object(Bucket="faulty", Key="imports/x/disk.vmdkmanifest.xml")["Body"].read()
    assert body == b"<manifest/>"


def test_an_import_completes_through_faults_with_sdk_retries(
    flaky: str, disk_images: dict[str, Any]
) -> None:
    retries = {"mode": "standard", "max_attempts": 10}
    s3 = client(flaky, "s3", retries=retries)
    ec2 = client(flaky, "ec2", retries=retries)
    s3.create_bucket(Bucket="flaky")
    upload = prepare_upload(s3, "flaky", disk_images["raw"], "RAW", part_size=256 * 1024)
    task = import_instance(ec2, upload)
    assert wait_task(ec2, task["ConversionTaskId"])["State"] == "completed"
    # And the faults did happen: a raw client without retries sees them.
    bare = client(flaky, "ec2", retries={"mode": "standard", "total_max_attempts": 1})
    codes = set()
    for _ in range(30):
        try:
            bare.describe_conversion_tasks()
            codes.add("ok")
        except ClientError as exc:
            codes.add(exc.response["Error"]["Code"])
    assert codes == {"ok", "RequestLimitExceeded"}


def test_a_task_whose_manifest_never_comes_expires(disk_images: dict[str, Any]) -> None:
    sb = spawn_sandbox("--rate", "1e9", env={"EC2_IMPORT_WIZARD_SANDBOX_TASK_TTL": "1.5"})
    try:
        s3, ec2 = client(sb.endpoint, "s3"), client(sb.endpoint, "ec2")
        s3.create_bucket(Bucket="late")
        upload = prepare_upload(s3, "late", disk_images["raw"], "RAW", upload_manifest=False)
        task = import_instance(ec2, upload)
        done = wait_task(ec2, task["ConversionTaskId"], timeout=10)
        assert done["State"] == "cancelled"
        assert done["StatusMessage"].startswith("ClientError: ")
        assert "expired" in done["StatusMessage"]
    finally:
        sb.stop()


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("foo=1", "'foo=1': unknown fault 'foo'"),
        ("s3-put=2", "'s3-put=2': share must be between 0 and 1"),
        ("throttle", "'throttle': expected NAME=SHARE"),
        ("throttle=lots", "'lots' is not a number"),
        ("throttle-first=0.5", "'0.5' is not a count of calls"),
    ],
)
def test_bad_fault_specs_exit_2_naming_the_item(spec: str, says: str) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "tui", "sandbox", "--faults", spec],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 2
    assert says in run.stderr
    assert "Traceback" not in run.stderr
    assert run.stdout == ""


@pytest.mark.parametrize(("sig", "rc"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_the_command_stops_cleanly_on_signals(sig: int, rc: int) -> None:
    sb = spawn_sandbox()
    client(sb.endpoint, "s3").list_buckets()  # serving
    code, stderr = sb.stop(sig)
    assert code == rc
    assert "Traceback" not in stderr
