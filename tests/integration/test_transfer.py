"""The uploader against a real S3 endpoint over HTTP (the sandbox's S3).

Reassembly goes through the manifest's presigned GET URLs with plain urllib, as EC2 does.
"""

from __future__ import annotations

import itertools
import random
import subprocess
import sys
import textwrap
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from tests.helpers.aws import TEST_CREDENTIALS, make_s3_client
from tests.helpers.netproxy import NetProxy
from tests.helpers.proxy import FaultyProxy
from tui.core.errors import AwsError, InputError, RefusedError
from tui.core.manifest import Manifest, parse_manifest
from tui.core.retry import RetryPolicy
from tui.core.upload import (
    Cancelled,
    UploadOptions,
    UploadProgress,
    check_bucket,
    create_bucket,
    delete_upload,
    parse_s3_url,
    temporary_credentials_warning,
    upload_image,
)
from tui.core.upload.parts import PART_POLICY

KIB = 1024
PART = 256 * KIB  # small parts: a 4 MiB image is 16 of them
SMALL = UploadOptions(part_size=PART)
# The uploader's own retry budget, without its waits: how the pipeline calls it (one-try
# client, PART_POLICY), in a test's time.
QUICK = RetryPolicy(retryable=PART_POLICY.retryable, attempts=4, base_delay=0.0, max_delay=0.0)
ONE_TRY = {"retries": {"mode": "standard", "total_max_attempts": 1}}


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return bytes(response.read())


def reassemble(manifest_url: str) -> tuple[Manifest, bytes]:
    manifest = parse_manifest(_get(manifest_url))
    return manifest, b"".join(_get(p.get_url) for p in manifest.parts)


def sent_keys(client: Any, operation: str) -> list[str]:
    """Keys of the `operation` requests `client` really sends (presigning sends nothing)."""
    keys: list[str] = []
    lock = threading.Lock()

    def record(request: Any, **_: Any) -> None:
        key = unquote(urlsplit(request.url).path).lstrip("/").partition("/")[2]
        with lock:
            keys.append(key)

    client.meta.events.register(f"before-send.s3.{operation}", record)
    return keys


def counting_client(endpoint: str, **config: Any) -> tuple[Any, list[str]]:
    """A client that records the key of every PutObject it sends."""
    client = make_s3_client(endpoint, **config)
    return client, sent_keys(client, "PutObject")


def part_puts(puts: list[str]) -> list[str]:
    return [k for k in puts if ".part" in k]


