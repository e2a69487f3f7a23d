"""The bad-input corpus: profiles, command-line arguments, disk images, import manifests and
malformed EC2 requests. Every case ends with exit 2 (or EC2's own error code from the sandbox),
a message naming the field, no traceback, and nothing written or sent."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from tests.helpers.aws import (
    client,
    import_instance,
    prepare_upload,
    wait_task,
)
from tests.helpers.profiles import BASE
from tests.helpers.profiles import CASES as PROFILE_CASES
from tui.cli import main

# ---------------------------------------------------------------------------------------------
# Helpers


@pytest.fixture
def home(cli_home: Path) -> Path:
    """State goes here; a case passes only if it was never even created."""
    return cli_home


@pytest.fixture(scope="module")
def corpus_bucket(sandbox: str) -> str:
    s3 = client(sandbox, "s3")
    s3.create_bucket(Bucket="corpus")
    return "corpus"


def rejected(capsys: Any, argv: list[str], home: Path, *expected: str) -> str:
    """Run the command in-process: exit 2, the expected words, no traceback, nothing written."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert code == 2, (argv, out, err)
    assert "Traceback" not in err + out
    for words in expected:
        assert words in err, (words, err)
    assert not home.exists(), f"{argv} wrote {sorted(home.rglob('*'))}"
    return err


# ---------------------------------------------------------------------------------------------
# 1. Profiles (the same rules as tests/unit/test_profiles.py, here through `run`)


