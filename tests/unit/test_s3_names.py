"""S3's naming rules as a user meets them: a key prefix whose keys would pass S3's 1,024 bytes is
refused before anything is sent (the last part's number counted), the image's basename goes into
keys in S3's safe characters, a control character in an image path is refused by `probe` and the
wizard's path field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomli_w

from tui.cli import main
from tui.core.draft import Draft

TIB = 1 << 40
# A uuid4 run id is 36 characters; a 64 KiB image has one part, and its manifest's key,
# `<prefix>/<run id>/disk.rawmanifest.xml`, is the longest: 1024 - 36 - 2 - 20 bytes are left.
ROOM = 1024 - 36 - 2 - len("disk.rawmanifest.xml")


def raw_image(path: Path, size: int) -> Path:
    with path.open("wb") as f:
        f.truncate(size)  # sparse: a RAW image of any size costs nothing
    return path


def profile_file(tmp_path: Path, image: Path, endpoint: str, prefix: str) -> Path:
    data = {
        "name": "names",
        "aws": {"region": "us-east-1", "endpoint_url": endpoint},
        "source": {"path": str(image), "bucket": "demo-imports", "key_prefix": prefix},
        "request": {
            "Platform": "Windows",
            "LaunchSpecification": {"Architecture": "x86_64", "InstanceType": "m5.large"},
        },
    }
    path = tmp_path / "names.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------------------------------------
# 1. Keys over 1,024 bytes


def test_a_prefix_whose_keys_pass_1024_bytes_is_refused_before_anything_is_sent(
    tmp_path, cli_home, dead_endpoint, capsys
):
    image = raw_image(tmp_path / "disk.raw", 64 * 1024)
    fits = profile_file(tmp_path, image, dead_endpoint, "a" * ROOM)
    code, out, err = cli(capsys, "preview", str(fits))
    assert code == 0, err
    longest = re.search(r"s3://demo-imports/(\S+)>", out)
    assert longest and len(longest.group(1).replace("RUN-ID", "r" * 36)) == 1024

    too_long = profile_file(tmp_path, image, dead_endpoint, "a" * (ROOM + 1))
    for argv in (["preview"], ["upload"], ["run"]):
        code, out, err = cli(capsys, *argv, str(too_long))
        assert code == 2, (argv, err)  # bad input: nothing sent (the endpoint is dead: exit 3)
        assert f"{too_long}: source.key_prefix: a {ROOM + 1}-byte prefix makes S3 keys" in err
        assert "S3 takes at most 1024" in err
        assert f"shorten the prefix to at most {ROOM} bytes" in err
        assert err.count("\n") == 1 and "Traceback" not in err
    assert not cli_home.exists()


def test_the_last_part_number_counts_with_the_part_size_asked_for(
    tmp_path, cli_home, dead_endpoint, capsys
):
    # 10 TiB in 1 MiB parts ends with .part10485759, one byte longer than the manifest's
    # "manifest.xml"; in the default 10 MiB parts it ends with .part1048575, as long as it.
    image = raw_image(tmp_path / "disk.raw", 10 * TIB)
    profile = profile_file(tmp_path, image, dead_endpoint, "a" * ROOM)
    code, _, err = cli(capsys, "preview", str(profile))
    assert code == 0, err
    for command in ("upload", "run"):
        code, _, err = cli(capsys, command, "--part-size", "1", str(profile))
        assert code == 2, err
        assert "source.key_prefix" in err and ".part10485759" in err
        assert f"shorten the prefix to at most {ROOM - 1} bytes" in err
    assert not cli_home.exists()


# ---------------------------------------------------------------------------------------------
# 3. Image names: control characters refused; other unsafe characters encoded in keys


def test_an_image_name_with_spaces_and_parentheses_goes_into_keys_in_safe_characters(
    tmp_path, cli_home, dead_endpoint, capsys
):
    image = raw_image(tmp_path / "Windows Server (2019).vhd", 64 * 1024)
    profile = profile_file(tmp_path, image, dead_endpoint, "imports")
    code, out, err = cli(capsys, "preview", str(profile))
    assert code == 0, err
    assert "s3://demo-imports/imports/RUN-ID/Windows_Server_(2019).vhdmanifest.xml>" in out, out


def test_probe_refuses_an_image_name_with_a_newline(tmp_path, cli_home, capsys):
    image = raw_image(tmp_path / "disk\n.raw", 64 * 1024)
    for argv in (["probe", str(image)], ["probe", str(image), "--json"]):
        code, out, err = cli(capsys, *argv)
        assert code == 2
        assert out == ""
        assert err == (
            f"ec2-import-wizard: error: IMAGE: {str(image)!r} has a control character (U+000A) "
            "in its name: rename the file (or its folder) without it\n"
        )


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("source.path", "/images/disk\r.vmdk", "a control character (U+000D) in its name"),
        ("source.key_prefix", "../../etc", "a '..' folder"),
        ("source.key_prefix", "a?b", "not one of S3's safe key characters"),
        ("source.bucket", "192.168.1.1", "must not be formatted as an IP address"),
    ],
)
def test_the_wizard_fields_get_the_profile_files_message(field, value, words):
    """The disk-image screen shows the draft's errors next to each field."""
    draft = Draft({"source": {"path": "/images/disk.vmdk", "bucket": "demo-imports"}})
    draft.set(field, value)
    assert words in draft.errors()[field]