def keys_in(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


# ---------------------------------------------------------------------------------------------
# Upload and reassembly


@pytest.mark.parametrize("name", ["vmdk_stream", "vhd_dynamic", "raw"])
def test_upload_then_reassemble_through_presigned_urls(
    s3_endpoint: str, bucket: str, disk_images: dict[str, Path], name: str
) -> None:
    image = disk_images[name]
    s3, puts = counting_client(s3_endpoint)
    progress: list[UploadProgress] = []
    done: list[int] = []
    result = upload_image(
        s3,
        image,
        bucket,
        "imports/",
        "run-1",
        file_format={"vmdk_stream": "VMDK", "vhd_dynamic": "VHD", "raw": "RAW"}[name],
        volume_size=1,
        options=UploadOptions(part_size=PART, workers=3),
        on_progress=progress.append,
        on_part_done=lambda i, _md5: done.append(i),
    )
    data = image.read_bytes()
    parts = -(-len(data) // PART)
    assert (result.parts, result.parts_sent, result.parts_skipped) == (parts, parts, 0)
    assert result.bytes == len(data)
    assert result.manifest_key == f"imports/run-1/{image.name}manifest.xml"
    assert result.s3_url == f"s3://{bucket}/imports/run-1/{image.name}manifest.xml"
    assert sorted(done) == list(range(parts))
    assert len(part_puts(puts)) == parts

    manifest, body = reassemble(result.manifest_url)
    assert body == data  # byte-identical
    assert manifest == result.manifest
    assert manifest.size == len(data) and manifest.volume_size == 1
    assert [p.key for p in manifest.parts] == [
        f"imports/run-1/{image.name}.part{i}" for i in range(parts)
    ]
    assert "X-Amz-Signature=" in result.manifest_url  # SigV4
    assert "X-Amz-Expires=604800" in result.manifest_url  # 7 days by default

    # Progress: starts at zero, never goes back, ends complete.
    assert progress[0].parts_done == 0 and progress[-1].parts_done == parts
    assert progress[-1].bytes_done == len(data)
    assert all(a.bytes_done <= b.bytes_done for a, b in itertools.pairwise(progress))


def test_presigned_head_and_delete_urls_work(
    s3_endpoint: str, s3_client: Any, bucket: str, disk_images: dict[str, Path]
) -> None:
    result = upload_image(
        s3_client,
        disk_images["vmdk_stream"],
        bucket,
        "",
        "r",
        file_format="VMDK",
        volume_size=1,
        options=UploadOptions(part_size=PART, expiry_days=1),
    )
    part = result.manifest.parts[-1]
    with urllib.request.urlopen(urllib.request.Request(part.head_url, method="HEAD")) as resp:
        assert int(resp.headers["Content-Length"]) == part.size
    assert "X-Amz-Expires=86400" in part.get_url
    assert part.delete_url is not None
    urllib.request.urlopen(urllib.request.Request(part.delete_url, method="DELETE")).close()
    assert part.key not in keys_in(s3_client, bucket)
    urllib.request.urlopen(
        urllib.request.Request(result.manifest.self_destruct_url, method="DELETE")
    ).close()
    assert result.manifest_key not in keys_in(s3_client, bucket)


def test_url_checks_ride_kept_alive_connections(
    s3_endpoint: str, bucket: str, disk_images: dict[str, Path]
) -> None:
    """Each part's presigned HEAD reuses a pooled connection (a TCP proxy counts them): a new
    connection per URL, 16 parts and the manifest, would cost a handshake each (a round trip
    more over a WAN). The recording proxy in the middle keeps connections alive, as S3 does."""
    recording = FaultyProxy(s3_endpoint)
    try:
        with NetProxy(recording.url, lifetime=120) as tcp:
            s3 = make_s3_client(tcp.url, **ONE_TRY)
            result = upload_image(
                s3, disk_images["raw"], bucket, "", "run", file_format="RAW", volume_size=1,
                options=UploadOptions(part_size=PART, workers=2, check_existing=False),
            )  # fmt: skip
            connections = tcp.stats().connections
    finally:
        recording.close()
    heads = [r for r in recording.log if r[0] == "HEAD"]
    assert len(heads) == result.parts == 16
    # botocore's pool and the checker's, each at most `workers`; one each for the bucket's
    # first calls and the manifest's GET at worst.
    assert connections <= 6, connections


# ---------------------------------------------------------------------------------------------
# Cancel, kill, resume


def test_cancel_halfway_then_resume_sends_only_missing_parts(
    s3_endpoint: str, bucket: str, disk_images: dict[str, Path]
) -> None:
    image = disk_images["raw"]
    total = image.stat().st_size // PART
    s3, puts = counting_client(s3_endpoint)
    cancel = threading.Event()
    done: list[int] = []

    def on_part_done(index: int, _md5: str) -> None:
        done.append(index)
        if len(done) == total // 2:
            cancel.set()

    args: dict[str, Any] = dict(
        file_format="RAW", volume_size=1, options=UploadOptions(part_size=PART, workers=2)
    )
    with pytest.raises(Cancelled, match="resuming sends only the rest"):
        upload_image(
            s3, image, bucket, "p", "run", cancel=cancel, on_part_done=on_part_done, **args
        )
    first = set(part_puts(puts))
    assert total // 2 <= len(first) < total  # in-flight parts finished, nothing new started
    assert not any(k.endswith("manifest.xml") for k in keys_in(s3, bucket))

    puts.clear()
    result = upload_image(s3, image, bucket, "p", "run", **args)
    second = part_puts(puts)
    assert len(second) == total - len(first)
    assert set(second).isdisjoint(first)
    assert (result.parts_sent, result.parts_skipped) == (total - len(first), len(first))
    assert reassemble(result.manifest_url)[1] == image.read_bytes()


def test_killed_process_then_resume(
    s3_endpoint: str, bucket: str, disk_images: dict[str, Path], tmp_path: Path
) -> None:
    """The upload process dies (os._exit, no cleanup) after some parts; resume sends the rest."""
    image = disk_images["vmdk_stream"]
    total = -(-image.stat().st_size // PART)
    script = tmp_path / "kill.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os, sys
            sys.path.insert(0, {str(Path(__file__).parents[2])!r})
            from tests.helpers.aws import make_s3_client
            from tui.core.upload import UploadOptions, upload_image
            done = []
            def on_part_done(i, md5):
                done.append(i)
                if len(done) == 2:
                    os._exit(9)
            upload_image(make_s3_client({s3_endpoint!r}), {str(image)!r}, {bucket!r}, "k",
                         "run", file_format="VMDK", volume_size=1,
                         options=UploadOptions(part_size={PART}, workers=1),
                         on_part_done=on_part_done)
            """
        )
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, timeout=120)
    assert proc.returncode == 9, proc.stderr.decode()[-2000:]
    s3, puts = counting_client(s3_endpoint)
    present = len(keys_in(s3, bucket))
    assert present == 2
    done: list[int] = []
    result = upload_image(
        s3,
        image,
        bucket,
        "k",
        "run",
        file_format="VMDK",
        volume_size=1,
        options=SMALL,
        on_part_done=lambda i, _md5: done.append(i),
    )
    assert len(part_puts(puts)) == total - present
    assert result.parts_skipped == present
    assert sorted(done) == list(range(total))  # parts found in the listing count as done too
    assert reassemble(result.manifest_url)[1] == image.read_bytes()


def test_confirmed_parts_are_trusted_without_being_read(
    s3_endpoint: str, bucket: str, disk_images: dict[str, Path], tmp_path: Path
) -> None:
    """Parts the journal confirmed (with their MD5) whose size and ETag the one listing shows
    are neither read, HEADed nor sent: seen here by changing their bytes on disk first (a part
    that was read would be found different and sent)."""
    image = tmp_path / "disk.raw"
    image.write_bytes(disk_images["raw"].read_bytes())
    s3, puts = counting_client(s3_endpoint)
    args: dict[str, Any] = dict(file_format="RAW", volume_size=1, options=SMALL)
    md5s: dict[int, str] = {}
    upload_image(s3, image, bucket, "", "run", on_part_done=md5s.__setitem__, **args)
    with image.open("r+b") as fh:  # parts 0 to 3 change on disk; S3 keeps the old ones
        for i in range(4):
            fh.seek(i * PART)
            fh.write(b"\xff" * 512)
    puts.clear()
    heads = sent_keys(s3, "HeadObject")
    lists = sent_keys(s3, "ListObjectsV2")
    known = {i: md5s[i] for i in (0, 1, 2)}
    result = upload_image(s3, image, bucket, "", "run", known_parts=known, **args)
    assert part_puts(puts) == ["run/disk.raw.part3"]  # read, found different, sent
    # Only the changed part is HEADed: its ETag could be no MD5 (SSE-KMS), our metadata tells.
    assert heads == ["run/disk.raw.part3"] and len(lists) == 1
    assert result.parts_skipped == result.parts - 1


def test_changed_part_is_sent_again(
    s3_endpoint: str, s3_client: Any, bucket: str, disk_images: dict[str, Path]
) -> None:
    """A part present with the wrong content (same size) is not trusted on resume."""
    image = disk_images["raw"]
    args: dict[str, Any] = dict(file_format="RAW", volume_size=1, options=SMALL)
    first = upload_image(s3_client, image, bucket, "", "run", **args)
    key = first.manifest.parts[0].key  # the MBR: not zeros, so a zero part differs
    s3_client.put_object(Bucket=bucket, Key=key, Body=b"\0" * PART)
    s3, puts = counting_client(s3_endpoint)
    result = upload_image(s3, image, bucket, "", "run", **args)
    assert part_puts(puts) == [key]
    assert reassemble(result.manifest_url)[1] == image.read_bytes()


# ---------------------------------------------------------------------------------------------
# Retries and integrity, through a proxy that misbehaves


@pytest.fixture
def proxy(s3_endpoint: str) -> Iterator[Callable[..., FaultyProxy]]:
    made: list[FaultyProxy] = []

    def make(fault: Callable[[str, str, int], Any]) -> FaultyProxy:
        p = FaultyProxy(s3_endpoint, fault)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


_INTERNAL_ERROR = (
    500,
    {"Content-Type": "application/xml"},
    b"<Error><Code>InternalError</Code><Message>injected</Message></Error>",
)
_SLOW_DOWN = (
    503,
    {"Content-Type": "application/xml"},
    b"<Error><Code>SlowDown</Code><Message>injected</Message></Error>",
)


def test_5xx_and_throttling_are_retried_per_part_and_counted(
    proxy: Callable[..., FaultyProxy], bucket: str, disk_images: dict[str, Path]
) -> None:
    faulty = tuple(f".part{i}" for i in range(4))

    def fault(method: str, path: str, n: int) -> Any:
        if method == "PUT" and path.endswith(faulty) and n <= 2:
            return _INTERNAL_ERROR if n == 1 else _SLOW_DOWN
        return None

    p = proxy(fault)
    s3 = make_s3_client(p.url, **ONE_TRY)
    image = disk_images["raw"]
    result = upload_image(
        s3,
        image,
        bucket,
        "",
        "run",
        file_format="RAW",
        volume_size=1,
        options=UploadOptions(part_size=PART, workers=4, part_retry=QUICK),
    )
    assert p.faults == 2 * len(faulty)
    assert result.retries == 2 * len(faulty)
    assert reassemble(result.manifest_url)[1] == image.read_bytes()


def test_a_failing_part_is_put_its_budgets_attempts_times_not_more(
    proxy: Callable[..., FaultyProxy], bucket: str, disk_images: dict[str, Path]
) -> None:
    def fault(method: str, path: str, n: int) -> Any:
        return _INTERNAL_ERROR if method == "PUT" and path.endswith(".part2") else None

    p = proxy(fault)
    s3 = make_s3_client(p.url, **ONE_TRY)
    with pytest.raises(AwsError) as info:
        upload_image(s3, disk_images["raw"], bucket, "", "run", file_format="RAW",
                     volume_size=1, options=UploadOptions(part_size=PART, part_retry=QUICK))  # fmt: skip
    assert info.value.code == "InternalError"
    assert "part 2 was not stored after 4 tries" in info.value.message
    assert p.counts[("PUT", f"/{bucket}/run/disk.raw.part2")] == QUICK.attempts


def test_wrong_etag_is_caught_and_retried(
    proxy: Callable[..., FaultyProxy], bucket: str, disk_images: dict[str, Path]
) -> None:
    """A PUT that "succeeds" with an MD5 other than ours is not believed."""

    def fault(method: str, path: str, n: int) -> Any:
        if method == "PUT" and path.endswith(".part1") and n == 1:
            return 200, {"ETag": '"' + "0" * 32 + '"'}, b""
        return None

    p = proxy(fault)
    s3 = make_s3_client(p.url, **ONE_TRY)
    image = disk_images["raw"]
    result = upload_image(
        s3, image, bucket, "", "run", file_format="RAW", volume_size=1,
        options=UploadOptions(part_size=PART, part_retry=QUICK),
    )  # fmt: skip
    assert (p.faults, result.retries) == (1, 1)
    assert reassemble(result.manifest_url)[1] == image.read_bytes()


def test_integrity_retries_are_capped(
    proxy: Callable[..., FaultyProxy], bucket: str, disk_images: dict[str, Path]
) -> None:
    def fault(method: str, path: str, n: int) -> Any:
        if method == "PUT" and path.endswith(".part1"):
            return (
                400,
                {"Content-Type": "application/xml"},
                (b"<Error><Code>BadDigest</Code><Message>injected</Message></Error>"),
            )
        return None

    p = proxy(fault)
    s3 = make_s3_client(p.url, **ONE_TRY)
    with pytest.raises(AwsError) as info:
        upload_image(s3, disk_images["raw"], bucket, "", "run", file_format="RAW",
                     volume_size=1, options=UploadOptions(part_size=PART, part_retry=QUICK))  # fmt: skip
    assert info.value.code == "BadDigest"
    assert p.counts[("PUT", f"/{bucket}/run/disk.raw.part1")] == QUICK.attempts


def test_5xx_and_wrong_etags_share_one_budget(
    proxy: Callable[..., FaultyProxy], bucket: str, disk_images: dict[str, Path]
) -> None:
    """The worst case: a part alternately refused with a 5xx and stored wrong. Both kinds of
    failure spend the one budget: the part is PUT its attempts times in all, then given up."""

    def fault(method: str, path: str, n: int) -> Any:
        if method == "PUT" and path.endswith(".part1"):
            if n % 2:
                return _INTERNAL_ERROR
            return 200, {"ETag": '"' + "0" * 32 + '"'}, b""
        return None

    p = proxy(fault)
    s3 = make_s3_client(p.url, **ONE_TRY)
    with pytest.raises(AwsError) as info:
        upload_image(s3, disk_images["raw"], bucket, "", "run", file_format="RAW",
                     volume_size=1, options=UploadOptions(part_size=PART, part_retry=QUICK))  # fmt: skip
    assert info.value.code == "IntegrityError"
    assert p.counts[("PUT", f"/{bucket}/run/disk.raw.part1")] == QUICK.attempts


def test_an_sse_kms_etag_is_not_taken_for_a_wrong_md5(
    proxy: Callable[..., FaultyProxy], bucket: str, disk_images: dict[str, Path]
) -> None:
    """Under SSE-KMS S3's ETag is not the body's MD5: no retry, no error. (The proxy answers
    for S3 and keeps nothing, so the URLs are not checked here.)"""

    def fault(method: str, path: str, n: int) -> Any:
        if method == "PUT" and path.endswith(".part1"):
            return (
                200,
                {"ETag": '"' + "ab" * 16 + '"', "x-amz-server-side-encryption": "aws:kms"},
                b"",
            )
        return None

    p = proxy(fault)
    s3 = make_s3_client(p.url, retries={"total_max_attempts": 1})
    result = upload_image(
        s3, disk_images["raw"], bucket, "", "run", file_format="RAW", volume_size=1,
        options=UploadOptions(part_size=PART, verify_urls=False),
    )  # fmt: skip
    assert (p.faults, result.retries) == (1, 0)


def test_connection_errors_spend_the_parts_budget(
    bucket: str, disk_images: dict[str, Path]
) -> None:
    """Nothing listens: every request is tried its budget's attempts times, and no more."""
    import socket
    from collections import Counter

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
    s3 = make_s3_client(dead, connect_timeout=1, **ONE_TRY)
    puts = sent_keys(s3, "PutObject")
    new_run = UploadOptions(part_size=PART, part_retry=QUICK, check_existing=False)
    with pytest.raises(AwsError) as info:
        upload_image(s3, disk_images["raw"], bucket, "", "run", file_format="RAW",
                     volume_size=1, options=new_run)  # fmt: skip
    assert info.value.code == "NetworkError"
    # The part that failed first spent its whole budget; the others stopped with it.
    assert puts and max(Counter(puts).values()) == QUICK.attempts
    # On resume the listing comes first, each page on the same budget.
    lists = sent_keys(s3, "ListObjectsV2")
    with pytest.raises(AwsError) as info:
        upload_image(s3, disk_images["raw"], bucket, "", "run", file_format="RAW",
                     volume_size=1, options=UploadOptions(part_size=PART, part_retry=QUICK))  # fmt: skip
    assert info.value.code == "NetworkError"
    assert len(lists) == QUICK.attempts


# ---------------------------------------------------------------------------------------------
# Errors and arguments


def test_missing_bucket_is_a_clear_aws_error(s3_client: Any, disk_images: dict[str, Path]) -> None:
    with pytest.raises(AwsError) as info:
        upload_image(
            s3_client,
            disk_images["raw"],
            "no-such-bucket-here",
            "",
            "run",
            file_format="RAW",
            volume_size=1,
        )
    assert info.value.code == "NoSuchBucket"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"expiry_days": 8}, "1 to 7 days"),
        ({"expiry_days": 0}, "1 to 7 days"),
        ({"part_size": 1000}, "part size"),
        ({"workers": 0}, "workers"),
    ],
)
def test_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        UploadOptions(**options)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"file_format": "VHDX"}, "format"), ({"volume_size": 0}, "volume size")],
)
def test_bad_arguments(
    s3_client: Any, disk_images: dict[str, Path], kwargs: dict[str, Any], message: str
) -> None:
    args: dict[str, Any] = {"file_format": "RAW", "volume_size": 1, **kwargs}
    with pytest.raises(InputError, match=message):
        upload_image(s3_client, disk_images["raw"], "bkt", "", "run", **args)


