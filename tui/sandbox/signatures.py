"""Request signatures checked as S3 and EC2 check them (docs/protocol.md section 7).

The expected signature is computed by botocore's own signers (`botocore.auth`), fed the request
as it arrived: the method, the raw path and query, exactly the headers the client says it signed,
and its timestamp. Only the parsing of what arrived is ours. Checked: SigV4 in the Authorization
header and in the query (presigned), S3's SigV2 in the query (`AWSAccessKeyId`, `Expires`,
`Signature`) and in the header (`AWS key:signature`). Session tokens are signed like any other
parameter but not looked up: the sandbox issues none.

Importing this module does not import botocore.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_V4_HEADER = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<cred>[^,\s]+)\s*,\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+)\s*,\s*Signature=(?P<sig>[0-9a-fA-F]+)"
)
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
# X-Amz-Date and a request's own date may differ from the sandbox's clock by this much (S3's
# RequestTimeTooSkewed and EC2's RequestExpired allow 15 minutes).
MAX_SKEW_S = 15 * 60


@dataclass
class Refusal(Exception):
    """Why a request is not let in: S3's or EC2's code, message and HTTP status."""

    status: int
    code: str
    message: str
    extra: list[tuple[str, str]] = field(default_factory=list)  # S3's detail elements


@dataclass(frozen=True)
class Request:
    """A request as it arrived, in the parts a signature covers."""

    method: str
    path: str  # raw, as sent (percent-encoded)
    query: str  # raw
    headers: Mapping[str, str]  # lower-case names
    body: bytes | None = None  # read only when the signature covers it

    @classmethod
    def from_environ(cls, environ: dict[str, Any]) -> Request:
        raw = environ.get("REQUEST_URI") or environ.get("RAW_URI")
        if raw:
            path, _, query = raw.partition("?")
            if "://" in path:  # an absolute URI (through a proxy)
                path = "/" + path.split("://", 1)[1].partition("/")[2]
        else:
            path = urllib.parse.quote(environ.get("PATH_INFO", "/"))
            query = environ.get("QUERY_STRING", "")
        headers = {
            key[5:].replace("_", "-").lower(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers[key.replace("_", "-").lower()] = str(environ[key])
        return cls(environ.get("REQUEST_METHOD", "GET"), path or "/", query, headers)

    def params(self) -> list[tuple[str, str]]:
        # `unquote`, not `unquote_plus`: SigV4 clients encode a space as %20, and a literal
        # `+` must stay one.
        pairs = []
        for item in self.query.split("&") if self.query else []:
            key, _, value = item.partition("=")
            pairs.append((urllib.parse.unquote(key), urllib.parse.unquote(value)))
        return pairs


@dataclass(frozen=True)
class Signature:
    """What a request says about its own signature."""

    scheme: str  # "v4-header", "v4-query", "v2-header", "v2-query"
    access_key: str
    provided: str
    region: str | None = None  # SigV4: from the credential scope
    service: str | None = None
    scope_date: str | None = None
    timestamp: str | None = None  # SigV4: X-Amz-Date; SigV2 query: Expires
    signed_headers: tuple[str, ...] = ()


def parse(request: Request) -> Signature | None:
    """The request's signature, or None if it has none; Refusal if it is malformed."""
    auth = request.headers.get("authorization", "")
    params = dict(request.params())
    if auth.startswith("AWS4-HMAC-SHA256"):
        m = _V4_HEADER.search(auth)
        if m is None:
            raise _incomplete("the Authorization header is not a SigV4 header", header=True)
        key, date, region, service = _scope(m.group("cred"), header=True)
        timestamp = request.headers.get("x-amz-date", "")
        return Signature(
            "v4-header",
            key,
            m.group("sig").lower(),
            region,
            service,
            date,
            timestamp,
            tuple(m.group("signed").lower().split(";")),
        )
    if auth.startswith("AWS "):
        key, _, provided = auth[4:].strip().rpartition(":")
        return Signature("v2-header", key, provided)
    if params.get("X-Amz-Algorithm") == "AWS4-HMAC-SHA256" or "X-Amz-Signature" in params:
        if not all(
            params.get(p)
            for p in ("X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature")
        ):
            raise _incomplete("a presigned URL needs X-Amz-Credential, X-Amz-Date, ...")
        key, date, region, service = _scope(params["X-Amz-Credential"])
        return Signature(
            "v4-query",
            key,
            params["X-Amz-Signature"].lower(),
            region,
            service,
            date,
            params["X-Amz-Date"],
            tuple(params["X-Amz-SignedHeaders"].lower().split(";")),
        )
    if "AWSAccessKeyId" in params and "Signature" in params:
        return Signature(
            "v2-query",
            params["AWSAccessKeyId"],
            params["Signature"],
            timestamp=params.get("Expires"),
        )
    return None


