"""The sandbox's signature check against what botocore itself signs: presigned URLs (SigV4 and
SigV2) and header-signed requests, with keys that need escaping and session tokens; any change
of method, path, query, header or secret is caught."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from tui.sandbox.signatures import Request, expected, matches, parse

KEY, SECRET = "AKIAUNITUNITUNIT0000", "unit-secret"
KEYS = ["plain.part0", "a b+c/déjà vu.part1", "x/y~z!*'()/%41.part2", "sp  ace/&=?#.vmdk"]


def _s3(sigv4: bool, token: str | None = None, region: str = "us-east-1") -> Any:
    import boto3
    from botocore.config import Config

    options: dict[str, Any] = {"s3": {"addressing_style": "path"}}
    if sigv4:
        options["signature_version"] = "s3v4"
    return boto3.session.Session(
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        aws_session_token=token,
        region_name=region,
    ).client("s3", endpoint_url="http://127.0.0.1:4566", config=Config(**options))


def _arrived(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> Request:
    parts = urlsplit(url)
    return Request(method, parts.path, parts.query, {"host": parts.netloc, **(headers or {})})


def _verdict(request: Request, secret: str = SECRET) -> bool:
    sig = parse(request)
    assert sig is not None
    return matches(sig.provided, expected(request, sig, secret)[0], sig.scheme)


@pytest.mark.parametrize("sigv4", [True, False], ids=["sigv4", "sigv2"])
@pytest.mark.parametrize("token", [None, "session-token/with+odd=chars"])
@pytest.mark.parametrize("key", KEYS)
def test_presigned_urls_botocore_makes_verify(sigv4: bool, token: str | None, key: str) -> None:
    s3 = _s3(sigv4, token)
    for op, method in (("get_object", "GET"), ("head_object", "HEAD"), ("delete_object", "DELETE")):
        url = s3.generate_presigned_url(op, Params={"Bucket": "bkt", "Key": key}, ExpiresIn=600)
        assert _verdict(_arrived(url, method)), url
        others = {"GET", "HEAD", "DELETE", "PUT"} - {method}
        assert not any(_verdict(_arrived(url, other)) for other in others), url
        assert not _verdict(_arrived(url, method), secret="another-secret")
        assert not _verdict(_arrived(url.replace("/bkt/", "/bkt2/"), method))


def test_a_sigv4_presign_for_another_region_verifies_with_its_scope() -> None:
    url = _s3(True, region="eu-central-1").generate_presigned_url(
        "get_object", Params={"Bucket": "bkt", "Key": "k"}, ExpiresIn=60
    )
    request = _arrived(url)
    sig = parse(request)
    assert sig is not None and (sig.region, sig.service) == ("eu-central-1", "s3")
    assert _verdict(request)
    assert not _verdict(_arrived(url.replace("eu-central-1", "us-east-1")))


@pytest.mark.parametrize("service", ["s3", "ec2"])
def test_header_signatures_botocore_makes_verify(service: str) -> None:
    from botocore.auth import S3SigV4Auth, SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    if service == "s3":
        url, method, body = (
            "http://127.0.0.1:4566/bkt/a%20b/c.part3?partNumber=1&uploadId=x",
            "PUT",
            b"part",
        )
        signer: Any = S3SigV4Auth(Credentials(KEY, SECRET, "tok"), "s3", "us-east-1")
    else:
        url, method, body = (
            "http://127.0.0.1:4566/",
            "POST",
            b"Action=DescribeConversionTasks&Version=2016-11-15",
        )
        signer = SigV4Auth(Credentials(KEY, SECRET), "ec2", "us-west-2")
    sent = AWSRequest(
        method=method,
        url=url,
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    signer.add_auth(sent)
    headers = {k.lower(): v for k, v in sent.headers.items()}
    parts = urlsplit(url)
    headers["host"] = parts.netloc

    def arrived(**change: Any) -> Request:
        fields = {
            "method": method,
            "path": parts.path,
            "query": parts.query,
            "headers": headers,
            "body": body,
        }
        return Request(**{**fields, **change})

    assert _verdict(arrived())
    assert not _verdict(arrived(method="GET"))
    assert not _verdict(arrived(query="partNumber=2&uploadId=x"))
    assert not _verdict(arrived(headers={**headers, "x-amz-date": "20200101T000000Z"}))
    assert not _verdict(arrived(headers={**headers, "host": "127.0.0.1:9"}))
    if service == "ec2":  # EC2's body is in its signature
        assert not _verdict(arrived(body=body + b"&DryRun=true"))
