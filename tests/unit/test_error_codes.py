"""Every error prints its code once: AWS's or ours, never restated by the message after it
("NetworkError: network error: ...")."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import tomli_w

from tui.cli import main
from tui.core.errors import AwsError


def profile_file(tmp_path: Path, endpoint: str) -> Path:
    image = tmp_path / "disk.raw"
    image.write_bytes(bytes(65536))
    data = {
        "name": "codes",
        "aws": {"region": "us-east-1", "endpoint_url": endpoint},
        "source": {"path": str(image), "bucket": "demo-imports"},
        "request": {"Platform": "Windows"},
    }
    path = tmp_path / "codes.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _once(code: str, text: str) -> bool:
    """Whether `code` is said once in `text`, spelt as a code or in words ("network error")."""
    return re.sub(r"[\s_-]", "", text.lower()).count(code.lower()) == 1


def test_a_network_error_prints_its_code_once(tmp_path, cli_home, dead_endpoint, capsys):
    profile = profile_file(tmp_path, dead_endpoint)
    code, _, err = cli(capsys, "upload", str(profile))
    assert code == 3
    line = err.splitlines()[-1]
    assert line.startswith("error: NetworkError: Could not connect to the endpoint URL"), line
    assert _once("NetworkError", line), line

    code, out, _ = cli(capsys, "upload", str(profile), "--json")
    error = json.loads(out.splitlines()[-1])
    assert (error["event"], error["code"], error["exit_code"]) == ("error", "NetworkError", 3)
    assert error["message"].startswith("Could not connect"), error

    code, _, err = cli(capsys, "--endpoint-url", dead_endpoint, "tasks")
    assert code == 3
    assert err.startswith("ec2-import-wizard: error: NetworkError: Could not connect"), err
    assert _once("NetworkError", err), err


def test_a_message_that_restates_its_code_prints_it_once():
    # Messages are often built from another error's text, which may carry the code already.
    assert (
        str(AwsError("NetworkError: timed out", code="NetworkError")) == "NetworkError: timed out"
    )
    assert str(AwsError("network error: timed out", code="NetworkError")) == (
        "NetworkError: timed out"
    )
    located = AwsError("NetworkError: timed out", code="NetworkError", field="source.bucket")
    assert str(located) == "NetworkError: source.bucket: timed out"
    assert str(AwsError("AccessDenied here", code="AccessDenied")) == (
        "AccessDenied: AccessDenied here"  # not a restatement: said in a sentence
    )