def test_sigv2_client_refused(s3_endpoint: str, disk_images: dict[str, Path]) -> None:
    import boto3

    # No signature_version: boto3 presigns SigV2 in us-east-1 (docs/protocol.md section 3).
    s3 = boto3.session.Session(
        region_name="us-east-1",
        aws_access_key_id=TEST_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=TEST_CREDENTIALS["aws_secret_access_key"],
    ).client("s3", endpoint_url=s3_endpoint)
    with pytest.raises(ValueError, match="SigV4"):
        upload_image(s3, disk_images["raw"], "bkt", "", "r", file_format="RAW", volume_size=1)


def test_empty_image_refused(s3_client: Any, tmp_path: Path) -> None:
    path = tmp_path / "empty.raw"
    path.touch()
    with pytest.raises(InputError, match="empty"):
        upload_image(s3_client, path, "bkt", "", "r", file_format="RAW", volume_size=1)


# ---------------------------------------------------------------------------------------------
# Bucket, credentials


def test_check_bucket(s3_client: Any, bucket: str) -> None:
    assert check_bucket(s3_client, bucket, "us-east-1") is False
    with pytest.raises(InputError, match="does not exist"):
        check_bucket(s3_client, "absent-bucket-xyz", "us-east-1")
    assert check_bucket(s3_client, "created-bucket-xyz", "us-east-1", create=True) is True
    s3_client.head_bucket(Bucket="created-bucket-xyz")


