"""Pilot tests of S3's naming rules on the disk-image screen: each message next to its field,
the same one the profile file gets, and Next refused until it is fixed."""

from __future__ import annotations

from tests.ui import scenarios as S
from tui.widgets.form import FormField


async def test_the_disk_screen_refuses_names_s3_would_refuse(ui_home: S.Folders) -> None:
    image = ui_home.disks / "win2012.vmdk"
    bad_name = ui_home.disks / "win\n2012.vmdk"
    bad_name.write_bytes(image.read_bytes())
    app = S.make_app(ui_home)
    async with app.run_test(size=S.SIZE) as pilot:
        await S.to_disk(pilot)
        field = {p: app.screen.query_one(f"#f-{p.replace('.', '-')}", FormField) for p in (
            "source.path", "source.bucket", "source.key_prefix"
        )}  # fmt: skip
        await S.type_into(pilot, "source.path", str(bad_name))
        await S.type_into(pilot, "source.bucket", "192.168.1.1")
        await S.type_into(pilot, "source.key_prefix", "imports/../x")
        await pilot.pause(0.4)  # the probe is debounced
        await S.settle(pilot)
        assert "control character (U+000A) in its name: rename the file" in str(
            field["source.path"].error
        )
        assert "must not be formatted as an IP address" in str(field["source.bucket"].error)
        assert "a '..' folder" in str(field["source.key_prefix"].error)

        # A prefix whose keys pass S3's 1,024 bytes, said as soon as the image is probed.
        await S.type_into(pilot, "source.path", str(image))
        await S.type_into(pilot, "source.bucket", "imports-bucket")
        await S.type_into(pilot, "source.key_prefix", "a" * 1000)
        await pilot.pause(0.4)
        await S.settle(pilot)
        assert field["source.path"].error is None and field["source.bucket"].error is None
        error = str(field["source.key_prefix"].error)
        assert "a 1000-byte prefix makes S3 keys" in error and "S3 takes at most 1024" in error
        await pilot.press("ctrl+n")
        await S.settle(pilot)
        assert app.screen.sub_title == "1/4 Disk image"

        await S.type_into(pilot, "source.key_prefix", "imports")
        assert field["source.key_prefix"].error is None
        await pilot.press("ctrl+n")
        await S.settle(pilot)
        assert app.screen.sub_title == "2/4 Launch specification"
