"""`probe`, `upload` and `cleanup` from the command line, against a local S3 over HTTP."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tui import cli
from tui.core import aws
from tui.core.manifest import parse_manifest
from tui.core.upload import parse_s3_url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def write_profile(path: Path, image: Path, bucket: str, endpoint: str) -> Path:
    path.write_text(
        f"""
name = "cli-upload"
[aws]
region = "us-east-1"
endpoint_url = "{endpoint}"
[source]
path = "{image}"
bucket = "{bucket}"
key_prefix = "imports"
url_expiry_days = 2
[request]
Platform = "Windows"
[request.LaunchSpecification]
Architecture = "x86_64"
InstanceType = "m1.xlarge"
"""
    )
    return path


def fetch_upload(revealed_output: str) -> tuple[Any, bytes]:
    """The manifest and the image as EC2 would read them: through the presigned URLs that
    `upload --reveal` printed."""
    lines = dict(line.split(": ", 1) for line in revealed_output.strip().splitlines())
    with urllib.request.urlopen(lines["manifest URL"]) as response:
        manifest = parse_manifest(response.read())
    body = b"".join(urllib.request.urlopen(p.get_url).read() for p in manifest.parts)
    return manifest, body


def keys_in(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


# ---------------------------------------------------------------------------------------------
# probe


def test_probe_text(capsys: pytest.CaptureFixture[str], disk_images: dict[str, Path]) -> None:
    code, out, err = run(capsys, "probe", str(disk_images["vmdk_stream"]))
    assert code == 0
    assert "VMDK (streamOptimized)" in out and "suggested volume: 1 GiB" in out
    assert err == ""


def test_probe_not_importable_exits_2_with_reasons_on_stderr(
    capsys: pytest.CaptureFixture[str], disk_images: dict[str, Path]
) -> None:
    path = disk_images["vhd_differencing"]
    code, out, err = run(capsys, "probe", str(path))
    assert code == 2
    assert "importable:       no" in out
    assert "problem:" in err
    assert "qemu-img convert -O vmdk -o subformat=streamOptimized" in err


def test_probe_json(capsys: pytest.CaptureFixture[str], disk_images: dict[str, Path]) -> None:
    code, out, _ = run(capsys, "probe", str(disk_images["vhd_fixed"]), "--json")
    assert code == 0
    data = json.loads(out)
    assert list(data) == [
        "path",
        "format",
        "variant",
        "file_bytes",
        "virtual_bytes",
        "volume_size_gib",
        "importable",
        "problems",
        "warnings",
        "allocated_bytes",
        "extents",
        "ova",
        "plan",
        "guest",  # issue 14: what is inside (tests/unit/test_guest.py)
    ]
    assert (data["format"], data["variant"], data["importable"]) == ("VHD", "fixed", True)
    assert data["guest"]["partition_table"] == "mbr"  # make_source_raw's table
    code, out, _ = run(capsys, "probe", str(disk_images["qcow2"]), "--json")
    data = json.loads(out)
    assert code == 0 and data["format"] == "QCOW2" and data["plan"]["action"] == "convert"
    assert data["guest"] is None  # not read: it needs a conversion first


def test_probe_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "probe", str(tmp_path / "nope.vmdk"))
    assert code == 2 and "no such file" in err


# ---------------------------------------------------------------------------------------------
# upload


def test_upload_json_events_and_redacted_url(
    capsys: pytest.CaptureFixture[str],
    aws_env: None,
    s3_endpoint: str,
    s3_client: Any,
    bucket: str,
    disk_images: dict[str, Path],
    tmp_path: Path,
) -> None:
    image = disk_images["vmdk_stream"]
    profile = write_profile(tmp_path / "p.toml", image, bucket, s3_endpoint)
    code, out, err = run(capsys, "upload", str(profile), "--json")
    assert code == 0, err
    events = json_lines(out)
    names = [e["event"] for e in events]
    assert names[0] == "probe" and names[-2:] == ["uploaded", "done"]
    assert set(names[1:-2]) == {"upload"}
    assert events[0]["format"] == "VMDK"
    assert events[-1]["state"] == "uploaded" and "resume" in events[-1]["message"]
    done = events[-2]
    assert done["bucket"] == bucket
    assert done["manifest_key"].startswith("imports/") and done["manifest_key"].endswith(
        "/stream.vmdkmanifest.xml"
    )
    assert "X-Amz-Signature=REDACTED" in done["manifest_url"]
    assert "X-Amz-Expires=172800" in done["manifest_url"]  # url_expiry_days = 2
    assert (done["bytes"], done["parts_sent"]) == (image.stat().st_size, done["parts"])
    assert f"{done['manifest_key']}" in keys_in(s3_client, bucket)
    assert events[-3]["bytes_done"] == image.stat().st_size


def test_upload_text_reveal_gives_a_working_url(
    capsys: pytest.CaptureFixture[str],
    aws_env: None,
    s3_endpoint: str,
    bucket: str,
    disk_images: dict[str, Path],
    tmp_path: Path,
) -> None:
    image = disk_images["raw"]
    profile = write_profile(tmp_path / "p.toml", image, bucket, s3_endpoint)
    code, out, err = run(capsys, "upload", str(profile), "--reveal")
    assert code == 0, err
    lines = dict(line.split(": ", 1) for line in out.strip().splitlines())
    assert lines["manifest"].startswith(f"s3://{bucket}/imports/")
    assert "REDACTED" not in lines["manifest URL"]
    assert "uploaded 1 part" in err and "verified" in err  # the progress went to stderr
    manifest, body = fetch_upload(out)
    assert body == image.read_bytes()
    assert manifest.file_format == "RAW"


def test_upload_unimportable_image_sends_nothing(
    capsys: pytest.CaptureFixture[str],
    aws_env: None,
    s3_endpoint: str,
    s3_client: Any,
    bucket: str,
    disk_images: dict[str, Path],
    tmp_path: Path,
) -> None:
    profile = write_profile(
        tmp_path / "p.toml", disk_images["vhd_differencing"], bucket, s3_endpoint
    )
    code, _, err = run(capsys, "upload", str(profile))
    assert code == 2
    assert "qemu-img convert" in err and "Traceback" not in err
    assert keys_in(s3_client, bucket) == []


def test_upload_missing_bucket(
    capsys: pytest.CaptureFixture[str],
    aws_env: None,
    s3_endpoint: str,
    disk_images: dict[str, Path],
    tmp_path: Path,
) -> None:
    profile = write_profile(tmp_path / "p.toml", disk_images["raw"], "no-such-bkt", s3_endpoint)
    code, _, err = run(capsys, "upload", str(profile))
    assert code == 2 and "does not exist" in err


# ---------------------------------------------------------------------------------------------
# cleanup (DescribeConversionTasks stubbed: moto has no conversion tasks; the sandbox will)


def _uploaded(
    capsys: pytest.CaptureFixture[str], endpoint: str, bucket: str, image: Path, tmp_path: Path
) -> dict[str, Any]:
    profile = write_profile(tmp_path / "p.toml", image, bucket, endpoint)
    code, out, err = run(capsys, "upload", str(profile), "--json", "--reveal")
    assert code == 0, err
    return next(e for e in json_lines(out) if e["event"] == "uploaded")


@pytest.fixture
def stub_tasks(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Answer DescribeConversionTasks with a canned task; S3 stays real."""
    import boto3
    from botocore.stub import Stubber

    real_client = aws.client
    ec2 = boto3.session.Session(
        aws_access_key_id="A", aws_secret_access_key="B", region_name="us-east-1"
    ).client("ec2")
    stubber = Stubber(ec2)
    stubber.activate()
    monkeypatch.setattr(
        aws,
        "client",
        lambda target, service, *budget: (
            ec2 if service == "ec2" else real_client(target, service, *budget)
        ),
    )

    def answer(task_id: str, state: str | None, manifest_url: str = "") -> None:
        tasks = []
        if state is not None:
            tasks.append(
                {
                    "ConversionTaskId": task_id,
                    "ExpirationTime": "2026-12-05T00:00:00Z",
                    "State": state,
                    "ImportInstance": {
                        "InstanceId": "i-0123456789abcdef0",
                        "Platform": "Windows",
                        "Volumes": [
                            {
                                "AvailabilityZone": "us-east-1a",
                                "BytesConverted": 0,
                                "Image": {
                                    "Format": "VMDK",
                                    "Size": 1,
                                    "ImportManifestUrl": manifest_url,
                                },
                                "Volume": {"Size": 1},
                                "Status": state,
                            }
                        ],
                    },
                }
            )
        stubber.add_response(
            "describe_conversion_tasks",
            {"ConversionTasks": tasks},
            {"ConversionTaskIds": [task_id]},
        )

    return answer


