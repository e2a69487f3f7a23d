"""Quitting during an upload asks first, records the run as interrupted, and a later wizard
resumes it from Recent runs to a completed task (a real sandbox behind a slow link)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, DataTable

from tests.helpers.aws import CREDENTIALS, client, spawn_sandbox
from tests.helpers.cli import write_profile
from tests.helpers.disks import with_mbr
from tests.helpers.netproxy import NetProxy
from tests.ui import scenarios as S
from tui.app import WizardApp
from tui.core.profiles import load_profile
from tui.screens.dialogs import ConfirmScreen
from tui.screens.run import RunScreen
from tui.screens.submit import SubmitScreen

pytest.importorskip("moto")

IMAGE_BYTES = 30 << 20  # three 10 MiB parts at 3 MiB/s: about 10 s of upload to quit in


@pytest.fixture
def slow_link(ui_folders: S.Folders, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A sandbox in its own process (it outlives each wizard) behind a 3 MiB/s link."""
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["aws_secret_access_key"])
    monkeypatch.setenv("AWS_CONFIG_FILE", str(ui_folders.home / "no-aws-config"))
    sandbox = spawn_sandbox("--rate", str(256 << 20))
    try:
        with NetProxy(sandbox.endpoint, lifetime=300) as proxy:
            proxy.bandwidth(3 << 20, shared=True)
            yield proxy.url
    finally:
        sandbox.stop()


def record(home: Path) -> dict[str, Any]:
    (path,) = (home / "runs").glob("*.json")
    return dict(json.loads(path.read_text()))


async def test_quit_during_upload_then_resume_from_recent_runs(
    ui_folders: S.Folders, slow_link: str
) -> None:
    ui_folders.disks.mkdir(parents=True, exist_ok=True)
    image = ui_folders.disks / "big.raw"
    image.write_bytes(with_mbr(os.urandom(IMAGE_BYTES)))  # a partition table, for the preflight
    s3, ec2 = client(slow_link, "s3"), client(slow_link, "ec2")
    s3.create_bucket(Bucket="quit-bucket")
    ui_folders.home.mkdir(parents=True, exist_ok=True)
    profile_path = write_profile(ui_folders.home, "quitter", image, "quit-bucket")
    session = S.make_session("--endpoint-url", slow_link, "--region", "us-east-1")

    # 1. Start the import, quit while it uploads: asked first, then stopped and recorded.
    app = WizardApp(session, blink=False, warm_up=False, poll=0.3)
    async with app.run_test(size=S.SIZE) as pilot:
        await S.settle(pilot)
        run = app.submit(load_profile(profile_path), profile_path)
        await S.until(pilot, lambda: run.last_upload is not None)
        await pilot.press("ctrl+q")
        await S.until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "still uploading (quitter)" in S.screen_text(app)
        await pilot.press("escape")  # the safe answer: nothing stops
        await pilot.pause()  # (not settle: it would wait for the run's worker to end)
        assert isinstance(app.screen, SubmitScreen) and run.done is None
        await pilot.press("ctrl+q")
        await S.until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        app.screen.query_one("#yes", Button).press()
        await S.until(pilot, lambda: run.done is not None, timeout=20)
    assert app.return_code == 0
    stopped = record(ui_folders.home)
    assert stopped["state"] == "interrupted" and stopped["task_id"] is None
    assert ec2.describe_conversion_tasks()["ConversionTasks"] == []

    # 2. A new wizard: Recent runs -> the run's screen -> Resume, to a completed task.
    app = WizardApp(session, blink=False, warm_up=False, poll=0.3)
    async with app.run_test(size=S.SIZE) as pilot:
        await S.settle(pilot)
        runs = app.screen.query_one("#runs", DataTable)
        await S.until(pilot, lambda: runs.row_count == 1 and runs.get_row_at(0)[0])
        runs.focus()
        await pilot.press("enter")
        await S.until(pilot, lambda: isinstance(app.screen, RunScreen))
        await S.until(pilot, lambda: "interrupted" in S.screen_text(app))
        assert stopped["run_id"] in S.screen_text(app)
        await pilot.press("u")
        await S.until(pilot, lambda: bool(app.state.runs))
        (resumed,) = app.state.runs.values()
        try:
            await S.until(pilot, lambda: resumed.done is not None, timeout=60)
        except AssertionError:
            raise AssertionError(f"not done: {resumed.log} on {app.screen}") from None
        assert resumed.run_id == stopped["run_id"]
        assert getattr(resumed.done, "state", None) == "completed", resumed.log
    done = record(ui_folders.home)
    assert done["state"] == "completed"
    tasks = ec2.describe_conversion_tasks()["ConversionTasks"]
    assert [t["ConversionTaskId"] for t in tasks] == [done["task_id"]]
