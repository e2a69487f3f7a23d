"""The sandbox as strict as S3 and EC2 (issue 18), seen by plain boto3 and by the AWS CLI:
signatures checked (SigV4 header and query, SigV2 query) with S3's codes, unsigned EC2 calls
refused, zone ids honoured and echoed, regions checked, an image URL given as the manifest left
Pending, and volume sizes EC2 could not build refused."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from tests.helpers.aws import (
    CREDENTIALS,
    REGION,
    describe_task,
    import_instance,
    prepare_upload,
    presign,
    wait_task,
)

MANIFEST_STUB = "http://127.0.0.1:1/manifest.xml"  # never read: dry runs and refusals


def _session(key: str | None = None, secret: str | None = None, region: str = REGION) -> Any:
    import boto3

    return boto3.session.Session(
        region_name=region,
        aws_access_key_id=key or CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=secret or CREDENTIALS["aws_secret_access_key"],
    )


def _s3(sandbox: str, sigv4: bool = True, **session: Any) -> Any:
    from botocore.config import Config

    # Without signature_version boto3 presigns SigV2 in us-east-1 (docs/protocol.md section 3).
    options: dict[str, Any] = {"s3": {"addressing_style": "path"}}
    if sigv4:
        options["signature_version"] = "s3v4"
    return _session(**session).client("s3", endpoint_url=sandbox, config=Config(**options))


def _ec2(sandbox: str, **session: Any) -> Any:
    from botocore.config import Config

    return _session(**session).client(
        "ec2", endpoint_url=sandbox, config=Config(retries={"mode": "standard", "max_attempts": 1})
    )


def _fetch(url: str, method: str = "GET", data: bytes | None = None) -> tuple[int, bytes]:
    # A body needs a type: urllib's default (a form) has moto read it as form fields.
    headers = {"Content-Type": "application/octet-stream"} if data is not None else {}
    request = urllib.request.Request(url, method=method, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _code(body: bytes) -> str:
    import xml.etree.ElementTree as ET

    return ET.fromstring(body).findtext("Code") or ""


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture
def obj(s3: Any, sandbox_bucket: str) -> tuple[str, str]:
    """An object with a key that needs escaping (space, plus, unicode)."""
    key = "strict/a b+c/déjà.part0"
    s3.put_object(Bucket=sandbox_bucket, Key=key, Body=b"part zero")
    return sandbox_bucket, key


def _exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError:
        return False


# ---------------------------------------------------------------------------------------------
# The AWS CLI (awscli is in the test extra; it vendors its own botocore)


def _aws(
    sandbox: str, *args: str, region: str = REGION, **env: str
) -> subprocess.CompletedProcess[str]:
    try:
        import awscli  # noqa: F401
    except ImportError:
        pytest.fail(
            "the AWS CLI is missing: pip install -e '.[test]' (awscli is in the test extra)"
        )
    full_env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": region,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_MAX_ATTEMPTS": "1",
        **env,
    }
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        full_env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "awscli", "--endpoint-url", sandbox, "--output", "json", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
    )


# ---------------------------------------------------------------------------------------------
# 1. Signatures


@pytest.mark.parametrize("sigv4", [True, False], ids=["sigv4", "sigv2"])
def test_presigned_urls_boto3_makes_are_accepted(
    sandbox: str, obj: tuple[str, str], sigv4: bool
) -> None:
    bucket, key = obj
    s3 = _s3(sandbox, sigv4=sigv4)
    get = presign(s3, "get_object", bucket, key)
    assert ("X-Amz-Signature=" in get) is sigv4 and ("AWSAccessKeyId=" in get) is not sigv4
    assert _fetch(get) == (200, b"part zero")
    assert _fetch(presign(s3, "head_object", bucket, key), "HEAD")[0] == 200
    # The type is signed (SigV2 always signs it), so the PUT sends the one the URL was made for.
    put_url = s3.generate_presigned_url(
        "put_object",
        Params={"Bucket": bucket, "Key": key + ".copy", "ContentType": "application/octet-stream"},
        ExpiresIn=60,
    )
    assert _fetch(put_url, "PUT", b"copied")[0] == 200
    assert _fetch(presign(s3, "get_object", bucket, key + ".copy")) == (200, b"copied")
    assert _fetch(presign(s3, "delete_object", bucket, key + ".copy"), "DELETE")[0] == 204


def _tampered(url: str) -> str:
    name = "X-Amz-Signature=" if "X-Amz-Signature=" in url else "Signature="
    head, _, sig = url.partition(name)
    return head + name + ("0" if sig[0] != "0" else "1") + sig[1:]


@pytest.mark.parametrize("sigv4", [True, False], ids=["sigv4", "sigv2"])
def test_tampered_wrong_secret_and_wrong_method_urls_get_403(
    sandbox: str, s3: Any, obj: tuple[str, str], sigv4: bool
) -> None:
    bucket, key = obj
    good = _s3(sandbox, sigv4=sigv4)
    wrong_secret = _s3(sandbox, sigv4=sigv4, secret="not-the-secret")
    get = presign(good, "get_object", bucket, key)
    cases = {
        "tampered": (_tampered(get), "GET"),
        "wrong secret": (presign(wrong_secret, "get_object", bucket, key), "GET"),
        "GET URL sent as DELETE": (get, "DELETE"),
        "GET URL sent as PUT": (get, "PUT"),
        "another key": (get.replace(".part0", ".part1"), "GET"),
    }
    for what, (url, method) in cases.items():
        status, body = _fetch(url, method, b"x" if method == "PUT" else None)
        assert (status, _code(body)) == (403, "SignatureDoesNotMatch"), what
    assert _exists(s3, bucket, key)  # the DELETE did not delete it
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"part zero"  # nor the PUT


def test_an_unknown_access_key_gets_invalid_access_key_id(
    sandbox: str, obj: tuple[str, str]
) -> None:
    bucket, key = obj
    for sigv4 in (True, False):
        stranger = _s3(sandbox, sigv4=sigv4, key="AKIANOBODYKNOWS00000", secret="s")
        status, body = _fetch(presign(stranger, "get_object", bucket, key))
        assert (status, _code(body)) == (403, "InvalidAccessKeyId")
        assert b"<AWSAccessKeyId>AKIANOBODYKNOWS00000</AWSAccessKeyId>" in body
    with pytest.raises(ClientError) as exc:
        _s3(sandbox, key="AKIANOBODYKNOWS00000", secret="s").get_object(Bucket=bucket, Key=key)
    assert _error(exc) == ("InvalidAccessKeyId", 403)


def test_expired_urls_get_403_request_has_expired(sandbox: str, obj: tuple[str, str]) -> None:
    bucket, key = obj
    urls = [presign(_s3(sandbox, sigv4=v4), "get_object", bucket, key, 1) for v4 in (True, False)]
    time.sleep(2.1)
    for url in urls:
        status, body = _fetch(url)
        assert (status, _code(body)) == (403, "AccessDenied")
        assert b"Request has expired" in body


def test_header_signed_requests_are_checked_too(sandbox: str, s3: Any, sandbox_bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        _s3(sandbox, secret="not-the-secret").put_object(
            Bucket=sandbox_bucket, Key="intruder", Body=b"x"
        )
    assert _error(exc) == ("SignatureDoesNotMatch", 403)
    assert not _exists(s3, sandbox_bucket, "intruder")
    status, body = _fetch(f"{sandbox}/{sandbox_bucket}/intruder", "PUT", b"anonymous")
    assert (status, _code(body)) == (403, "AccessDenied")
    assert not _exists(s3, sandbox_bucket, "intruder")


def test_a_body_that_is_not_the_signed_payload_is_refused(
    sandbox: str, s3: Any, sandbox_bucket: str
) -> None:
    """S3 checks x-amz-content-sha256 against the body: a body swapped after signing fails."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest

    url = f"{sandbox}/{sandbox_bucket}/swapped"
    signed = AWSRequest(method="PUT", url=url, data=b"what was signed")
    creds = _session().get_credentials()
    S3SigV4Auth(creds, "s3", REGION).add_auth(signed)
    assert signed.headers["X-Amz-Content-SHA256"] == hashlib.sha256(b"what was signed").hexdigest()
    target = urlsplit(sandbox)
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
    for body, expected in ((b"what was sent instead", 400), (b"what was signed", 200)):
        conn.request("PUT", urlsplit(url).path, body=body, headers=dict(signed.headers.items()))
        response = conn.getresponse()
        answer = response.read()
        assert response.status == expected, answer
        if expected == 400:
            assert _code(answer) == "XAmzContentSHA256Mismatch"
    conn.close()
    assert s3.get_object(Bucket=sandbox_bucket, Key="swapped")["Body"].read() == b"what was signed"