@pytest.mark.parametrize(
    ("data", "field", "reason"), [c[1:] for c in PROFILE_CASES], ids=[c[0] for c in PROFILE_CASES]
)
def test_profile(data, field, reason, sandbox, corpus_bucket, home, tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(data if isinstance(data, str) else tomli_w.dumps(data))
    before = path.read_bytes()
    rejected(capsys, ["--endpoint-url", sandbox, "run", str(path)], home, str(path), reason)
    assert path.read_bytes() == before


# ---------------------------------------------------------------------------------------------
# 2. Command-line arguments

GOOD = "GOOD_PROFILE"
# (id, argv, the words the message must hold: one string or several)
CLI_CASES: list[tuple[str, list[str], str | tuple[str, ...]]] = [
    ("probe-no-image", ["probe"], "IMAGE"),
    ("preview-no-profile", ["preview"], "PROFILE"),
    ("run-no-profile", ["run"], "PROFILE"),
    ("poll-zero", ["run", "--poll", "0", GOOD], "--poll"),
    ("poll-text", ["run", "--poll", "soon", GOOD], "--poll"),
    ("poll-inf", ["run", "--poll", "inf", GOOD], ("--poll", "0.1..3600 seconds")),
    ("poll-huge", ["run", "--poll", "1e10", GOOD], ("--poll", "0.1..3600 seconds")),
    ("poll-tiny", ["run", "--poll", "1e-300", GOOD], ("--poll", "0.1..3600 seconds")),
    ("poll-nan", ["run", "--poll", "nan", GOOD], ("--poll", "0.1..3600 seconds")),
    ("resume-poll-inf", ["resume", "12345678", "--poll", "inf"], ("--poll", "0.1..3600")),
    ("part-size-zero", ["run", "--part-size", "0", GOOD], "--part-size"),
    ("part-size-huge", ["run", "--part-size", "9999", GOOD], "--part-size"),
    ("part-size-text", ["run", "--part-size", "10MB", GOOD], "--part-size"),
    ("workers-zero", ["run", "--workers", "0", GOOD], "--workers"),
    ("workers-text", ["run", "--workers", "many", GOOD], "--workers"),
    ("unknown-flag", ["run", "--fast", GOOD], "--fast"),
    ("same-profile-twice", ["run", GOOD, GOOD], "PROFILE"),
    ("region", ["--region", "Mars-1", "tasks"], "--region"),
    ("endpoint", ["--endpoint-url", "ftp://127.0.0.1", "tasks"], "--endpoint-url"),
    ("endpoint-cleartext", ["--endpoint-url", "http://example.com", "tasks"],
     ("--endpoint-url", "cleartext", "use https://, or http:// only to a loopback address")),
    ("endpoint-lan", ["--endpoint-url", "http://10.0.0.5:5000", "run", GOOD],
     ("--endpoint-url", "cleartext")),
    ("endpoint-userinfo", ["--endpoint-url", "http://user:pw@127.0.0.1:5000", "tasks"],
     ("--endpoint-url", "no user name or password")),
    ("endpoint-path", ["--endpoint-url", "http://127.0.0.1:5000/api", "tasks"],
     ("--endpoint-url", "not an endpoint URL")),
    ("endpoint-query", ["--endpoint-url", "https://example.com/?x=1", "tasks"],
     ("--endpoint-url", "not an endpoint URL")),
    ("endpoint-port", ["--endpoint-url", "http://127.0.0.1:99999", "tasks"],
     ("--endpoint-url", "1..65535")),
    ("sandbox-and-endpoint", ["--sandbox", "--endpoint-url", "http://127.0.0.1:9", "tasks"],
     "--endpoint-url"),
    ("tasks-bad-id", ["tasks", "bogus"], "TASK_ID"),
    ("tasks-short-id", ["tasks", "import-i-123"], "TASK_ID"),
    ("cancel-bad-id", ["cancel", "i-12345678"], "TASK_ID"),
    ("cancel-no-id", ["cancel"], "TASK_ID"),
    ("resume-bad-id", ["resume", "zz"], "RUN_ID"),
    ("resume-unknown", ["resume", "12345678"], "RUN_ID"),
    ("cleanup-bad-ref", ["cleanup", "nope"], "RUN_ID"),
    ("profiles-action", ["profiles", "frobnicate"], "invalid choice"),
    ("profiles-show-no-name", ["profiles", "show"], "NAME"),
    ("profiles-show-path", ["profiles", "show", "/nonexistent/x.toml"], "no such profile file"),
    ("profiles-show-bad-name", ["profiles", "show", "a b"], "not a profile name"),
    ("profiles-delete-unknown", ["profiles", "delete", "nosuch"], "no saved profile"),
    ("preview-unknown-name", ["preview", "nosuch"], "no saved profile"),
    ("preview-two-formats", ["preview", GOOD, "--json", "--url"], "--url"),
    ("upload-missing-file", ["upload", "nosuch.toml"], "no such profile file"),
    ("sandbox-share", ["sandbox", "--faults", "s3-put=2"], "--faults"),
    ("sandbox-fault-name", ["sandbox", "--faults", "disk-full=0.1"], "--faults"),
    ("sandbox-rate", ["sandbox", "--rate", "-5"], "--rate"),
    ("sandbox-port", ["sandbox", "--port", "http"], "--port"),
    ("sandbox-port-negative", ["sandbox", "--port", "-1"], ("--port", "0..65535")),
    ("sandbox-port-huge", ["sandbox", "--port", "99999"], ("--port", "0..65535")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "words"), [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES]
)
def test_cli_argument(argv, words, home, tmp_path, capsys):
    good = tmp_path / "good.toml"
    good.write_text(tomli_w.dumps(BASE))
    argv = [str(good) if a == GOOD else a for a in argv]
    err = rejected(capsys, argv, home, *((words,) if isinstance(words, str) else words))
    assert "pw@" not in err  # a password in an endpoint URL is never echoed


# ---------------------------------------------------------------------------------------------
# 3. Disk images: `probe` says why, `run` refuses before sending anything


def _bad_images(disk_images: dict[str, Path], root: Path) -> dict[str, tuple[Path, str]]:
    stream = disk_images["vmdk_stream"].read_bytes()
    fixed = disk_images["vhd_fixed"].read_bytes()
    bad_sum = bytearray(fixed)
    bad_sum[-512 + 64] ^= 0xFF  # the footer's checksum
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as t:
        info = tarfile.TarInfo("vm.ovf")
        info.size = 5
        t.addfile(info, io.BytesIO(b"<ovf>"))
    made = {
        "empty": (b"", "empty"),
        "tiny": (stream[:100], "too small"),
        "truncated-vmdk": (stream[:4096], "truncated"),
        "bad-vhd-checksum": (bytes(bad_sum), "checksum"),
        "footer-cut": (fixed[:-200], "VHD"),
        "ova": (tar.getvalue() + bytes(10240), "OVA"),
        "gzip": (b"\x1f\x8b\x08\x00" + bytes(4096), "gzip"),
    }
    images = {name: (disk_images[name], hint) for name, hint in (
        ("vhd_differencing", "differencing"),
    )}  # fmt: skip
    # Formats qemu-img converts, broken: a backing chain and a truncated VHDX.
    backing = root / "child.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(disk_images["qcow2"]), "-F",
         "qcow2", str(backing)], check=True,
    )  # fmt: skip
    images["qcow2-backing"] = (backing, "backing file")
    vhdx = disk_images["vhdx"].read_bytes()
    made["truncated-vhdx"] = (vhdx[: len(vhdx) // 3], "truncated")
    for name, (data, hint) in made.items():
        path = root / f"{name}.img"
        path.write_bytes(data)
        images[name] = (path, hint)
    folder = root / "folder.vmdk"
    folder.mkdir()
    images["directory"] = (folder, "directory")
    images["missing"] = (root / "missing.vhd", "no such")
    return images


IMAGE_NAMES = [
    "qcow2-backing", "truncated-vhdx", "vhd_differencing", "empty", "tiny", "truncated-vmdk",
    "bad-vhd-checksum", "footer-cut", "ova", "gzip", "directory", "missing",
]  # fmt: skip


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_disk_image(name, disk_images, sandbox, corpus_bucket, home, tmp_path, capsys):
    path, hint = _bad_images(disk_images, tmp_path)[name]
    rejected(capsys, ["probe", str(path)], home)
    code = main(["probe", str(path), "--json"])
    out, _ = capsys.readouterr()
    assert code == 2
    report = json.loads(out)
    assert report["importable"] is False and report["problems"]
    assert any(hint.lower() in p.lower() for p in report["problems"]), report["problems"]

    profile = tmp_path / "image.toml"
    data = {**BASE, "source": {"path": str(path), "bucket": corpus_bucket}}
    profile.write_text(tomli_w.dumps(data))
    rejected(capsys, ["--endpoint-url", sandbox, "run", str(profile)], home, "source.path")
    s3 = client(sandbox, "s3")
    assert s3.list_objects_v2(Bucket=corpus_bucket).get("KeyCount", 0) == 0


# ---------------------------------------------------------------------------------------------
# 4. Import manifests: EC2 (the sandbox) fetches a broken one and ends the task cancelled with
#    a ClientError that says what is wrong


def _swap(old: bytes, new: bytes) -> Any:
    def edit(xml: bytes) -> bytes:
        assert old in xml, old
        return xml.replace(old, new, 1)

    return edit


MANIFEST_CASES: list[tuple[str, Any, str]] = [
    ("not-xml", lambda xml: b"this is not xml", "manifest"),
    ("empty", lambda xml: b"", "manifest"),
    ("wrong-root", _swap(b"<manifest>", b"<manifesto>"), "manifest"),
    ("unknown-format", _swap(b"<file-format>RAW</file-format>", b"<file-format>QCOW2</file-format>"),
     "file-format"),
    ("no-format", _swap(b"<file-format>RAW</file-format>", b""), "file-format"),
    ("size-text", lambda xml: xml.replace(b"<size>", b"<size>x", 1), "size"),
    ("count-mismatch", lambda xml: xml.replace(b'count="4"', b'count="5"', 1), "count"),
    ("gap", lambda xml: xml.replace(b'start="1048576"', b'start="1048577"', 1), "range"),
    ("doctype", lambda xml: xml.replace(b"<manifest>", b"<!DOCTYPE m [<!ENTITY x 'y'>]><manifest>",
     1), "DOCTYPE"),
    ("extra-element", _swap(b"<import>", b"<surprise/><import>"), "surprise"),
    ("volume-larger-than-asked", _swap(b"<volume-size>1</volume-size>",
     b"<volume-size>2</volume-size>"), "volume-size"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("edit", "words"), [c[1:] for c in MANIFEST_CASES], ids=[c[0] for c in MANIFEST_CASES]
)
def test_manifest(edit, words, sandbox, disk_images, tmp_path):
    s3 = client(sandbox, "s3")
    ec2 = client(sandbox, "ec2")
    bucket = f"manifest-{tmp_path.name[-20:].lower().replace('_', '-').strip('-')}"
    s3.create_bucket(Bucket=bucket)
    upload = prepare_upload(s3, bucket, disk_images["raw"], "RAW", upload_manifest=False)
    xml = edit(upload.manifest_xml)
    s3.put_object(Bucket=bucket, Key=upload.manifest_key, Body=xml)
    task = import_instance(ec2, upload)
    final = wait_task(ec2, task["ConversionTaskId"], timeout=30)
    assert final["State"] == "cancelled"
    message = final["StatusMessage"] or final["ImportInstance"]["Volumes"][0]["StatusMessage"]
    assert message.startswith("ClientError: ")
    assert words.lower() in message.lower(), message


# ---------------------------------------------------------------------------------------------
# 5. Malformed EC2 requests (boto3's own validation off, as a careless client would send them)


def _import_params(**changes: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "Platform": "Windows",
        "LaunchSpecification": {"Architecture": "x86_64", "InstanceType": "m5.large"},
        "DiskImages": [
            {
                "Image": {"Format": "RAW", "Bytes": 4194304,
                          "ImportManifestUrl": "https://example.com/m.xml"},
                "Volume": {"Size": 1},
            }
        ],
    }  # fmt: skip
    for path, value in changes.items():
        node = params
        *parents, last = path.split("__")
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return params


REQUEST_CASES: list[tuple[str, str, dict[str, Any], str, str]] = [
    ("no-platform", "import_instance", _import_params(Platform=None), "MissingParameter", "Platform"),
    ("platform-linux", "import_instance", _import_params(Platform="Linux"), "InvalidParameterValue", "Platform"),
    ("no-disk-image", "import_instance", _import_params(DiskImages=None), "MissingParameter", "DiskImage"),
    ("format-qcow2", "import_instance", _import_params(DiskImages__0__Image__Format="QCOW2"), "InvalidParameterValue", "Format"),
    ("bytes-zero", "import_instance", _import_params(DiskImages__0__Image__Bytes=0), "InvalidParameterValue", "Bytes"),
    ("bytes-text", "import_instance", _import_params(DiskImages__0__Image__Bytes="many"), "InvalidParameterValue", "Bytes"),
    ("size-zero", "import_instance", _import_params(DiskImages__0__Volume__Size=0), "InvalidParameterValue", "Size"),
    ("no-manifest-url", "import_instance", _import_params(DiskImages__0__Image__ImportManifestUrl=None), "MissingParameter", "ImportManifestUrl"),
    ("manifest-ftp", "import_instance", _import_params(DiskImages__0__Image__ImportManifestUrl="ftp://x/m.xml"), "InvalidParameterValue", "ImportManifestUrl"),
    ("instance-type", "import_instance", _import_params(LaunchSpecification__InstanceType="m1.huge"), "InvalidParameterValue", "InstanceType"),
    ("architecture", "import_instance", _import_params(LaunchSpecification__Architecture="sparc"), "InvalidParameterValue", "Architecture"),
    ("zone", "import_instance", _import_params(LaunchSpecification__Placement={"AvailabilityZone": "us-east-1z"}), "InvalidParameterValue", "us-east-1z"),
    ("tenancy", "import_instance", _import_params(LaunchSpecification__Placement={"Tenancy": "shared"}), "InvalidParameterValue", "Tenancy"),
    ("user-data", "import_instance", _import_params(LaunchSpecification__UserData={"Data": "not base64!"}), "InvalidParameterValue", "user data"),
    ("describe-malformed", "describe_conversion_tasks", {"ConversionTaskIds": ["bogus"]}, "InvalidConversionTaskId.Malformed", "bogus"),
    ("describe-unknown", "describe_conversion_tasks", {"ConversionTaskIds": ["import-i-00000000"]}, "InvalidConversionTaskId", "import-i-00000000"),
    ("cancel-missing", "cancel_conversion_task", {}, "MissingParameter", "ConversionTaskId"),
    ("cancel-malformed", "cancel_conversion_task", {"ConversionTaskId": "import-vol-zz"}, "InvalidConversionTaskId.Malformed", "import-vol-zz"),
    ("volume-no-zone", "import_volume", {"Image": {"Format": "RAW", "Bytes": 1, "ImportManifestUrl": "https://e/m"}, "Volume": {"Size": 1}}, "MissingParameter", "AvailabilityZone"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("operation", "params", "code", "words"),
    [c[1:] for c in REQUEST_CASES],
    ids=[c[0] for c in REQUEST_CASES],
)
def test_malformed_request(operation, params, code, words, sandbox):
    from botocore.exceptions import ClientError

    ec2 = client(sandbox, "ec2", parameter_validation=False)
    before = len(ec2.describe_conversion_tasks()["ConversionTasks"])
    with pytest.raises(ClientError) as caught:
        getattr(ec2, operation)(**params)
    err = caught.value.response
    assert err["Error"]["Code"] == code, err
    assert words in err["Error"]["Message"], err
    assert 400 <= err["ResponseMetadata"]["HTTPStatusCode"] < 500
    assert len(ec2.describe_conversion_tasks()["ConversionTasks"]) == before  # nothing made


def test_corpus_size():
    """The corpus is as large as the README says."""
    total = (
        len(PROFILE_CASES) + len(CLI_CASES) + len(IMAGE_NAMES) + len(MANIFEST_CASES)
        + len(REQUEST_CASES)
    )  # fmt: skip
    assert total >= 100, total
