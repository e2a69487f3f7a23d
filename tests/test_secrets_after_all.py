"""After the whole suite: no file the project wrote (profiles, run records, snapshots,
screenshots, anything under the tests' temp folders) holds a presigned signature, a secret key or
a session token, and state files are private (mode 0600)."""

from __future__ import annotations

import json
import re
import stat
import tempfile
from pathlib import Path

import pytest

from tests.helpers.aws import CREDENTIALS, SESSION_TOKEN, TEST_CREDENTIALS
from tui.core.aws import SANDBOX_CREDENTIALS

REPO = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".json", ".toml", ".svg", ".txt", ".log", ".xml", ".html", ".md", ".out"}
SECRETS = {
    TEST_CREDENTIALS["aws_secret_access_key"],
    CREDENTIALS["aws_secret_access_key"],
    SESSION_TOKEN,
    SANDBOX_CREDENTIALS[1],
    "corpus-secret-never-written",
}
LEAKS = [
    re.compile(r"X-Amz-Signature=[0-9a-f]{64}"),
    re.compile(r"X-Amz-Credential=AKIA"),
    re.compile(r"X-Amz-Security-Token=(?!REDACTED)[^&\s\"<]{8,}"),
    re.compile(r"[?&]Signature=(?!REDACTED)[A-Za-z0-9%+/=]{16,}"),  # SigV2
]


def written_files(roots: list[Path]) -> list[Path]:
    found = []
    for root in roots:
        if root.is_dir():
            found += [
                p
                for p in root.rglob("*")
                if p.is_file() and p.suffix in TEXT_SUFFIXES and p.stat().st_size < 8 << 20
            ]
    return found


def is_state_file(path: Path, text: str) -> bool:
    if path.suffix == ".json" and path.parent.name == "runs":
        return True
    if (
        path.suffix == ".toml"
        and path.parent.name == "profiles"
        and path.parent.parent.name == "home"
    ):
        return True
    try:
        data = json.loads(text) if path.suffix == ".json" else None
    except ValueError:
        return False
    return isinstance(data, dict) and {"run_id", "profile_name", "state"} <= data.keys()


def scan(roots: list[Path]) -> tuple[list[str], list[str], int, int]:
    """(leaks, loose state files, files scanned, state files seen)."""
    files = written_files(roots)
    leaks, loose, state_files = [], [], 0
    for path in files:
        text = path.read_text(errors="replace")
        for pattern in LEAKS:
            for m in pattern.finditer(text):
                if "EXAMPLE" not in text[m.start() : m.end() + 40]:  # the AWS docs' sample URL
                    leaks.append(f"{path}: {m.group(0)[:60]}")
        leaks += [f"{path}: a secret key or token" for s in SECRETS if s in text]
        if is_state_file(path, text):
            state_files += 1
            if stat.S_IMODE(path.stat().st_mode) != 0o600:
                loose.append(f"{path}: mode {oct(stat.S_IMODE(path.stat().st_mode))}")
    return leaks, loose, len(files), state_files


def test_the_scan_sees_a_planted_leak() -> None:
    # Planted outside pytest's temp folders, so the final scan does not find it.
    with tempfile.TemporaryDirectory() as tmp:
        _check_planted(Path(tmp))


def _check_planted(tmp_path: Path) -> None:
    runs = tmp_path / "home" / "runs"
    runs.mkdir(parents=True)
    (runs / "r.json").write_text('{"run_id": "r", "profile_name": "p", "state": "x"}')
    (tmp_path / "log.txt").write_text("GET /b/k?X-Amz-Signature=" + "ab" * 32)
    (tmp_path / "p.toml").write_text(f'token = "{SESSION_TOKEN}"')
    leaks, loose, scanned, state_files = scan([tmp_path])
    assert scanned == 3 and state_files == 1
    assert len(leaks) == 2 and len(loose) == 1


@pytest.mark.after_all
def test_nothing_written_holds_a_secret(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> None:
    if all(item.path == request.path for item in request.session.items):
        pytest.skip("run with the rest of the suite: it scans what the other tests wrote")
    base = tmp_path_factory.getbasetemp()
    roots = [base, REPO / "tests" / "ui" / "__snapshots__", REPO / "screenshots"]
    leaks, loose, scanned, state_files = scan(roots)
    assert scanned, "nothing to scan: the suite wrote no files?"
    assert not leaks, "\n".join(leaks)
    assert not loose, "\n".join(loose)
    print(f"scanned {scanned} files, {state_files} state files")