def test_ec2_refuses_unsigned_and_wrongly_signed_calls(sandbox: str) -> None:
    from botocore import UNSIGNED
    from botocore.config import Config

    unsigned = _session().client(
        "ec2", endpoint_url=sandbox, config=Config(signature_version=UNSIGNED)
    )
    with pytest.raises(ClientError) as exc:
        unsigned.describe_conversion_tasks()
    assert _error(exc) == ("MissingAuthenticationToken", 403)
    with pytest.raises(ClientError) as exc:
        unsigned.describe_availability_zones()  # moto's own actions are guarded as well
    assert _error(exc) == ("MissingAuthenticationToken", 403)
    with pytest.raises(ClientError) as exc:
        _ec2(sandbox, secret="not-the-secret").describe_conversion_tasks()
    assert _error(exc) == ("AuthFailure", 401)
    with pytest.raises(ClientError) as exc:
        _ec2(sandbox, key="AKIANOBODYKNOWS00000", secret="s").describe_conversion_tasks()
    assert _error(exc) == ("AuthFailure", 401)
    assert "ConversionTasks" in _ec2(sandbox).describe_conversion_tasks()


def test_the_aws_cli_is_verified_like_boto3(
    sandbox: str, s3: Any, sandbox_bucket: str, tmp_path: Path
) -> None:
    """The CLI's own botocore signs (headers; presigns SigV2 in us-east-1, as CLI v1 does) and
    gets in; unsigned EC2 calls and tampered URLs do not."""
    source = tmp_path / "cli.part0"
    source.write_bytes(b"through the cli " * 100)
    target = f"s3://{sandbox_bucket}/cli/cli.part0"
    put = _aws(sandbox, "s3", "cp", str(source), target)
    assert put.returncode == 0, put.stderr
    presigned = _aws(sandbox, "s3", "presign", target, "--expires-in", "60")
    assert presigned.returncode == 0, presigned.stderr
    url = presigned.stdout.strip()
    assert "Signature=" in url
    assert _fetch(url) == (200, source.read_bytes())
    status, body = _fetch(_tampered(url))
    assert (status, _code(body)) == (403, "SignatureDoesNotMatch")

    unsigned = _aws(sandbox, "ec2", "describe-conversion-tasks", "--no-sign-request")
    assert unsigned.returncode != 0
    assert "MissingAuthenticationToken" in unsigned.stderr, unsigned.stderr
    assert "Buckets" not in unsigned.stdout  # not moto's S3 answering with a bucket listing
    wrong = _aws(
        sandbox, "ec2", "describe-conversion-tasks", AWS_SECRET_ACCESS_KEY="not-the-secret"
    )
    assert wrong.returncode != 0 and "AuthFailure" in wrong.stderr, wrong.stderr
    signed = _aws(sandbox, "ec2", "describe-conversion-tasks")
    assert signed.returncode == 0, signed.stderr
    assert "ConversionTasks" in json.loads(signed.stdout)


