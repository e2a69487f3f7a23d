"""Pilot tests of the account/region switch and of the "uploaded manifest" source."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Label, Select

from tests.ui import scenarios as S
from tui.widgets.form import FormField

LS = S.LS
FAKE_SIGNATURE = "0" * 64  # the shape of a SigV4 signature, nothing real
MANIFEST_URL = (
    "https://imports-bucket.s3.us-east-1.amazonaws.com/imports/win2012.vmdkmanifest.xml"
    "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=EXAMPLE%2F20261128%2Fus-east-1%2Fs3"
    f"%2Faws4_request&X-Amz-Date=20261128T000000Z&X-Amz-Expires=604800"
    f"&X-Amz-SignedHeaders=host&X-Amz-Signature={FAKE_SIGNATURE}"
)


def context_label(app: Any) -> str:
    return str(app.screen.query_one("#context-label", Label).render())


@pytest.fixture
def aws_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Named profiles the dialog lists, read from a config file of the test's own."""
    config = tmp_path / "config"
    config.write_text(
        "[default]\nregion = us-east-1\n[profile lab]\nregion = eu-west-1\n[profile prod]\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no credentials from the network
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)


async def test_switch_aws_profile_and_region(ui_home: S.Folders, aws_config: None) -> None:
    app = S.make_app(ui_home, sandbox=False)
    async with app.run_test(size=S.SIZE, notifications=True) as pilot:
        await S.settle(pilot)
        assert "us-east-1" in context_label(app)

        # Cancel changes nothing.
        await pilot.press("a")
        await S.settle(pilot)
        assert app.screen.query("#aws-profile")  # the account dialog
        await pilot.click("#cancel")
        await S.settle(pilot)
        assert (app.session.aws_profile, app.session.region) == (None, "us-east-1")

        # The named profiles come from the AWS config; pick one and a region, then switch.
        await pilot.press("a")
        profiles = app.screen.query_one("#aws-profile", Select)
        await S.until(pilot, lambda: len(S.offered(profiles)) > 1)
        assert S.offered(profiles)[0] == "(default credential chain)"
        assert {"lab", "prod"} <= set(S.offered(profiles)[1:])
        profiles.value = "lab"
        app.screen.query_one("#region", Select).value = "eu-west-1"
        await S.settle(pilot)
        await pilot.click("#ok")
        await S.settle(pilot)

        assert app.screen.query("#profiles")  # back home
        assert (app.session.aws_profile, app.session.region) == ("lab", "eu-west-1")
        assert "Account\nNow using AWS · lab · eu-west-1" in S.toasts(app)
        # Then as boto3 finds it: the lab profile has no credentials in this config.
        resolved = "AWS · lab: no credentials · eu-west-1"
        await S.until(pilot, lambda: app.sub_title == resolved)
        assert app.account.label == resolved
        assert resolved in context_label(app)  # the home screen follows


async def test_the_sandbox_has_regions_only(ui_home: S.Folders) -> None:
    app = S.make_app(ui_home, sandbox=True)
    async with app.run_test(size=S.SIZE) as pilot:
        await S.settle(pilot)
        await pilot.press("a")
        await S.settle(pilot)
        assert app.screen.query_one("#aws-profile", Select).disabled
        app.screen.query_one("#region", Select).value = "eu-west-1"
        await pilot.click("#ok")
        await S.settle(pilot)
        assert (app.session.aws_profile, app.session.region) == (None, "eu-west-1")
        assert app.account.label.startswith("SANDBOX · eu-west-1")