def test_cleanup_refuses_active_task_then_force_deletes(
    capsys: pytest.CaptureFixture[str],
    aws_env: None,
    stub_tasks: Any,
    s3_endpoint: str,
    s3_client: Any,
    bucket: str,
    disk_images: dict[str, Path],
    tmp_path: Path,
) -> None:
    done = _uploaded(capsys, s3_endpoint, bucket, disk_images["raw"], tmp_path)
    assert parse_s3_url(done["manifest_url"]) == (bucket, done["manifest_key"])
    before = keys_in(s3_client, bucket)
    assert len(before) == done["parts"] + 1

    task = "import-i-0123abcd"
    stub_tasks(task, "active", done["manifest_url"])
    code, _, err = run(capsys, "--endpoint-url", s3_endpoint, "cleanup", task)
    assert code == 1 and "active" in err and "--force" in err
    assert keys_in(s3_client, bucket) == before

    stub_tasks(task, "active", done["manifest_url"])
    code, out, err = run(capsys, "--endpoint-url", s3_endpoint, "cleanup", task, "--force")
    assert code == 0, err
    assert f"deleted {done['parts'] + 1} objects" in out
    assert keys_in(s3_client, bucket) == []


def test_cleanup_completed_task(
    capsys: pytest.CaptureFixture[str],
    aws_env: None,
    stub_tasks: Any,
    s3_endpoint: str,
    s3_client: Any,
    bucket: str,
    disk_images: dict[str, Path],
    tmp_path: Path,
) -> None:
    done = _uploaded(capsys, s3_endpoint, bucket, disk_images["vmdk_stream"], tmp_path)
    stub_tasks("import-i-ffff0000", "completed", done["manifest_url"])
    code, _, err = run(capsys, "--endpoint-url", s3_endpoint, "cleanup", "import-i-ffff0000")
    assert code == 0, err
    assert keys_in(s3_client, bucket) == []


