"""Every folder the tool creates is 0700, parents included (`mkdir(parents=True, mode=0o700)`
gives the mode to the leaf only); folders that exist already are left as they are."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w

from tui.cli import main
from tui.core.journal import RunLock
from tui.core.profiles import ProfileStore, parse_profile


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the common default, under which a plain mkdir gives 0755
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def outer(tmp_path: Path) -> Path:
    """An existing folder of someone else's, 0755: the tool must not change it."""
    folder = tmp_path / "outer"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    return folder


def test_a_saved_profile_creates_its_home_folders_0700(outer, monkeypatch):
    home = outer / "a" / "b" / "home"
    monkeypatch.setenv("EC2_IMPORT_WIZARD_HOME", str(home))
    profile = parse_profile(
        tomli_w.dumps(
            {
                "name": "private",
                "source": {
                    "manifest_url": "https://s3.amazonaws.com/b/k/m.xml",
                    "format": "VMDK",
                    "bytes": 1,
                    "volume_size": 1,
                },
                "request": {"Platform": "Windows"},
            }
        ),
        "x",
    )
    saved = ProfileStore().save(profile)
    assert saved.parent == home / "profiles"
    assert {str(p.relative_to(outer)): mode(p) for p in saved.parents if outer in p.parents} == {
        "a": 0o700,
        "a/b": 0o700,
        "a/b/home": 0o700,
        "a/b/home/profiles": 0o700,
    }
    assert mode(outer) == 0o755
    assert mode(saved) == 0o600


def test_a_run_record_creates_its_home_folders_0700(outer, tmp_path, monkeypatch, capsys):
    home = outer / "state" / "home"
    monkeypatch.setenv("EC2_IMPORT_WIZARD_HOME", str(home))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAPRIVATE000000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "private-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    image = tmp_path / "disk.raw"
    image.write_bytes(bytes(65536))
    profile = tmp_path / "p.toml"
    profile.write_text(
        tomli_w.dumps(
            {
                "name": "p",
                "aws": {"region": "us-east-1", "endpoint_url": dead},
                "source": {"path": str(image), "bucket": "demo-imports"},
                "request": {"Platform": "Windows"},
            }
        )
    )
    # The run is locked on the way; its record is not written, as the bucket was never reached,
    # and its lock file goes with it: the folders stay, private, and empty.
    assert main(["upload", str(profile)]) == 3
    capsys.readouterr()
    assert list((home / "runs").iterdir()) == []
    assert [mode(p) for p in (outer / "state", home, home / "runs")] == [0o700] * 3
    assert mode(outer) == 0o755
    lock = RunLock(home / "runs" / "x.lock")  # a run's lock, as a recorded run keeps it
    lock.acquire("x")
    lock.release()
    assert mode(home / "runs" / "x.lock") == 0o600


def test_the_demo_image_folder_is_0700(outer):
    from tui.screens.disk import make_demo_image

    image = make_demo_image(outer / "demo" / "images")
    assert image.parent == outer / "demo" / "images"
    assert (mode(outer / "demo"), mode(outer / "demo" / "images")) == (0o700, 0o700)
    assert mode(outer) == 0o755