async def test_an_account_switch_reaches_every_screen_on_the_stack(
    ui_home: S.Folders, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Home, disk and tasks screens each register for AccountChanged: after a switch, each
    shows what the new account has (a screen that stopped listening keeps the old)."""
    import tui.app
    from tui.core.tasks import TaskView

    other = TaskView.from_api(S.task_item(0xE1, "active", "Pending"))

    def other_account(session: Any) -> S.FakeAccount:
        return S.FakeAccount(tasks=[other], label=session.label, buckets=("eu-images",))

    monkeypatch.setattr(tui.app, "make_account", other_account)
    app = S.make_app(ui_home)
    async with app.run_test(size=S.SIZE) as pilot:
        await S.to_disk(pilot)
        bucket = app.screen.query_one("#f-source-bucket", FormField)
        assert S.picks(bucket) == ["amzn-s3-demo-bucket", "imports-bucket"]
        app.action_tasks()
        await S.settle(pilot)
        table = app.screen.query_one("#task-table")
        assert table.row_count == len(S.sample_tasks())
        app.action_switch_account()
        await S.settle(pilot)
        app.screen.query_one("#region", Select).value = "eu-west-1"
        await pilot.click("#ok")
        await S.settle(pilot)

        assert app.screen.sub_title == "Conversion tasks"
        # At once, not at the next poll (5 s away).
        assert [str(k.value) for k in table.rows] == [other.task_id]
        assert S.picks(bucket) == ["eu-images"]
        home = next(screen for screen in app.screen_stack if screen.query("#context-label"))
        assert "SANDBOX · eu-west-1" in str(home.query_one("#context-label", Label).render())


async def test_an_uploaded_manifest_instead_of_a_disk_image(ui_home: S.Folders) -> None:
    app = S.make_app(ui_home)
    async with app.run_test(size=S.SIZE) as pilot:
        await S.to_disk(pilot)
        image = str(ui_home.disks / "win2012.vmdk")
        await S.type_into(pilot, "source.path", image)
        await pilot.click("#source-mode Tab#--content-tab-manifest")
        await S.settle(pilot)
        # One kind of source at a time: the typed path waits aside.
        assert app.state.draft.get("source.path") is None

        # A plain-http URL to another host is refused next to the field.
        await S.type_into(pilot, "source.manifest_url", "http://example.com/disk.manifest.xml")
        field = app.screen.query_one("#f-source-manifest_url", FormField)
        assert field.error is not None and "https" in field.error

        await S.type_into(pilot, "source.manifest_url", MANIFEST_URL)
        await S.type_into(pilot, "source.bytes", "67108864")
        await S.choose(pilot, "source.format", "VMDK")
        await S.type_into(pilot, "source.volume_size", "1")
        assert field.error is None

        # Back to the local tab and again: each kind keeps its own values.
        await pilot.click("#source-mode Tab#--content-tab-local")
        await S.settle(pilot)
        assert app.state.draft.get("source.path") == image
        assert app.state.draft.get("source.manifest_url") is None
        await pilot.click("#source-mode Tab#--content-tab-manifest")
        await S.settle(pilot)
        assert app.state.draft.get("source.manifest_url") == MANIFEST_URL
        assert app.state.draft.get("source.path") is None

        # Through the other steps to the preview.
        app.screen.set_focus(None)
        await pilot.press("ctrl+n")
        await S.settle(pilot)
        assert app.screen.sub_title == "2/4 Launch specification"
        await S.choose(pilot, f"{LS}.Architecture", "x86_64")
        await S.type_into(pilot, f"{LS}.InstanceType", "m5.large")
        app.screen.set_focus(None)
        await pilot.press("ctrl+n")
        await S.settle(pilot)
        await pilot.press("ctrl+n")
        await S.settle(pilot)
        preview: Any = app.screen
        assert preview.sub_title == "4/4 Preview"
        await S.until(pilot, lambda: preview.preview is not None)

        lines = preview.texts["lines"]
        assert "DiskImage.1.Image.Format=VMDK" in lines
        assert "DiskImage.1.Image.Bytes=67108864" in lines
        assert "DiskImage.1.Volume.Size=1" in lines
        url_line = next(x for x in lines.splitlines() if "ImportManifestUrl" in x)
        assert "imports/win2012.vmdkmanifest.xml" in url_line
        assert FAKE_SIGNATURE not in lines  # redacted unless revealed
        # The manifest tab names the uploaded manifest (its copy: the URL alone), redacted too;
        # v reveals everything.
        assert preview.texts["manifest"].startswith("https://imports-bucket.s3.")
        assert "imports/win2012.vmdkmanifest.xml" in preview.texts["manifest"]
        assert not any(FAKE_SIGNATURE in text for text in preview.texts.values())
        assert "X-Amz-Credential=EXAMPLE" not in "".join(preview.texts.values())
        await pilot.press("v")
        await S.settle(pilot)
        assert FAKE_SIGNATURE in preview.texts["lines"]
        assert FAKE_SIGNATURE in preview.texts["manifest"]


def test_the_task_detail_redacts_the_presigned_manifest_url() -> None:
    from rich.console import Console

    from tui.core.tasks import TaskView
    from tui.screens.tasks import detail

    item = S.task_item(0xB1, "active", "Pending")
    item["ImportInstance"]["Volumes"][0]["Image"]["ImportManifestUrl"] = MANIFEST_URL
    console = Console(width=400, record=True, file=io.StringIO())
    console.print(detail(TaskView.from_api(item), ""))
    shown = console.export_text()
    assert "imports/win2012.vmdkmanifest.xml" in shown
    assert "X-Amz-Signature=REDACTED" in shown
    assert FAKE_SIGNATURE not in shown and "Credential=EXAMPLE" not in shown


async def test_saved_profiles_list_an_uploaded_manifest_redacted(ui_home: S.Folders) -> None:
    from tui.core.profiles import parse_profile

    # Short enough that the query falls inside the column's 60 characters.
    url = (
        f"https://b.s3.amazonaws.com/m?X-Amz-Credential=EXAMPLEKEY&X-Amz-Signature={FAKE_SIGNATURE}"
    )
    text = (
        f'name = "uploaded"\n[source]\nmanifest_url = "{url}"\nbytes = 67108864\n'
        'format = "VMDK"\nvolume_size = 1\n[request]\nPlatform = "Windows"\n'
        '[request.LaunchSpecification]\nInstanceType = "m5.large"\n'
    )
    S.make_session().store.save(parse_profile(text, "uploaded"))
    app = S.make_app(ui_home)
    async with app.run_test(size=S.SIZE) as pilot:
        table = app.screen.query_one("#profiles")
        await S.until(pilot, lambda: "uploaded" in [k.value for k in table.rows])
        source = str(table.get_cell("uploaded", "source"))
        assert source.startswith("https://b.s3.amazonaws.com/m?X-Amz-Credential=REDACTED")
        assert "EXAMPLEKEY" not in source and FAKE_SIGNATURE[:8] not in source
