"""The account context in words (the wizard's header, `tasks --watch`): what boto3 will find,
never a guess. A claim of `default credentials` or `region from AWS config` when there are
neither is what a new user read without credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui.core.session import Options, Session


@pytest.fixture
def aws_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An AWS configuration of the test's own, empty until it writes one."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return tmp_path


def test_nothing_configured(aws_home: Path) -> None:
    session = Session()
    assert session.label == "AWS · default credentials · region …"  # before botocore loads
    assert session.context_label() == "AWS · no credentials found · us-east-1 (default)"
    assert session.target().region == "us-east-1"  # what "(default)" says


def test_credentials_and_region_from_the_config(aws_home: Path) -> None:
    (aws_home / "config").write_text("[default]\nregion = eu-west-1\n")
    (aws_home / "credentials").write_text(
        "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    session = Session()
    assert session.context_label() == "AWS · default credentials · eu-west-1"
    assert session.target().region == "eu-west-1"


def test_a_named_profile_without_credentials(aws_home: Path) -> None:
    (aws_home / "config").write_text("[profile lab]\nregion = eu-central-1\n")
    session = Session(Options(aws_profile="lab"))
    assert session.context_label() == "AWS · lab: no credentials · eu-central-1"


def test_flags_win_and_an_endpoint_is_its_own_mode(
    aws_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    (aws_home / "config").write_text("[default]\nregion = eu-west-1\n")
    session = Session(Options(region="ap-south-1", endpoint_url="http://127.0.0.1:4566"))
    assert session.label == ("ENDPOINT · default credentials · ap-south-1 · http://127.0.0.1:4566")
    assert session.context_label() == session.label


def test_the_sandbox_needs_no_account(aws_home: Path) -> None:
    session = Session(Options(sandbox=True, region="eu-west-1"))
    assert session.label == session.context_label() == "SANDBOX · eu-west-1"