# ---------------------------------------------------------------------------------------------
# 2. Availability zone ids


def test_import_instance_honours_and_echoes_the_zone_id(
    ec2: Any, s3: Any, sandbox_bucket: str, disk_images: dict[str, Any]
) -> None:
    zones = {
        z["ZoneId"]: z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]
    }
    zone_id = "use1-az1"
    assert zones[zone_id] != "us-east-1a"  # so that the default zone cannot pass for it
    upload = prepare_upload(s3, sandbox_bucket, disk_images["vmdk_stream"], "VMDK")
    task = import_instance(
        ec2,
        upload,
        LaunchSpecification={
            "Architecture": "x86_64",
            "InstanceType": "m1.xlarge",
            "Placement": {"AvailabilityZoneId": zone_id},
        },
    )
    volume = task["ImportInstance"]["Volumes"][0]
    assert (volume["AvailabilityZone"], volume["AvailabilityZoneId"]) == (zones[zone_id], zone_id)
    done = wait_task(ec2, task["ConversionTaskId"])
    assert done["State"] == "completed", done
    assert done["ImportInstance"]["Volumes"][0]["AvailabilityZoneId"] == zone_id
    built = ec2.describe_volumes(VolumeIds=[done["ImportInstance"]["Volumes"][0]["Volume"]["Id"]])
    assert built["Volumes"][0]["AvailabilityZone"] == zones[zone_id]
    reservation = ec2.describe_instances(InstanceIds=[task["ImportInstance"]["InstanceId"]])
    instance = reservation["Reservations"][0]["Instances"][0]
    assert instance["Placement"]["AvailabilityZone"] == zones[zone_id]