def _scope(credential: str, *, header: bool = False) -> tuple[str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise _incomplete(
            f"the credential scope {credential!r} is not KEY/DATE/REGION/SERVICE/aws4_request",
            header=header,
        )
    return parts[0], parts[1], parts[2], parts[3]


def _incomplete(why: str, *, header: bool = False) -> Refusal:
    """A malformed signature, in S3's words (EC2 says IncompleteSignature, with the same 400)."""
    code = "AuthorizationHeaderMalformed" if header else "AuthorizationQueryParametersError"
    return Refusal(400, code, f"The request signature is malformed: {why}")


def expected(request: Request, sig: Signature, secret: str) -> tuple[str, str, str]:
    """(the signature botocore computes for this request and secret, its string to sign, the
    canonical request ("" for SigV2))."""
    if sig.scheme.startswith("v4"):
        return _expected_v4(request, sig, secret)
    return _expected_v2(request, sig, secret)


def _credentials(sig: Signature, secret: str) -> Any:
    from botocore.credentials import Credentials

    return Credentials(sig.access_key, secret)


def _expected_v4(request: Request, sig: Signature, secret: str) -> tuple[str, str, str]:
    from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.compat import HTTPHeaders

    s3 = sig.service == "s3"
    if sig.scheme == "v4-query":
        base: type = S3SigV4QueryAuth if s3 else SigV4QueryAuth
    else:
        base = S3SigV4Auth if s3 else SigV4Auth
    signed = sig.signed_headers

    class Exact(base):
        # Exactly the headers the client signed, whatever botocore itself would pick.
        def headers_to_sign(self, req: Any) -> Any:
            chosen = HTTPHeaders()
            for name in signed:
                chosen[name] = req.headers.get(name, "")
            return chosen

    headers = {name: request.headers.get(name, "") for name in signed}
    host = request.headers.get("host", "localhost")
    req: Any = AWSRequest(
        method=request.method, url=f"http://{host}{request.path}", headers=headers
    )
    if sig.scheme == "v4-query":
        req.params = [(k, v) for k, v in request.params() if k != "X-Amz-Signature"]
    else:
        req.params = request.params()
        # EC2's payload hash is not sent as a header: botocore hashes this body, as EC2 does.
        req.data = request.body or b""
    req.context["timestamp"] = sig.timestamp or ""
    signer = Exact(_credentials(sig, secret), sig.service, sig.region)
    canonical = signer.canonical_request(req)
    to_sign = signer.string_to_sign(req, canonical)
    return signer.signature(to_sign, req), to_sign, canonical


def _expected_v2(request: Request, sig: Signature, secret: str) -> tuple[str, str, str]:
    from botocore.auth import HmacV1Auth
    from botocore.compat import HTTPHeaders

    # SigV2 signs the Expires of a query signature where a header signature has its Date.
    date = (sig.timestamp or "") if sig.scheme == "v2-query" else request.headers.get("date", "")

    class Dated(HmacV1Auth):
        def _get_date(self) -> str:
            return date

    headers: Any = HTTPHeaders()
    for name in ("content-md5", "content-type"):
        if name in request.headers:
            headers[name] = request.headers[name]
    custom = {k: v for k, v in request.headers.items() if k.startswith("x-amz-")}
    if sig.scheme == "v2-query":
        # botocore moves the x-amz-* headers it signed into the query.
        custom.update({k.lower(): v for k, v in request.params() if k.lower().startswith("x-amz-")})
    for name, value in custom.items():
        headers[name] = value
    split = urllib.parse.urlsplit(f"http://host{request.path}?{request.query}")
    signer = Dated(_credentials(sig, secret))
    to_sign = signer.canonical_string(request.method, split, headers)
    return signer.sign_string(to_sign), to_sign, ""


def matches(provided: str, computed: str, scheme: str) -> bool:
    if scheme.startswith("v2"):
        return hmac.compare_digest(provided.encode(), computed.encode())
    return hmac.compare_digest(provided.lower().encode(), computed.lower().encode())


def payload_problem(request: Request) -> str | None:
    """Why the body does not match the SHA-256 the client signed, or None (S3 checks it; an
    unsigned or streaming payload has none to check)."""
    claimed = request.headers.get("x-amz-content-sha256", "")
    if request.body is None or not _HEX_SHA256.fullmatch(claimed):
        return None
    actual = hashlib.sha256(request.body).hexdigest()
    return None if hmac.compare_digest(actual, claimed) else actual


def covers_body(request: Request, sig: Signature | None) -> bool:
    """Whether the body must be read to check this request: EC2's form (its hash is part of the
    signature) or an S3 body whose SHA-256 was signed."""
    if sig is None or not sig.scheme.startswith("v4"):
        return False
    if sig.scheme == "v4-header" and sig.service != "s3":
        return True
    return bool(_HEX_SHA256.fullmatch(request.headers.get("x-amz-content-sha256", "")))
