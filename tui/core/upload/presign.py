"""Presigned URLs for the manifest (docs/protocol.md section 3), and proving they work.

The URLs must be SigV4 (they live 1 to 7 days; SigV2 ones are what an unconfigured client makes
in us-east-1). After the manifest is written every part's HEAD URL and the manifest's GET URL
are tried with plain urllib, as EC2 will use them, so a URL EC2 could not use fails the upload
instead of a conversion an hour later.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tui.core.aws import READ_TIMEOUT_S
from tui.core.errors import AwsError, Interrupted
from tui.core.manifest import Manifest, ManifestPart
from tui.core.retry import RetryPolicy
from tui.core.upload.parts import Cancelled

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# A socket idle this long aborts the try (stall detection), as for botocore's calls.
URL_CHECK_TIMEOUT_S = READ_TIMEOUT_S


def _is_blip(exc: BaseException) -> bool:
    """A 5xx or a network failure: the URL may be fine, S3 or the network was not."""
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code >= 500
    return isinstance(exc, OSError)  # URLError, timeouts, refused connections


# botocore is not involved (plain urllib), so this is the only retry of these requests: a
# frozen network fails a URL in about three socket timeouts.
URL_CHECK_POLICY = RetryPolicy(
    retryable=_is_blip, attempts=3, base_delay=0.2, max_delay=2.0, deadline=30.0
)


@dataclass(frozen=True)
class Presigner:
    s3: S3Client
    bucket: str
    expires_in: int  # seconds

    def __call__(self, method: str, key: str) -> str:
        return self.s3.generate_presigned_url(
            method, Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.expires_in
        )


def require_sigv4(s3: S3Client, bucket: str) -> None:
    # Ask for a URL and look: `meta.config.signature_version` says "s3v4" even on a default
    # client that presigns SigV2 in us-east-1 and other legacy regions.
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "probe"}, ExpiresIn=60
    )
    if "X-Amz-Signature=" not in url:
        raise ValueError(
            "the S3 client presigns SigV2 URLs; the manifest needs SigV4 ones: make the "
            "client with tui.core.aws.client or Config(signature_version='s3v4')"
        )


def verify_urls(
    manifest: Manifest,
    manifest_url: str,
    body: bytes,
    workers: int,
    cancel: threading.Event,
    policy: RetryPolicy = URL_CHECK_POLICY,
) -> None:
    """HEAD every part through its presigned URL and GET the manifest, as EC2 will.

    Raises AwsError (code PresignedUrlCheck: a URL answered wrong; NetworkError: it could not
    be reached) or Cancelled.
    """

    def head(part: ManifestPart) -> None:
        if cancel.is_set():
            return
        status, length = _fetch(part.head_url, "HEAD", None, cancel, policy)
        if status != 200 or length != part.size:
            raise AwsError(
                f"part {part.index}: its presigned HEAD URL answered HTTP {status} "
                f"(length {length}, expected {part.size}); EC2 could not read it",
                code="PresignedUrlCheck",
            )

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify") as pool:
        for fut in [pool.submit(head, p) for p in manifest.parts]:
            fut.result()
    if cancel.is_set():
        raise Cancelled("upload cancelled while checking the presigned URLs")
    status, _ = _fetch(manifest_url, "GET", body, cancel, policy)
    if status == _OTHER_BYTES:
        raise AwsError(
            "the manifest's presigned GET URL returned other bytes than were written: "
            "something between here and S3 changes them; EC2 would read a wrong manifest",
            code="PresignedUrlCheck",
        )
    if status != 200:
        raise AwsError(
            f"the manifest's presigned GET URL answered HTTP {status}", code="PresignedUrlCheck"
        )


_OTHER_BYTES = -1  # _fetch's status for a GET whose body is not the one expected


def _fetch(
    url: str, method: str, expect: bytes | None, cancel: threading.Event, policy: RetryPolicy
) -> tuple[int, int | None]:
    """(status, content length) of a presigned URL; a GET must return `expect` exactly
    (status _OTHER_BYTES when it does not). An answer below 500 is the URL's verdict."""

    def once() -> tuple[int, int | None]:
        request = urllib.request.Request(url, method=method)
        try:
            with urllib.request.urlopen(request, timeout=URL_CHECK_TIMEOUT_S) as response:
                length = response.headers.get("Content-Length")
                if expect is not None and response.read() != expect:
                    return _OTHER_BYTES, None
                return response.status, int(length) if length is not None else None
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return exc.code, None
            raise

    try:
        return policy.call(once, cancel=cancel)
    except Interrupted:
        raise Cancelled("upload cancelled while checking the presigned URLs") from None
    except OSError as exc:
        # The URL itself stays out of the message: its query string is a credential.
        raise AwsError(f"cannot reach a presigned URL: {exc}", code="NetworkError") from None