def test_import_volume_with_only_a_zone_id(
    sandbox: str, ec2: Any, s3: Any, sandbox_bucket: str, disk_images: dict[str, Any]
) -> None:
    """boto3 imports (AWS CLI v1 removes import-volume and import-instance, see
    awscli/customizations/removals.py); the CLI reads the task back."""
    upload = prepare_upload(s3, sandbox_bucket, disk_images["raw"], "RAW")
    task = ec2.import_volume(
        AvailabilityZoneId="use1-az2",
        Image={
            "Format": "RAW",
            "Bytes": upload.image_bytes,
            "ImportManifestUrl": upload.manifest_url,
        },
        Volume={"Size": 1},
    )["ConversionTask"]
    details = task["ImportVolume"]
    assert (details["AvailabilityZone"], details["AvailabilityZoneId"]) == (
        "us-east-1c",
        "use1-az2",
    )
    done = wait_task(ec2, task["ConversionTaskId"])
    assert done["State"] == "completed", done
    out = _aws(
        sandbox,
        "ec2",
        "describe-conversion-tasks",
        "--conversion-task-ids",
        task["ConversionTaskId"],
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)["ConversionTasks"][0]["ImportVolume"]
    assert (seen["AvailabilityZone"], seen["AvailabilityZoneId"]) == ("us-east-1c", "use1-az2")
    volume = ec2.describe_volumes(VolumeIds=[seen["Volume"]["Id"]])["Volumes"][0]
    assert volume["AvailabilityZone"] == "us-east-1c"


@pytest.mark.parametrize(
    ("placement", "code", "mentions"),
    [
        ({"AvailabilityZoneId": "use1-az99"}, "InvalidParameterValue", "use1-az99"),
        (
            {"AvailabilityZoneId": "use1-az1", "AvailabilityZone": "us-east-1b"},
            "InvalidParameterCombination",
            "AvailabilityZoneId",
        ),
    ],
)
def test_bad_zone_ids_are_refused(
    ec2: Any, placement: dict[str, str], code: str, mentions: str
) -> None:
    with pytest.raises(ClientError) as exc:
        ec2.import_volume(
            DryRun=True,
            Image={"Format": "RAW", "Bytes": 1, "ImportManifestUrl": MANIFEST_STUB},
            Volume={"Size": 1},
            **placement,
        )
    assert _error(exc) == (code, 400)
    assert mentions in exc.value.response["Error"]["Message"]


# ---------------------------------------------------------------------------------------------
# 3. Regions


def _dry_import_instance(ec2: Any) -> None:
    ec2.import_instance(
        DryRun=True,
        Platform="Windows",
        DiskImages=[
            {
                "Image": {"Format": "VMDK", "Bytes": 1024, "ImportManifestUrl": MANIFEST_STUB},
                "Volume": {"Size": 1},
            }
        ],
    )


@pytest.mark.parametrize("region", ["eu-north-1", "af-south-1", "me-south-1"])
def test_regions_without_import_instance_refuse_it(sandbox: str, region: str) -> None:
    ec2 = _ec2(sandbox, region=region)
    with pytest.raises(ClientError) as exc:
        _dry_import_instance(ec2)
    assert _error(exc) == ("UnsupportedOperation", 400)
    assert region in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        ec2.import_volume(
            DryRun=True,
            AvailabilityZone=f"{region}a",
            Image={"Format": "RAW", "Bytes": 1, "ImportManifestUrl": MANIFEST_STUB},
            Volume={"Size": 1},
        )
    assert _error(exc) == ("UnsupportedOperation", 400)
    assert ec2.describe_conversion_tasks()["ConversionTasks"] == []  # describing is no import


def test_regions_offering_it_pass_a_dry_run(sandbox: str) -> None:
    for region in ("us-east-2", "eu-central-1", "ap-south-1"):
        with pytest.raises(ClientError) as exc:
            _dry_import_instance(_ec2(sandbox, region=region))
        assert _error(exc) == ("DryRunOperation", 412), region