def test_check_bucket_wrong_region(s3_client: Any) -> None:
    s3_client.create_bucket(
        Bucket="eu-bucket-xyz", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    with pytest.raises(InputError, match="not local to the Region"):
        check_bucket(s3_client, "eu-bucket-xyz", "us-east-1")
    assert check_bucket(s3_client, "eu-bucket-xyz", "eu-west-1") is False


def test_create_bucket_puts_it_in_the_region(s3_client: Any, bucket: str) -> None:
    eu, us = f"{bucket}-eu", f"{bucket}-us"
    create_bucket(s3_client, eu, "eu-west-1")  # a LocationConstraint
    create_bucket(s3_client, us, "us-east-1")  # none: us-east-1 refuses one
    assert check_bucket(s3_client, eu, "eu-west-1") is False
    assert check_bucket(s3_client, us, "us-east-1") is False
    with pytest.raises(InputError, match="not local to the Region"):
        check_bucket(s3_client, eu, "us-east-1")
    made = f"{bucket}-ap"
    assert check_bucket(s3_client, made, "ap-southeast-2", create=True) is True
    location = s3_client.get_bucket_location(Bucket=made)["LocationConstraint"]
    assert location == "ap-southeast-2"


def test_temporary_credentials_warning() -> None:
    import boto3

    temp = boto3.session.Session(
        aws_access_key_id="A", aws_secret_access_key="B", aws_session_token="T"
    )
    assert "temporary" in (temporary_credentials_warning(temp) or "")
    lasting = boto3.session.Session(aws_access_key_id="A", aws_secret_access_key="B")
    assert temporary_credentials_warning(lasting) is None


# ---------------------------------------------------------------------------------------------
# Delete


def test_delete_upload_removes_parts_and_manifest(
    s3_client: Any, bucket: str, disk_images: dict[str, Path]
) -> None:
    s3_client.put_object(Bucket=bucket, Key="unrelated/keep.txt", Body=b"keep")
    result = upload_image(
        s3_client,
        disk_images["vmdk_stream"],
        bucket,
        "imports",
        "run",
        file_format="VMDK",
        volume_size=1,
        options=SMALL,
    )
    report = delete_upload(s3_client, bucket, result.manifest_key)
    assert report.manifest_found
    assert len(report.deleted) == result.parts + 1
    assert keys_in(s3_client, bucket) == ["unrelated/keep.txt"]
    # Twice is fine: nothing left, nothing to do.
    again = delete_upload(s3_client, bucket, result.manifest_key)
    assert (again.manifest_found, again.deleted) == (False, [])


def test_delete_cancelled_upload_without_manifest(
    s3_client: Any, bucket: str, disk_images: dict[str, Path]
) -> None:
    cancel = threading.Event()
    with pytest.raises(Cancelled):
        upload_image(
            s3_client,
            disk_images["raw"],
            bucket,
            "imports",
            "run",
            file_format="RAW",
            volume_size=1,
            options=UploadOptions(part_size=PART, workers=1),
            cancel=cancel,
            on_part_done=lambda i, _md5: cancel.set() if i >= 2 else None,
        )
    sent = keys_in(s3_client, bucket)
    assert 3 <= len(sent) < 16  # the part in flight when cancelled may have finished too
    s3_client.put_object(Bucket=bucket, Key="imports/run/disk.raw.partial-notes", Body=b"x")
    report = delete_upload(s3_client, bucket, "imports/run/disk.rawmanifest.xml")
    assert not report.manifest_found
    assert sorted(report.deleted) == sorted(sent)
    assert keys_in(s3_client, bucket) == ["imports/run/disk.raw.partial-notes"]


def test_delete_refuses_a_manifest_pointing_elsewhere(
    s3_client: Any, bucket: str, disk_images: dict[str, Path]
) -> None:
    result = upload_image(
        s3_client,
        disk_images["raw"],
        bucket,
        "a",
        "run",
        file_format="RAW",
        volume_size=1,
        options=SMALL,
    )
    manifest = result.manifest
    manifest.parts[0].key = "precious/data.bin"
    s3_client.put_object(Bucket=bucket, Key=result.manifest_key, Body=manifest.to_xml())
    with pytest.raises(RefusedError, match="outside its folder"):
        delete_upload(s3_client, bucket, result.manifest_key)
    assert len(keys_in(s3_client, bucket)) == result.parts + 1


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://bkt.s3.amazonaws.com/a/b%20c.partmanifest.xml?X=1",
            ("bkt", "a/b c.partmanifest.xml"),
        ),
        ("https://bkt.s3.eu-west-1.amazonaws.com/k/m.xml", ("bkt", "k/m.xml")),
        ("https://my.dotted.bkt.s3-us-west-2.amazonaws.com/k", ("my.dotted.bkt", "k")),
        ("https://s3.amazonaws.com/bkt/k/m.xml?a=b", ("bkt", "k/m.xml")),
        (
            "http://127.0.0.1:5000/bkt/run/x.rawmanifest.xml?X-Amz-Signature=1",
            ("bkt", "run/x.rawmanifest.xml"),
        ),
        ("s3://bkt/k", ("bkt", "k")),
    ],
)
def test_parse_s3_url(url: str, expected: tuple[str, str]) -> None:
    assert parse_s3_url(url) == expected


