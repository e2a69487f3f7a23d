"""The account context on every screen, what the preview copies and saves, hints that are not
values, a profile of another region, no credentials, and the saved theme: what the user sees."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from textual.widgets import Label, Select, TabbedContent

from tests.ui import scenarios as S
from tui.core.account import Account
from tui.core.aws import Target
from tui.core.paths import HOME_ENV

LS = S.LS


def header(app: Any) -> str:
    """The header's title, as read (the icon left out)."""
    return " ".join(S.screen_text(app).splitlines()[0].replace("⛁", "").split())


async def test_every_screen_names_the_account_region_and_mode(ui_home: S.Folders) -> None:
    app = S.make_app(ui_home)
    async with app.run_test(size=S.SIZE) as pilot:
        seen = {}
        await S.settle(pilot)
        seen["home"] = header(app)
        await S.to_disk(pilot)
        seen["disk"] = header(app)
        await S.type_into(pilot, "source.path", str(ui_home.disks / "win2012.vmdk"))
        await S.type_into(pilot, "source.bucket", "imports-bucket")
        await pilot.press("ctrl+n")
        await S.settle(pilot)
        seen["spec"] = header(app)
        await S.choose(pilot, f"{LS}.Architecture", "x86_64")
        await pilot.press("ctrl+n")
        await S.settle(pilot)
        seen["platform"] = header(app)
        await pilot.press("ctrl+n")
        await S.settle(pilot)
        seen["preview"] = header(app)
        app.action_tasks()
        await S.settle(pilot)
        seen["tasks"] = header(app)
        assert seen == {
            "home": "ec2-import-wizard — SANDBOX · us-east-1",
            "disk": "1/4 Disk image — SANDBOX · us-east-1",
            "spec": "2/4 Launch specification — SANDBOX · us-east-1",
            "platform": "3/4 Platform — SANDBOX · us-east-1",
            "preview": "4/4 Preview — SANDBOX · us-east-1",
            "tasks": "Conversion tasks — SANDBOX · us-east-1",
        }
        # A switch shows on the screen where it was made, not only at home.
        app.action_switch_account()
        await S.settle(pilot)
        app.screen.query_one("#region", Select).value = "eu-west-1"
        await pilot.click("#ok")
        await S.settle(pilot)
        assert header(app) == "Conversion tasks — SANDBOX · eu-west-1"


async def test_without_credentials_home_says_so(ui_home: S.Folders, no_aws: Path) -> None:
    """No `default credentials`, no `region from AWS config`: neither is there."""
    session = S.make_session()
    app = S.ScenarioApp(session, ui_home, blink=False, warm_up=False, start_dir=ui_home.disks)
    async with app.run_test(size=S.SIZE) as pilot:
        await S.until(pilot, lambda: "no credentials" in S.screen_text(app))
        text = S.screen_text(app)
        assert header(app) == (
            "ec2-import-wizard — AWS · no credentials found · us-east-1 (default)"
        )
        assert "Account: AWS · no credentials found · us-east-1 (default)" in text
        assert "default credentials" not in text and "AWS config" not in text