def test_the_aws_cli_lists_no_tasks_in_a_region_that_refused_them(sandbox: str) -> None:
    """Describing works everywhere (the CLI cannot import: v1 removes import-instance)."""
    with pytest.raises(ClientError) as exc:
        _dry_import_instance(_ec2(sandbox, region="eu-north-1"))
    assert _error(exc) == ("UnsupportedOperation", 400)
    out = _aws(sandbox, "ec2", "describe-conversion-tasks", region="eu-north-1")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["ConversionTasks"] == []


# ---------------------------------------------------------------------------------------------
# 4. An image URL given as the manifest


def test_an_image_url_as_the_manifest_stays_pending(
    sandbox: str, ec2: Any, s3: Any, sandbox_bucket: str, disk_images: dict[str, Any]
) -> None:
    image = disk_images["vmdk_stream"]
    key = "strict/whole-image.vmdk"
    s3.put_object(Bucket=sandbox_bucket, Key=key, Body=image.read_bytes())
    upload = prepare_upload(s3, sandbox_bucket, image, "VMDK", upload_parts=False)
    upload.manifest_url = presign(s3, "get_object", sandbox_bucket, key)
    task = import_instance(ec2, upload)
    try:
        time.sleep(2.0)  # four of the sandbox's polls; the old answer came within 0.5 s
        out = _aws(
            sandbox,
            "ec2",
            "describe-conversion-tasks",
            "--conversion-task-ids",
            task["ConversionTaskId"],
        )
        assert out.returncode == 0, out.stderr
        seen = json.loads(out.stdout)["ConversionTasks"][0]
        assert (seen["State"], seen["StatusMessage"]) == ("active", "Pending"), seen
        assert seen["ImportInstance"]["Volumes"][0]["Status"] == "active"
        assert describe_task(ec2, task["ConversionTaskId"])["State"] == "active"
    finally:
        ec2.cancel_conversion_task(ConversionTaskId=task["ConversionTaskId"])
    done = wait_task(ec2, task["ConversionTaskId"])
    assert done["State"] == "cancelled"


# ---------------------------------------------------------------------------------------------
# 5. Volume sizes EC2 could not build


@pytest.mark.parametrize(
    ("image_format", "image_bytes", "size", "mentions"),
    [
        ("RAW", 1024, 20000, "16384"),
        ("VMDK", 1024, 16385, "16384"),
        ("RAW", 2 * 2**30 + 1, 2, "smaller than the image"),
    ],
)
def test_impossible_volume_sizes_are_refused(
    ec2: Any, image_format: str, image_bytes: int, size: int, mentions: str
) -> None:
    with pytest.raises(ClientError) as exc:
        ec2.import_instance(
            DryRun=True,
            Platform="Windows",
            DiskImages=[
                {
                    "Image": {
                        "Format": image_format,
                        "Bytes": image_bytes,
                        "ImportManifestUrl": MANIFEST_STUB,
                    },
                    "Volume": {"Size": size},
                }
            ],
        )
    assert _error(exc) == ("InvalidParameterValue", 400)
    assert mentions in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        ec2.import_volume(
            DryRun=True,
            AvailabilityZone="us-east-1a",
            Image={
                "Format": image_format,
                "Bytes": image_bytes,
                "ImportManifestUrl": MANIFEST_STUB,
            },
            Volume={"Size": size},
        )
    assert _error(exc) == ("InvalidParameterValue", 400)


def test_a_volume_smaller_than_the_virtual_disk_fails_the_task(
    ec2: Any, s3: Any, sandbox_bucket: str, qemu_img: str, tmp_path: Path
) -> None:
    """A stream-optimized VMDK of 2 GiB virtual size is a few KiB: only the image itself tells
    the sandbox that Volume.Size=1 cannot hold it."""
    image = tmp_path / "two-gib.vmdk"
    subprocess.run(
        [
            qemu_img,
            "create",
            "-q",
            "-f",
            "vmdk",
            "-o",
            "subformat=streamOptimized",
            str(image),
            "2G",
        ],
        check=True,
    )
    assert image.stat().st_size < 1 << 20
    upload = prepare_upload(s3, sandbox_bucket, image, "VMDK", volume_size=1)
    task = import_instance(ec2, upload)
    done = wait_task(ec2, task["ConversionTaskId"])
    assert done["State"] == "cancelled", done
    assert done["StatusMessage"].startswith("ClientError: InvalidParameterValue"), done
    assert "Volume.Size (1 GiB)" in done["StatusMessage"]
    assert "Id" not in done["ImportInstance"]["Volumes"][0]["Volume"]