def test_parse_s3_url_rejects_non_objects() -> None:
    with pytest.raises(InputError):
        parse_s3_url("https://s3.amazonaws.com/bucket-only")


def test_memory_does_not_grow_with_the_workers(
    s3_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    """16 workers of 4 MiB parts: a part streams from the file, so the uploading process's
    peak RSS (its own VmHWM, read in a subprocess) grows by less than the 64 MiB that 16 parts
    held whole take (it grew 94 MiB when they were)."""
    image = tmp_path / "random.raw"
    with image.open("wb") as fh:
        for _ in range(128):
            fh.write(random.randbytes(1 << 20))
    warm = tmp_path / "warm.raw"
    warm.write_bytes(random.randbytes(1 << 20))
    script = tmp_path / "mem.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(Path(__file__).parents[2])!r})
            from tests.helpers.aws import make_s3_client
            from tui.core.upload import UploadOptions, upload_image

            def hwm():
                for line in open("/proc/self/status"):
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024

            s3 = make_s3_client({s3_endpoint!r}, max_pool_connections=16)
            def up(path, run, size):
                upload_image(s3, path, {bucket!r}, "m", run, file_format="RAW", volume_size=1,
                             options=UploadOptions(part_size=size, workers=16,
                                                   check_existing=False))
            # The first upload loads botocore's models and fills the pools.
            up({str(warm)!r}, "warm", 64 * 1024)
            before = hwm()
            up({str(image)!r}, "run", 4 << 20)
            print(hwm() - before)
            """
        )
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    growth = int(proc.stdout.split()[-1])
    assert growth < 48 << 20, f"peak RSS grew {growth / 2**20:.0f} MiB"
