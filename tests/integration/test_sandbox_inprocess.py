"""The in-process sandbox as `--sandbox` and the other components use it: `tui.sandbox.start()`
and `Session.start_sandbox()`."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from tests.helpers.aws import client
from tui.core.errors import InputError
from tui.core.session import Options, SandboxNotStarted, Session
from tui.sandbox import start_from_env


def test_importing_the_package_loads_neither_moto_nor_werkzeug() -> None:
    code = (
        "import sys, tui.sandbox, tui.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('moto', 'werkzeug', 'boto3')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_start_is_a_context_manager_and_returns_before_moto_loads() -> None:
    import tui.sandbox

    with tui.sandbox.start() as sb:
        assert sb.endpoint.startswith("http://127.0.0.1:")
        assert sb.wait_ready(30)
        s3 = client(sb.endpoint, "s3")
        s3.create_bucket(Bucket="inproc")
        # moto's state is per process, so other in-process sandboxes' buckets may be there too.
        assert "inproc" in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_bad_faults_are_input_errors() -> None:
    import tui.sandbox

    with pytest.raises(InputError) as exc:
        tui.sandbox.start(faults="throttle=0.1,s3-get=0.5")
    assert "'s3-get=0.5'" in str(exc.value)
    assert exc.value.exit_code == 2


def _session() -> Session:
    return Session(Options(sandbox=True), start_sandbox=start_from_env)


def _profile(bucket: str, region: str | None = None) -> Any:
    return SimpleNamespace(
        source=SimpleNamespace(bucket=bucket), aws=SimpleNamespace(region=region)
    )


def _answers(endpoint: str) -> bool:
    try:
        client(endpoint, "s3").list_buckets()
    except EndpointConnectionError:
        return False
    return True


def test_a_session_starts_one_sandbox_and_creates_the_profiles_buckets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("EC2_IMPORT_WIZARD_SANDBOX_FAULTS", raising=False)
    session = _session()
    with pytest.raises(SandboxNotStarted):
        session.target()  # nothing starts behind the caller's back
    try:
        endpoint = session.start_sandbox()
        session.ensure_sandbox_bucket(_profile("first-bucket"))
        session.ensure_sandbox_bucket(_profile("second-bucket", "eu-west-1"))
        assert session.start_sandbox() == endpoint  # once per session
        assert session.with_account(None, "eu-west-1").target().endpoint_url == endpoint
        s3 = client(endpoint, "s3")
        names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
        assert {"first-bucket", "second-bucket"} <= names
        location = s3.get_bucket_location(Bucket="second-bucket")["LocationConstraint"]
        assert location == "eu-west-1"
        assert session.target().endpoint_url == endpoint
    finally:
        session.close()
    assert not _answers(endpoint)


def test_a_session_honours_the_faults_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EC2_IMPORT_WIZARD_SANDBOX_FAULTS", "throttle=1")
    session = _session()
    try:
        endpoint = session.start_sandbox()
        ec2 = client(endpoint, "ec2", retries={"mode": "standard", "total_max_attempts": 1})
        with pytest.raises(ClientError) as exc:
            ec2.describe_conversion_tasks()
        assert exc.value.response["Error"]["Code"] == "RequestLimitExceeded"
    finally:
        session.close()


def test_a_session_rejects_a_bad_faults_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EC2_IMPORT_WIZARD_SANDBOX_FAULTS", "throttle=maybe")
    session = _session()
    with pytest.raises(InputError) as exc:
        session.start_sandbox()
    assert "EC2_IMPORT_WIZARD_SANDBOX_FAULTS" in str(exc.value)
    with pytest.raises(SandboxNotStarted):
        session.target()  # nothing was left half-started