async def test_with_credentials_and_a_configured_region_home_says_which(
    ui_home: S.Folders, no_aws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (no_aws / "config").write_text("[default]\nregion = eu-west-1\n")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    app = S.ScenarioApp(
        S.make_session(), ui_home, blink=False, warm_up=False, start_dir=ui_home.disks
    )
    async with app.run_test(size=S.SIZE) as pilot:
        await S.until(pilot, lambda: "eu-west-1" in header(app))
        assert header(app) == "ec2-import-wizard — AWS · default credentials · eu-west-1"


class NoCredentialsAccount(S.FakeAccount):
    """Every call fails as boto3 fails without credentials."""

    def _check(self) -> None:
        from botocore.exceptions import NoCredentialsError

        from tui.core.aws import map_error

        raise map_error(NoCredentialsError())


async def test_without_credentials_the_fix_is_shown_whole(ui_home: S.Folders) -> None:
    """The tasks and disk screens said `run \\`aws` and `set AWS_)`: cut mid-word."""
    app = S.make_app(ui_home, account=NoCredentialsAccount())
    async with app.run_test(size=S.SIZE) as pilot:
        await S.to_disk(pilot)
        hint = app.screen.query_one("#f-source-bucket .field-hint", Label)
        assert " ".join(str(hint.render()).split()) == (
            "cannot list buckets: NoCredentials: no AWS credentials found: run `aws configure`, set "
            "AWS_PROFILE, or use --sandbox; type the name"
        )
        assert hint.size.height == 3  # wrapped, not cut
        app.action_tasks()
        await S.until(pilot, lambda: "cannot list the tasks" in S.screen_text(app))
        pane = S.screen_text(app).split("Detail", 1)[1].split("╮", 1)[1]
        detail = " ".join(pane.replace("│", " ").split())
        assert detail.startswith(
            "Cannot list the conversion tasks: NoCredentials: no AWS credentials found: run "
            "`aws configure`, set AWS_PROFILE, or use --sandbox ╰"
        )


async def test_copy_says_what_it_did_and_Y_saves_each_tab(
    ui_home: S.Folders, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMUX", "/tmp/tmux-1000/default,4242,0")
    app = S.make_app(ui_home)
    copied = Path(os.environ[HOME_ENV]) / "cache" / "copied"
    async with app.run_test(size=S.SIZE, notifications=True) as pilot:
        await S.to_preview(pilot)
        assert "Endpoint http://127.0.0.1:1 (sandbox) · us-east-1 · " in S.screen_text(app)
        await pilot.press("y")
        await S.settle(pilot)
        assert S.toasts(app)[-1] == (
            "Copy\nSent the request (redacted) to the terminal's clipboard, if it "
            "accepts OSC 52.\ntmux passes it on only with `set -g set-clipboard on`.\n"
            "Nothing to paste? Y saves it to a file."
        )
        assert not copied.exists()  # y alone writes no file
        tabs = app.screen.query_one("#preview-tabs", TabbedContent)
        saved: dict[str, str] = {}
        for tab, name in (
            ("lines", "request.txt"),
            ("json", "boto3-params.json"),
            ("url", "get-url.txt"),
            ("manifest", "manifest.xml"),
        ):
            tabs.active = tab
            await S.settle(pilot)
            await pilot.press("y")
            await S.settle(pilot)
            clipboard = app.clipboard
            await pilot.press("Y")
            await S.until(pilot, lambda name=name: (copied / name).exists())
            await S.settle(pilot)
            assert S.toasts(app)[-1].endswith(f"is in {copied / name}")
            saved[tab] = (copied / name).read_text()
            assert saved[tab] == clipboard + "\n"  # the file holds what the copy sent
            assert (copied / name).stat().st_mode & 0o777 == 0o600
    assert saved["lines"].startswith("Action=ImportInstance\nVersion=2016-11-15\n")
    boto3_params = json.loads(saved["json"])
    assert "endpoint" not in boto3_params and "params" not in boto3_params
    assert boto3_params["LaunchSpecification"]["InstanceType"] == "m5.large"
    url = urlsplit(saved["url"].strip())
    assert (url.scheme, url.netloc, url.path) == ("http", "127.0.0.1:1", "/")
    assert url.query.startswith("Action=ImportInstance&Version=2016-11-15&")
    assert saved["manifest"].startswith("<?xml")  # the XML alone, not the line above it


async def test_placeholders_are_hints_from_this_account(ui_home: S.Folders) -> None:
    app = S.make_app(ui_home)
    async with app.run_test(size=S.SIZE) as pilot:
        await S.to_disk(pilot)
        text = S.screen_text(app)
        assert "(none) e.g. imports/" in text  # blank is what is sent
        await S.type_into(pilot, "source.path", str(ui_home.disks / "win2012.vmdk"))
        await S.type_into(pilot, "source.bucket", "imports-bucket")
        await pilot.press("ctrl+n")
        await S.settle(pilot)
        text = S.screen_text(app)
        assert "e.g. us-east-1a" in text  # the first zone the account listed
        assert "e.g. use1-az1" in text  # us-east-1a's id in this account
        assert "e.g. 10.0.0.5" in text
        await S.type_into(pilot, f"{LS}.SubnetId", "subnet-0e1f2a3b")
        assert "e.g. 10.0.2.10" in S.screen_text(app)  # inside 10.0.2.0/24
        await S.choose(pilot, f"{LS}.Architecture", "x86_64")
        await pilot.press("ctrl+n")
        await S.settle(pilot)
        await pilot.press("ctrl+n")
        await S.settle(pilot)
        # No prefix typed: the keys have none, as the hint said.
        assert "s3://imports-bucket/RUN-ID/win2012.vmdkmanifest.xml" in S.screen_text(app)


class RegionAccount(S.FakeAccount):
    """The canned account, in the region of its session."""

    def __init__(self, region: str = "eu-west-1", **kw: Any):
        super().__init__(label=f"SANDBOX · {region}", **kw)
        target = Target(region=region, endpoint_url="http://127.0.0.1:1", sandbox=True)
        Account.__init__(self, lambda: target, self.label)


def lab_profile(folders: S.Folders) -> None:
    from tui.core.profiles import ProfileStore, parse_profile

    text = (
        'name = "lab"\n[aws]\nregion = "us-east-1"\n'
        f'[source]\npath = "{folders.disks / "win2012.vmdk"}"\nbucket = "imports-bucket"\n'
        '[request]\nPlatform = "Windows"\n[request.LaunchSpecification]\n'
        'Architecture = "x86_64"\nSubnetId = "subnet-0a1b2c3d"\nGroupIds = ["sg-0123abcd"]\n'
        '[request.LaunchSpecification.Placement]\nAvailabilityZone = "us-east-1a"\n'
    )
    ProfileStore(folders.profiles).save(parse_profile(text, "lab"))


async def open_lab(pilot: Any) -> None:
    await S.settle(pilot)
    app = pilot.app
    app.screen.reload(select="lab")
    await S.until(pilot, lambda: app.screen.selected() == "lab")
    await pilot.press("enter")
    await S.until(pilot, lambda: app.screen.query("#choice-switch"))
    await S.settle(pilot)


async def test_a_profile_of_another_region_opens_only_once_asked(
    ui_home: S.Folders, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tui.app

    lab_profile(ui_home)
    monkeypatch.setattr(
        tui.app, "make_account", lambda session: RegionAccount(session.region or "us-east-1")
    )
    app = S.make_app(ui_home, account=RegionAccount("eu-west-1"))
    async with app.run_test(size=S.SIZE, notifications=True) as pilot:
        await open_lab(pilot)
        text = str(app.screen.query_one(".dialog-message", Label).render())
        assert (
            "lab was saved for us-east-1; the wizard is on eu-west-1. Its SubnetId, GroupIds, "
            "AvailabilityZone exist there only."
        ) in text
        await pilot.click("#choice-stay")
        await S.settle(pilot)
        assert app.screen.sub_title == "1/4 Disk image"
        assert app.state.draft.get("aws.region") == "eu-west-1"
        assert app.state.draft.get(f"{LS}.SubnetId") is None
        assert app.state.draft.get(f"{LS}.GroupIds") is None
        assert app.state.draft.get(f"{LS}.Architecture") == "x86_64"  # the rest is kept
        assert (
            "Opened on eu-west-1\nLeft out (they exist in us-east-1 only): SubnetId, GroupIds, "
            "AvailabilityZone"
        ) in S.toasts(app)

        app.action_profiles()
        await open_lab(pilot)
        await pilot.click("#choice-switch")
        await S.settle(pilot)
        assert header(app) == "1/4 Disk image — SANDBOX · us-east-1"
        assert app.state.draft.get(f"{LS}.SubnetId") == "subnet-0a1b2c3d"

        app.action_profiles()
        await S.settle(pilot)
        app.screen.reload(select="lab")
        await S.until(pilot, lambda: app.screen.selected() == "lab")
        await pilot.press("enter")  # the same region now: no question
        await S.until(pilot, lambda: app.screen.sub_title == "1/4 Disk image")


def theme_app(folders: S.Folders) -> S.ScenarioApp:
    return S.make_app(folders)


async def test_the_theme_is_kept_for_the_next_start(ui_home: S.Folders) -> None:
    config = ui_home.home / "config.toml"
    app = theme_app(ui_home)
    async with app.run_test(size=S.SIZE) as pilot:
        await S.settle(pilot)
        assert app.theme == "textual-dark"
        # As the palette's "Change theme" does it.
        await pilot.press("ctrl+p")
        await S.settle(pilot)
        await pilot.press(*"theme")
        await S.settle(pilot)
        await pilot.press("enter")
        await S.settle(pilot)
        await pilot.press(*"nord")
        await S.settle(pilot)
        await pilot.press("enter")
        await S.until(pilot, lambda: config.exists())
        await S.settle(pilot)
    assert app.theme == "nord"
    assert config.read_text() == 'theme = "nord"\n'
    again = theme_app(ui_home)
    async with again.run_test(size=S.SIZE) as pilot:
        await S.settle(pilot)
        assert again.theme == "nord"


@pytest.mark.parametrize(
    ("content", "warning"),
    [
        ("theme = [", "not valid TOML"),
        ("theme = 3", "theme: must be a theme's name in quotes; the default is used"),
        ('theme = "no-such-theme"', "theme 'no-such-theme' is not one of "),
        ('theme = "nord"\ncolour = "red"', "unknown setting 'colour' ignored (known: theme)"),
    ],
)
async def test_a_bad_settings_file_is_said_and_kept(
    ui_home: S.Folders, content: str, warning: str
) -> None:
    config = ui_home.home / "config.toml"
    config.write_text(content)
    app = theme_app(ui_home)
    async with app.run_test(size=S.SIZE, notifications=True) as pilot:
        await S.settle(pilot)
        shown = "\n".join(S.toasts(app))
        assert shown.startswith("Settings\n") and warning in shown
        assert app.theme == ("nord" if "colour" in content else "textual-dark")
        if content == "theme = [":
            app.theme = "nord"  # not written over what the user wrote
            await S.until(pilot, lambda: any("Theme not saved" in t for t in S.toasts(app)))
    assert config.read_text() == content  # nothing lost


async def test_after_a_switch_the_preview_and_the_profile_say_the_new_region(
    ui_home: S.Folders, monkeypatch: pytest.MonkeyPatch
) -> None:
    """web-2012 was saved for us-east-1; switched to eu-west-1 in the wizard, the request goes
    there, and the profile saved from the preview says so."""
    import tui.app
    from tui.core.profiles import ProfileStore

    monkeypatch.setattr(
        tui.app, "make_account", lambda session: RegionAccount(session.region or "us-east-1")
    )
    app = S.make_app(ui_home)
    async with app.run_test(size=S.SIZE) as pilot:
        await S.fill_platform(pilot)
        app.state.draft.set("aws.region", "us-east-1")  # as opened from web-2012
        app.use_account(None, "eu-west-1")
        await S.settle(pilot)
        await pilot.press("ctrl+n")
        await S.until(pilot, lambda: "parameters" in S.screen_text(app))
        assert "Endpoint http://127.0.0.1:1 (sandbox) · eu-west-1 · " in S.screen_text(app)
        assert header(app) == "4/4 Preview — SANDBOX · eu-west-1"
        await pilot.press("s")
        await S.settle(pilot)
        app.screen.query_one("#prompt-input").value = "switched"
        await pilot.click("#ok")
        await S.until(pilot, lambda: (ui_home.profiles / "switched.toml").exists())
    profile, _ = ProfileStore(ui_home.profiles).resolve("switched")
    assert profile.aws.region == "eu-west-1"
