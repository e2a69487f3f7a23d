"""`preview` prints exactly what boto3 sends: checked by capturing boto3's real request."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import boto3
import pytest

from tui.cli import main
from tui.core.plan import build_preview
from tui.core.profiles import load_profile

ROOT = Path(__file__).resolve().parents[2]
PROFILES = sorted((ROOT / "profiles").glob("*.toml"))
SEED = ROOT.parent / "shared" / "seed" / "000_1492b0c98d465d50.txt"

# The seed's "Sample Request", parameter by parameter (AUTHPARAMS are the signature, not params).
SEED_SAMPLE = {
    "Action": "ImportInstance",
    "LaunchSpecification.Architecture": "x86_64",
    "LaunchSpecification.InstanceType": "m1.xlarge",
    "DiskImage.1.Image.Format": "VMDK",
    "DiskImage.1.Image.Bytes": "1179593728",
    "DiskImage.1.Image.ImportManifestUrl": (
        "https://s3.amazonaws.com/amzn-s3-demo-bucket/a3a5e1b6-590d-43cc-97c1-15c7325d3f41/"
        "Win_2008_Server_Data_Center_SP2_32-bit.vmdkmanifest.xml?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE"
        "&Expires=1294855591&Signature=5snej01TlTtL0uR7KExtEXAMPLE%3D"
    ),
    "DiskImage.1.Volume.Size": "12",
    "Platform": "Windows",
}


class _Captured(Exception):
    def __init__(self, request):
        self.request = request


def boto3_sends(params: dict, region: str) -> list[tuple[str, str]]:
    """The form body boto3 really sends for import_instance(**params), short-circuited before
    the network by a `before-send` handler."""
    client = boto3.client(
        "ec2",
        region_name=region,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="not-a-secret",
    )

    def stop(request, **_):
        raise _Captured(request)

    client.meta.events.register("before-send.ec2.ImportInstance", stop)
    with pytest.raises(_Captured) as caught:
        client.import_instance(**params)
    body = caught.value.request.body
    return parse_qsl(body.decode() if isinstance(body, bytes) else body, keep_blank_values=True)


def _with_images(tmp_path: Path, profile_file: Path) -> Path:
    """Copy an example profile and make its disk image with qemu-img beside it."""
    dest = tmp_path / "profiles" / profile_file.name
    dest.parent.mkdir(parents=True)
    shutil.copy(profile_file, dest)
    profile = load_profile(dest)
    image = profile.image_path(dest)
    if image is not None:
        image.parent.mkdir(parents=True, exist_ok=True)
        fmt = {".vmdk": "vmdk", ".vhd": "vpc", ".raw": "raw"}[image.suffix]
        opts = ["-o", "subformat=streamOptimized"] if fmt == "vmdk" else []
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", fmt, *opts, str(image), "64M"], check=True
        )
    return dest


def test_seed_sample_request(capsys):
    assert (
        main(["preview", str(ROOT / "profiles/windows-2008-sample.toml"), "--url", "--reveal"]) == 0
    )
    url = capsys.readouterr().out.strip()
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == "https://ec2.us-east-1.amazonaws.com"
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    assert params.pop("Version") == "2016-11-15"
    assert params == SEED_SAMPLE


def test_seed_file_agrees_with_the_expected_sample():
    """The sample above is the seed page's own text (guards against a typo in this test)."""
    if not SEED.exists():
        pytest.skip("shared seed not beside the checkout")
    text = SEED.read_text()
    sample = text.split("Sample Request", 1)[1].split("Sample Response", 1)[0]
    for key, value in SEED_SAMPLE.items():
        if key != "Action":
            assert f"{key}={value}" in sample.replace(" &", "&")


@pytest.mark.parametrize("profile_file", PROFILES, ids=lambda p: p.stem)
def test_preview_json_equals_what_boto3_sends(profile_file, tmp_path, capsys):
    dest = _with_images(tmp_path, profile_file)
    assert main(["preview", str(dest), "--json", "--reveal"]) == 0
    shown = json.loads(capsys.readouterr().out)
    profile = load_profile(dest)
    sent = boto3_sends(shown["boto3_params"], profile.aws.region or "us-east-1")
    assert list(shown["params"].items()) == sent  # same names, values and order
    assert shown["endpoint"] == f"https://ec2.{profile.aws.region}.amazonaws.com"


def test_user_data_is_plain_in_the_profile_and_base64_on_the_wire(tmp_path):
    dest = _with_images(tmp_path, ROOT / "profiles/windows-raw-userdata.toml")
    profile = load_profile(dest)
    assert profile.request.LaunchSpecification.UserData is not None
    plain = profile.request.LaunchSpecification.UserData.Data
    assert plain.startswith("<powershell>")
    preview = build_preview(profile, dest, None)
    import base64

    sent = preview.params["LaunchSpecification.UserData.Data"]
    assert base64.b64decode(sent).decode() == plain


def test_secrets_redacted_unless_revealed(capsys):
    sample = str(ROOT / "profiles/windows-2008-sample.toml")
    for args in ([], ["--json"], ["--url"]):
        assert main(["preview", sample, *args]) == 0
        out = capsys.readouterr().out
        assert "5snej01TlTtL0uR7KExtEXAMPLE" not in out
        assert "AKIAIOSFODNN7EXAMPLE" not in out
        assert "REDACTED" in out
        assert "1294855591" in out  # the expiry is not a secret: kept
    assert main(["preview", sample, "--reveal"]) == 0
    assert "Signature=5snej01TlTtL0uR7KExtEXAMPLE%3D" in capsys.readouterr().out


def test_local_image_shows_a_placeholder_naming_its_key(tmp_path, capsys):
    dest = _with_images(tmp_path, ROOT / "profiles/sandbox-demo.toml")
    assert main(["preview", str(dest)]) == 0
    out = capsys.readouterr().out
    assert (
        "DiskImage.1.Image.ImportManifestUrl=<not yet uploaded: presigned GET of "
        "s3://demo-imports/imports/RUN-ID/demo.vmdkmanifest.xml>"
    ) in out
    lines = out.splitlines()
    assert lines[:2] == ["Action=ImportInstance", "Version=2016-11-15"]


def test_preview_of_a_missing_image_is_a_clean_input_error(tmp_path, capsys):
    dest = tmp_path / "p.toml"
    shutil.copy(ROOT / "profiles/sandbox-demo.toml", dest)
    assert main(["preview", str(dest)]) == 2
    err = capsys.readouterr().err
    assert "source.path" in err and "no such disk image" in err and "Traceback" not in err