def test_cleanup_unknown_task(
    capsys: pytest.CaptureFixture[str], aws_env: None, stub_tasks: Any, s3_endpoint: str
) -> None:
    stub_tasks("import-i-00000000", None)
    code, _, err = run(capsys, "--endpoint-url", s3_endpoint, "cleanup", "import-i-00000000")
    assert code == 2 and "no conversion task" in err


def test_cleanup_bad_reference(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "cleanup", "i-12345678")
    assert code == 2 and "RUN_ID: 'i-12345678' is not a run id" in err


@pytest.fixture
def loop_device(tmp_path: Path) -> Any:
    """A block device over a 24 MiB raw disk (MBR signed, data at a few offsets), through a
    loop device: it needs root and losetup, so the test skips where they are not."""
    import os
    import shutil
    import subprocess

    if os.geteuid() != 0 or shutil.which("losetup") is None:
        pytest.skip("a loop device needs root and losetup")
    backing = tmp_path / "disk.raw"
    with backing.open("wb") as f:
        f.truncate(24 << 20)
        for offset in (0, 510, 11 << 20, (24 << 20) - 4096):
            f.seek(offset)
            f.write(b"\x55\xaa" if offset == 510 else os.urandom(4096))
    made = subprocess.run(["losetup", "-f", "--show", str(backing)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"no loop device here: {made.stderr.strip()}")
    device = Path(made.stdout.strip())
    try:
        yield device, backing.read_bytes()
    finally:
        subprocess.run(["losetup", "-d", str(device)], check=False)


def test_a_block_device_is_probed_and_uploaded_whole(
    capsys: pytest.CaptureFixture[str],
    aws_env: None,
    s3_endpoint: str,
    bucket: str,
    loop_device: tuple[Path, bytes],
    tmp_path: Path,
) -> None:
    device, data = loop_device
    code, out, err = run(capsys, "probe", str(device), "--json")
    assert code == 0, err
    probed = json.loads(out)
    assert (probed["format"], probed["virtual_bytes"], probed["importable"]) == (
        "RAW",
        24 << 20,
        True,
    )
    assert probed["file_bytes"] == 24 << 20  # sized by seeking: st_size of a device is 0
    assert probed["warnings"] == []  # the MBR signature is there

    profile = write_profile(tmp_path / "p.toml", device, bucket, s3_endpoint)
    code, out, err = run(capsys, "upload", str(profile), "--reveal")
    assert code == 0, err
    manifest, body = fetch_upload(out)
    assert len(manifest.parts) == 3  # 10 MiB parts
    assert body == data


def test_upload_of_an_image_named_with_spaces_and_parentheses(
    capsys: pytest.CaptureFixture[str],
    aws_env: None,
    s3_endpoint: str,
    s3_client: Any,
    bucket: str,
    disk_images: dict[str, Path],
    tmp_path: Path,
) -> None:
    """Its basename goes into the keys in S3's safe characters; EC2 reads it all back."""
    image = tmp_path / "Windows Server (2019).vhd"
    image.write_bytes(disk_images["vhd_fixed"].read_bytes())
    profile = write_profile(tmp_path / "p.toml", image, bucket, s3_endpoint)
    code, out, err = run(capsys, "upload", str(profile), "--reveal")
    assert code == 0, err
    lines = dict(line.split(": ", 1) for line in out.strip().splitlines())
    assert lines["manifest"].endswith("/Windows_Server_(2019).vhdmanifest.xml")
    manifest, body = fetch_upload(out)
    assert body == image.read_bytes()
    assert [p.key.rsplit("/", 1)[-1] for p in manifest.parts] == ["Windows_Server_(2019).vhd.part0"]
    assert sorted(keys_in(s3_client, bucket)) == sorted(
        [lines["manifest"].removeprefix(f"s3://{bucket}/"), manifest.parts[0].key]
    )
