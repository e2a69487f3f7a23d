"""Presigned URLs for the manifest (docs/protocol.md section 3), and proving they work.

The URLs must be SigV4 (they live 1 to 7 days; SigV2 ones are what an unconfigured client makes
in us-east-1). Every part's HEAD URL is tried as soon as the part is stored (while the others
upload), and the manifest's GET URL once it is written, with plain HTTP as EC2 will use them,
so a URL EC2 could not use fails the upload instead of a conversion an hour later.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tui.core.aws import CONNECT_TIMEOUT_S, READ_TIMEOUT_S
from tui.core.errors import AwsError, Interrupted
from tui.core.retry import RetryPolicy
from tui.core.upload.parts import Cancelled

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# A socket idle this long aborts the try (stall detection), as for botocore's calls.
URL_CHECK_TIMEOUT_S = READ_TIMEOUT_S


class _ServerError(Exception):
    """A 5xx from S3 through a presigned URL: the URL may be fine, S3 was not."""


def _is_blip(exc: BaseException) -> bool:
    """A 5xx or a network failure: the URL may be fine, S3 or the network was not."""
    import urllib3

    return isinstance(exc, _ServerError | urllib3.exceptions.HTTPError | OSError)


# botocore is not involved (plain HTTP), so this is the only retry of these requests: a
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


class UrlChecker:
    """Tries presigned URLs as EC2 will, over a pool of keep-alive connections (one per
    worker: a new TCP, and TLS, handshake per URL would cost more than the request).
    Thread-safe; `close` drops the connections."""

    def __init__(
        self, workers: int, cancel: threading.Event, policy: RetryPolicy = URL_CHECK_POLICY
    ):
        import urllib3

        self.cancel = cancel
        self.policy = policy
        # block: a thread beyond `workers` waits for a connection rather than opening one
        # that the pool would then throw away.
        self._http = urllib3.PoolManager(
            maxsize=workers,
            block=True,
            retries=False,
            timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_S, read=URL_CHECK_TIMEOUT_S),
        )

    def close(self) -> None:
        self._http.clear()

    def head_part(self, index: int, url: str, size: int) -> None:
        """HEAD part `index` through its presigned URL: S3 must answer 200 with its size."""
        status, length = self._fetch(url, "HEAD", None)
        if status != 200 or length != size:
            raise AwsError(
                f"part {index}: its presigned HEAD URL answered HTTP {status} "
                f"(length {length}, expected {size}); EC2 could not read it",
                code="PresignedUrlCheck",
            )

    def get_manifest(self, url: str, body: bytes) -> None:
        """GET the manifest through its presigned URL: S3 must return `body` exactly."""
        status, _ = self._fetch(url, "GET", body)
        if status == _OTHER_BYTES:
            raise AwsError(
                "the manifest's presigned GET URL returned other bytes than were written: "
                "something between here and S3 changes them; EC2 would read a wrong manifest",
                code="PresignedUrlCheck",
            )
        if status != 200:
            raise AwsError(
                f"the manifest's presigned GET URL answered HTTP {status}",
                code="PresignedUrlCheck",
            )

    def fetch_manifest(self, url: str) -> bytes | None:
        """The manifest's bytes through its presigned GET URL; None when S3 answers other than
        200 (it is gone, or the URL is refused)."""
        found: list[bytes] = []
        status, _ = self._fetch(url, "GET", None, found)
        return found[0] if status == 200 and found else None

    def _fetch(
        self, url: str, method: str, expect: bytes | None, into: list[bytes] | None = None
    ) -> tuple[int, int | None]:
        """(status, content length) of a presigned URL; a GET must return `expect` exactly
        (status _OTHER_BYTES when it does not). An answer below 500 is the URL's verdict."""

        def once() -> tuple[int, int | None]:
            if self.cancel.is_set():
                raise Interrupted("cancelled")
            response = self._http.request(method, url, preload_content=True)
            if response.status >= 500:
                raise _ServerError(f"HTTP {response.status}")
            length = response.headers.get("Content-Length")
            if method == "GET" and response.status == 200:
                if expect is not None and response.data != expect:
                    return _OTHER_BYTES, None
                if into is not None:
                    into.append(response.data)
            return response.status, int(length) if length is not None else None

        try:
            return self.policy.call(once, cancel=self.cancel)
        except Interrupted:
            raise Cancelled("upload cancelled while checking the presigned URLs") from None
        except Exception as exc:
            if not _is_blip(exc):
                raise
            # The URL itself stays out of the message: its query string is a credential.
            detail = str(exc).split("?", 1)[0]
            raise AwsError(f"cannot reach a presigned URL: {detail}", code="NetworkError") from None


_OTHER_BYTES = -1  # _fetch's status for a GET whose body is not the one expected
