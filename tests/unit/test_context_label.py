"""The account context in words (the wizard's header, `tasks --watch`): what boto3 will find,
never a guess. A claim of `default credentials` or `region from AWS config` when there are
neither is what a new user read without credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui.core.session import Options, Session


def test_nothing_configured(no_aws: Path) -> None:
    session = Session()
    assert session.label == "AWS · default credentials · region …"  # before botocore loads
    assert session.context_label() == "AWS · no credentials found · us-east-1 (default)"
    assert session.target().region == "us-east-1"  # what "(default)" says


def test_credentials_and_region_from_the_config(no_aws: Path) -> None:
    (no_aws / "config").write_text("[default]\nregion = eu-west-1\n")
    (no_aws / "credentials").write_text(
        "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    session = Session()
    assert session.context_label() == "AWS · default credentials · eu-west-1"
    assert session.target().region == "eu-west-1"


def test_a_named_profile_without_credentials(no_aws: Path) -> None:
    (no_aws / "config").write_text("[profile lab]\nregion = eu-central-1\n")
    session = Session(Options(aws_profile="lab"))
    assert session.context_label() == "AWS · lab: no credentials · eu-central-1"


def test_flags_win_and_an_endpoint_is_its_own_mode(
    no_aws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    (no_aws / "config").write_text("[default]\nregion = eu-west-1\n")
    session = Session(Options(region="ap-south-1", endpoint_url="http://127.0.0.1:4566"))
    assert session.label == ("ENDPOINT · default credentials · ap-south-1 · http://127.0.0.1:4566")
    assert session.context_label() == session.label


def test_the_sandbox_needs_no_account(no_aws: Path) -> None:
    session = Session(Options(sandbox=True, region="eu-west-1"))
    assert session.label == session.context_label() == "SANDBOX · eu-west-1"
