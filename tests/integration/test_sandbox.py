"""The sandbox against plain boto3: the whole ImportInstance flow, cancel, and every error."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.helpers.aws import (
    Upload,
    cancel_quietly,
    client,
    describe_task,
    import_instance,
    prepare_upload,
    presign,
    wait_task,
)


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _status(exc: pytest.ExceptionInfo[ClientError]) -> int:
    return int(exc.value.response["ResponseMetadata"]["HTTPStatusCode"])


def _instance(ec2: Any, instance_id: str) -> dict[str, Any]:
    reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return dict(reservations[0]["Instances"][0])


# ---------------------------------------------------------------------------------------------
# The happy paths


@pytest.mark.parametrize(
    ("image", "fmt"),
    [("vmdk_stream", "VMDK"), ("vhd_dynamic", "VHD"), ("vhd_fixed", "VHD"), ("raw", "RAW")],
)
def test_import_instance_completes_with_a_stopped_instance_and_its_volume(
    ec2: Any, s3: Any, sandbox_bucket: str, disk_images: dict[str, Any], image: str, fmt: str
) -> None:
    upload = prepare_upload(s3, sandbox_bucket, disk_images[image], fmt, volume_size=2)
    before = datetime.now(UTC)
    task = import_instance(ec2, upload, Description="integration")
    assert task["ConversionTaskId"].startswith("import-i-")
    assert task["State"] == "active"
    assert task["StatusMessage"] == "Pending"
    instance_id = task["ImportInstance"]["InstanceId"]
    assert instance_id.startswith("i-")
    # ExpirationTime is a plain string: creation + 7 days.
    expires = datetime.strptime(task["ExpirationTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert (
        timedelta(days=7) - timedelta(seconds=5) < expires - before < timedelta(days=7, seconds=5)
    )
    vol = task["ImportInstance"]["Volumes"][0]
    assert vol["Image"] == {
        "Format": fmt,
        "Size": upload.image_bytes,
        "ImportManifestUrl": upload.manifest_url,
    }
    assert vol["Volume"]["Size"] == 2
    # The instance exists at once, stopped.
    assert _instance(ec2, instance_id)["State"]["Name"] == "stopped"

    done = wait_task(ec2, task["ConversionTaskId"])
    assert done["State"] == "completed", done
    vol = done["ImportInstance"]["Volumes"][0]
    assert vol["Status"] == "completed"
    assert vol["BytesConverted"] == upload.image_bytes
    volume_id = vol["Volume"]["Id"]
    assert volume_id.startswith("vol-")

    inst = _instance(ec2, instance_id)
    assert inst["State"]["Name"] == "stopped"
    assert inst["InstanceType"] == "m1.xlarge"
    assert inst.get("Platform") == "windows"
    assert [m["Ebs"]["VolumeId"] for m in inst["BlockDeviceMappings"]] == [volume_id]
    volume = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    assert volume["Size"] == 2
    assert volume["State"] == "in-use"
    assert volume["Attachments"][0]["InstanceId"] == instance_id
    assert volume["AvailabilityZone"] == vol["AvailabilityZone"]


def test_progress_messages_are_those_aws_shows(
    s3: Any, sandbox_bucket: str, disk_images: dict[str, Any], slow_sandbox: str
) -> None:
    ec2 = client(slow_sandbox, "ec2")
    s3 = client(slow_sandbox, "s3")
    s3.create_bucket(Bucket=sandbox_bucket)
    upload = prepare_upload(s3, sandbox_bucket, disk_images["raw"], "RAW")
    task = import_instance(ec2, upload)
    seen: list[dict[str, Any]] = []
    wait_task(ec2, task["ConversionTaskId"], seen=seen, interval=0.1)
    messages = [t["ImportInstance"]["Volumes"][0].get("StatusMessage", "") for t in seen]
    assert any(m.startswith("Pending : Downloaded ") for m in messages), messages
    assert any(m.startswith("Progress: ") and m.endswith("%") for m in messages), messages
    converted = [t["ImportInstance"]["Volumes"][0]["BytesConverted"] for t in seen]
    assert converted == sorted(converted)  # BytesConverted only climbs
    assert len({c for c in converted if 0 < c < upload.image_bytes}) > 0
    assert seen[-1]["State"] == "completed"


def test_import_volume_completes(
    ec2: Any, s3: Any, sandbox_bucket: str, disk_images: dict[str, Any]
) -> None:
    upload = prepare_upload(s3, sandbox_bucket, disk_images["vmdk_stream"], "VMDK", volume_size=3)
    task = ec2.import_volume(
        AvailabilityZone="us-east-1b",
        Image={
            "Format": "VMDK",
            "Bytes": upload.image_bytes,
            "ImportManifestUrl": upload.manifest_url,
        },
        Volume={"Size": 3},
    )["ConversionTask"]
    assert task["ConversionTaskId"].startswith("import-vol-")
    assert task["ImportVolume"]["AvailabilityZone"] == "us-east-1b"
    done = wait_task(ec2, task["ConversionTaskId"])
    assert done["State"] == "completed"
    volume_id = done["ImportVolume"]["Volume"]["Id"]
    volume = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    assert (volume["Size"], volume["State"], volume["AvailabilityZone"]) == (
        3,
        "available",
        "us-east-1b",
    )


def test_a_missing_manifest_keeps_the_task_pending_until_it_appears(
    ec2: Any, s3: Any, sandbox_bucket: str, disk_images: dict[str, Any]
) -> None:
    upload = prepare_upload(
        s3, sandbox_bucket, disk_images["vmdk_stream"], "VMDK", upload_manifest=False
    )
    task_id = import_instance(ec2, upload)["ConversionTaskId"]
    time.sleep(1.2)  # more than two of the sandbox's manifest polls
    task = describe_task(ec2, task_id)
    assert (task["State"], task["StatusMessage"]) == ("active", "Pending")
    s3.put_object(Bucket=upload.bucket, Key=upload.manifest_key, Body=upload.manifest_xml)
    assert wait_task(ec2, task_id)["State"] == "completed"


def test_describe_without_ids_lists_every_task(
    ec2: Any, s3: Any, sandbox_bucket: str, disk_images: dict[str, Any]
) -> None:
    upload = prepare_upload(s3, sandbox_bucket, disk_images["vmdk_stream"], "VMDK")
    task_id = import_instance(ec2, upload)["ConversionTaskId"]
    ids = [t["ConversionTaskId"] for t in ec2.describe_conversion_tasks()["ConversionTasks"]]
    assert task_id in ids
    wait_task(ec2, task_id)


# ---------------------------------------------------------------------------------------------
# Cancel


def test_cancel_an_active_task_terminates_its_instance(
    ec2: Any, s3: Any, sandbox_bucket: str, disk_images: dict[str, Any]
) -> None:
    upload = prepare_upload(
        s3, sandbox_bucket, disk_images["vmdk_stream"], "VMDK", upload_manifest=False
    )
    task = import_instance(ec2, upload)
    task_id, instance_id = task["ConversionTaskId"], task["ImportInstance"]["InstanceId"]
    assert ec2.cancel_conversion_task(ConversionTaskId=task_id, ReasonMessage="changed my mind")
    assert describe_task(ec2, task_id)["State"] in ("cancelling", "cancelled")
    done = wait_task(ec2, task_id)
    assert done["State"] == "cancelled"
    assert done["StatusMessage"] == "changed my mind"
    assert _instance(ec2, instance_id)["State"]["Name"] == "terminated"
    with pytest.raises(ClientError) as exc:
        ec2.cancel_conversion_task(ConversionTaskId=task_id)
    assert _code(exc) == "IncorrectState"


def test_cancel_a_completed_task_is_incorrect_state(
    ec2: Any, s3: Any, sandbox_bucket: str, disk_images: dict[str, Any]
) -> None:
    upload = prepare_upload(s3, sandbox_bucket, disk_images["vmdk_stream"], "VMDK")
    task_id = import_instance(ec2, upload)["ConversionTaskId"]
    assert wait_task(ec2, task_id)["State"] == "completed"
    with pytest.raises(ClientError) as exc:
        ec2.cancel_conversion_task(ConversionTaskId=task_id)
    assert (_code(exc), _status(exc)) == ("IncorrectState", 400)


# ---------------------------------------------------------------------------------------------
# Errors, in EC2's XML and codes


@pytest.mark.parametrize("bad", ["import-i-XYZ", "i-12345678", "import-x-abcdefgh", "nonsense"])
def test_malformed_task_ids(ec2: Any, bad: str) -> None:
    with pytest.raises(ClientError) as exc:
        ec2.describe_conversion_tasks(ConversionTaskIds=[bad])
    assert _code(exc) == "InvalidConversionTaskId.Malformed"
    with pytest.raises(ClientError) as exc:
        ec2.cancel_conversion_task(ConversionTaskId=bad)
    assert _code(exc) == "InvalidConversionTaskId.Malformed"


def test_unknown_task_ids(ec2: Any) -> None:
    for call in (
        lambda: ec2.describe_conversion_tasks(ConversionTaskIds=["import-i-abcd1234"]),
        lambda: ec2.cancel_conversion_task(ConversionTaskId="import-vol-abcd1234"),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert (_code(exc), _status(exc)) == ("InvalidConversionTaskId", 400)


def test_dry_runs(slow_sandbox: str, disk_images: dict[str, Any]) -> None:
    # The slow sandbox: the task must still be active when its cancel is dry-run.
    ec2, s3 = client(slow_sandbox, "ec2"), client(slow_sandbox, "s3")
    sandbox_bucket = f"dry-runs-{time.monotonic_ns():x}"
    s3.create_bucket(Bucket=sandbox_bucket)
    upload = prepare_upload(s3, sandbox_bucket, disk_images["vmdk_stream"], "VMDK")
    before = len(ec2.describe_conversion_tasks()["ConversionTasks"])
    with pytest.raises(ClientError) as exc:
        import_instance(ec2, upload, DryRun=True)
    assert (_code(exc), _status(exc)) == ("DryRunOperation", 412)
    assert len(ec2.describe_conversion_tasks()["ConversionTasks"]) == before
    with pytest.raises(ClientError) as exc:
        ec2.describe_conversion_tasks(DryRun=True)
    assert _code(exc) == "DryRunOperation"
    task_id = import_instance(ec2, upload)["ConversionTaskId"]
    with pytest.raises(ClientError) as exc:
        ec2.cancel_conversion_task(ConversionTaskId=task_id, DryRun=True)
    assert _code(exc) == "DryRunOperation"
    assert wait_task(ec2, task_id)["State"] == "completed"  # the dry run cancelled nothing


def test_a_dry_run_still_validates(
    ec2: Any, s3: Any, sandbox_bucket: str, disk_images: Any
) -> None:
    upload = prepare_upload(s3, sandbox_bucket, disk_images["vmdk_stream"], "VMDK")
    with pytest.raises(ClientError) as exc:
        import_instance(ec2, upload, DryRun=True, Platform="Linux")
    assert _code(exc) == "InvalidParameterValue"


def test_a_sixth_active_task_is_refused(
    ec2: Any, s3: Any, sandbox_bucket: str, disk_images: dict[str, Any]
) -> None:
    active = [
        t["ConversionTaskId"]
        for t in ec2.describe_conversion_tasks()["ConversionTasks"]
        if t["State"] == "active"
    ]
    upload = prepare_upload(
        s3, sandbox_bucket, disk_images["vmdk_stream"], "VMDK", upload_manifest=False
    )
    created: list[str] = []
    try:
        for _ in range(5 - len(active)):
            created.append(import_instance(ec2, upload)["ConversionTaskId"])
        with pytest.raises(ClientError) as exc:
            import_instance(ec2, upload)
        assert (_code(exc), _status(exc)) == ("ResourceLimitExceeded", 400)
        with pytest.raises(ClientError) as exc:
            ec2.import_volume(
                AvailabilityZone="us-east-1a",
                Image={"Format": "VMDK", "Bytes": 1, "ImportManifestUrl": upload.manifest_url},
                Volume={"Size": 1},
            )
        assert _code(exc) == "ResourceLimitExceeded"
    finally:
        for task_id in created:
            cancel_quietly(ec2, task_id)
    for task_id in created:
        wait_task(ec2, task_id)


def _unvalidated_ec2(sandbox: str) -> Any:
    return client(sandbox, "ec2", parameter_validation=False)


@pytest.mark.parametrize(
    ("change", "code", "mentions"),
    [
        ({"Platform": None}, "MissingParameter", "Platform"),
        ({"DiskImages": None}, "MissingParameter", "DiskImage"),
        ({"Platform": "Linux"}, "InvalidParameterValue", "Linux"),
        ({"LaunchSpecification": {"InstanceType": "m9.huge"}}, "InvalidParameterValue", "m9.huge"),
        ({"LaunchSpecification": {"Architecture": "sparc"}}, "InvalidParameterValue", "sparc"),
        (
            {"LaunchSpecification": {"InstanceInitiatedShutdownBehavior": "explode"}},
            "InvalidParameterValue",
            "explode",
        ),
        ({"format": "QCOW2"}, "InvalidParameterValue", "QCOW2"),
        ({"bytes": None}, "MissingParameter", "Bytes"),
        ({"size": None}, "MissingParameter", "Volume.Size"),
        ({"url": "ftp://nowhere/x"}, "InvalidParameterValue", "ImportManifestUrl"),
        (
            {"LaunchSpecification": {"UserData": {"Data": "not base64!"}}},
            "InvalidParameterValue",
            "BASE64",
        ),
        (
            {"LaunchSpecification": {"Placement": {"AvailabilityZone": "us-east-1z"}}},
            "InvalidParameterValue",
            "us-east-1z",
        ),
        ({"LaunchSpecification": {"SubnetId": "subnet-00000000"}}, "InvalidSubnetID.NotFound", ""),
        ({"LaunchSpecification": {"GroupNames": ["no-such-group"]}}, "InvalidGroup.NotFound", ""),
    ],
)
def test_bad_import_instance_parameters(
    sandbox: str, change: dict[str, Any], code: str, mentions: str
) -> None:
    ec2 = _unvalidated_ec2(sandbox)
    image: dict[str, Any] = {
        "Format": change.pop("format", "VMDK"),
        "Bytes": change.pop("bytes", 1024),
        "ImportManifestUrl": change.pop("url", "http://127.0.0.1:1/manifest.xml"),
    }
    volume: dict[str, Any] = {"Size": change.pop("size", 1)}
    params: dict[str, Any] = {
        "Platform": "Windows",
        "DiskImages": [
            {
                "Image": {k: v for k, v in image.items() if v is not None},
                "Volume": {k: v for k, v in volume.items() if v is not None},
            }
        ],
        **change,
    }
    params = {k: v for k, v in params.items() if v is not None}
    before = len(ec2.describe_instances()["Reservations"])
    with pytest.raises(ClientError) as exc:
        ec2.import_instance(**params)
    assert _code(exc) == code
    assert 400 <= _status(exc) < 500
    assert mentions in exc.value.response["Error"]["Message"]
    assert len(ec2.describe_instances()["Reservations"]) == before  # nothing was created


def test_import_volume_needs_a_zone(sandbox: str) -> None:
    ec2 = _unvalidated_ec2(sandbox)
    with pytest.raises(ClientError) as exc:
        ec2.import_volume(
            Image={"Format": "RAW", "Bytes": 1, "ImportManifestUrl": "http://x/m"},
            Volume={"Size": 1},
        )
    assert _code(exc) == "MissingParameter"


def test_moto_still_answers_everything_else(ec2: Any, s3: Any) -> None:
    assert ec2.describe_availability_zones()["AvailabilityZones"]
    assert "Buckets" in s3.list_buckets()


# ---------------------------------------------------------------------------------------------
# Failures: the task ends cancelled with ClientError


def _fails_with(ec2: Any, upload: Upload, *fragments: str) -> dict[str, Any]:
    task = import_instance(ec2, upload)
    done = wait_task(ec2, task["ConversionTaskId"])
    assert done["State"] == "cancelled", done
    message = done["StatusMessage"]
    assert message.startswith("ClientError: "), message
    for fragment in fragments:
        assert fragment in message, message
    vol = done["ImportInstance"]["Volumes"][0]
    assert vol["Status"] == "cancelled"
    assert "Id" not in vol["Volume"]
    assert _instance(ec2, task["ImportInstance"]["InstanceId"])["State"]["Name"] == "terminated"
    return done


def test_monolithic_sparse_vmdk_is_cancelled_as_aws_does(
    ec2: Any, s3: Any, sandbox_bucket: str, disk_images: dict[str, Any]
) -> None:
    upload = prepare_upload(s3, sandbox_bucket, disk_images["vmdk_sparse"], "VMDK")
    _fails_with(ec2, upload, "Unsupported VMDK File Format")


def test_differencing_vhd_fails_with_footers_not_identical(
    ec2: Any, s3: Any, sandbox_bucket: str, disk_images: dict[str, Any]
) -> None:
    upload = prepare_upload(s3, sandbox_bucket, disk_images["vhd_differencing"], "VHD")
    _fails_with(ec2, upload, "Footers not identical")


def test_a_format_that_does_not_match_file_format(
    ec2: Any, s3: Any, sandbox_bucket: str, disk_images: dict[str, Any]
) -> None:
    upload = prepare_upload(s3, sandbox_bucket, disk_images["vhd_fixed"], "VMDK")
    _fails_with(ec2, upload, "VMDK", "VHD")


def test_a_bad_manifest(ec2: Any, s3: Any, sandbox_bucket: str, disk_images: Any) -> None:
    upload = prepare_upload(s3, sandbox_bucket, disk_images["vmdk_stream"], "VMDK")
    s3.put_object(Bucket=upload.bucket, Key=upload.manifest_key, Body=b"<manifest><oops/>")
    _fails_with(ec2, upload, "invalid import manifest", "not well-formed")


def test_a_manifest_whose_ranges_disagree_with_a_part(
    ec2: Any, s3: Any, sandbox_bucket: str, disk_images: dict[str, Any]
) -> None:
    upload = prepare_upload(s3, sandbox_bucket, disk_images["raw"], "RAW")
    key = upload.manifest_key.replace("manifest.xml", ".part1")
    s3.put_object(Bucket=upload.bucket, Key=key, Body=b"short")
    _fails_with(ec2, upload, "part 1", "5 bytes")


def test_a_manifest_that_disagrees_with_the_request(
    ec2: Any, s3: Any, sandbox_bucket: str, disk_images: dict[str, Any]
) -> None:
    upload = prepare_upload(s3, sandbox_bucket, disk_images["raw"], "RAW")
    upload.image_bytes += 1
    _fails_with(ec2, upload, "Image.Bytes")


# ---------------------------------------------------------------------------------------------
# Presigned URLs: expiry enforced as S3 does (moto alone does not)


def test_expired_and_overlong_presigned_urls(
    ec2: Any, s3: Any, sandbox_bucket: str, disk_images: dict[str, Any]
) -> None:
    upload = prepare_upload(
        s3, sandbox_bucket, disk_images["vmdk_stream"], "VMDK", manifest_expires=1
    )
    time.sleep(2.1)
    with pytest.raises(urllib.error.HTTPError) as http:
        urllib.request.urlopen(upload.manifest_url, timeout=10)
    assert http.value.code == 403
    body = http.value.read().decode()
    assert "<Code>AccessDenied</Code>" in body and "Request has expired" in body
    _fails_with(ec2, upload, "403", "Request has expired")

    week_plus = presign(s3, "get_object", upload.bucket, upload.manifest_key, 604801)
    with pytest.raises(urllib.error.HTTPError) as http:
        urllib.request.urlopen(week_plus, timeout=10)
    assert http.value.code == 400
    assert "AuthorizationQueryParametersError" in http.value.read().decode()
    fresh = presign(s3, "get_object", upload.bucket, upload.manifest_key, 60)
    with urllib.request.urlopen(fresh, timeout=10) as resp:
        assert resp.read() == upload.manifest_xml


def test_connections_are_kept_alive_across_requests(
    s3: Any, sandbox: str, sandbox_bucket: str
) -> None:
    """HTTP/1.1 persistent connections, as S3 keeps them: a PUT with a body, a GET, a HEAD and
    an error answered without reading its body all go over one TCP connection (counted by the
    proxy's accepts), each answer framed so the next one reads cleanly."""
    import http.client
    from urllib.parse import urlsplit

    from tests.helpers.netproxy import NetProxy

    body = b"keep-alive " * 1000
    with NetProxy(sandbox, lifetime=60) as proxy:
        conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=10)

        def request(method: str, url: str, data: bytes | None = None) -> http.client.HTTPResponse:
            target = urlsplit(url)
            # The Host the URL was signed for (the sandbox's), not the proxy's: it is signed.
            headers = {"Host": target.netloc}
            conn.request(method, f"{target.path}?{target.query}", body=data, headers=headers)
            response = conn.getresponse()
            response.read()
            assert response.getheader("Connection", "").lower() != "close"
            return response

        put = request("PUT", presign(s3, "put_object", sandbox_bucket, "ka"), body)
        first = conn.sock
        get = request("GET", presign(s3, "get_object", sandbox_bucket, "ka"))
        head = request("HEAD", presign(s3, "head_object", sandbox_bucket, "ka"))
        # A signature that does not match: answered 403, its body left unread by moto.
        bad = presign(s3, "put_object", sandbox_bucket, "ka").replace("X-Amz-Signature=", "X=")
        refused = request("PUT", bad, body)
        again = request("GET", presign(s3, "get_object", sandbox_bucket, "ka"))
        assert conn.sock is first
        conn.close()
        stats = proxy.stats()
    assert (put.status, get.status, head.status, again.status) == (200, 200, 200, 200)
    assert refused.status >= 400
    assert int(head.getheader("Content-Length") or 0) == len(body)
    assert stats.connections == 1
