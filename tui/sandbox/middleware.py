"""The WSGI middleware in front of moto's server app.

Every request is authenticated first, as S3 and EC2 do and moto does not: its signature
(SigV4 header or query, S3's SigV2) is recomputed with botocore's signers against the sandbox's
credentials (`tui.sandbox.signatures`); a failure is answered in the service's own error format.
EC2 requests (told from S3 by the SigV4 credential scope `.../REGION/ec2/aws4_request`, or, when
unsigned, by their form body) for the four conversion-task actions are then answered here, and
ImportInstance/ImportVolume only in the regions that offer them; every other request goes to
moto. On the way, it enforces presigned-URL expiry (S3's 403 `Request has expired`) and the
7-day SigV4 limit, and injects the configured faults. If moto could not be used (`refuse`),
every request is answered 503 with the one line saying why.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import re
import time
import urllib.parse
from calendar import timegm
from collections.abc import Callable, Iterable
from typing import Any

from tui.sandbox import api, ec2xml, moto_adapter, placement, signatures
from tui.sandbox.ec2xml import Ec2Error
from tui.sandbox.engine import TaskStore
from tui.sandbox.faults import Faults
from tui.sandbox.signatures import Refusal, Request, Signature

log = logging.getLogger("tui.sandbox")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
MAX_PRESIGN_EXPIRY = 604800  # SigV4: 7 days
_PART_KEY = re.compile(r"\.part\d+$")
_STATUS = {
    200: "200 OK",
    400: "400 Bad Request",
    401: "401 Unauthorized",
    403: "403 Forbidden",
    412: "412 Precondition Failed",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the whole request body and put it back for moto."""
    from werkzeug.wsgi import get_input_stream

    body = get_input_stream(environ, safe_fallback=True).read()
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ["wsgi.input_terminated"] = False
    return body


def _drain(environ: dict[str, Any]) -> None:
    """Consume an unread body: closing on unread data makes the client see a reset, not our
    answer."""
    from werkzeug.wsgi import get_input_stream

    stream = get_input_stream(environ, safe_fallback=True)
    while stream.read(1 << 20):
        pass


class SandboxMiddleware:
    def __init__(
        self,
        moto_app: WSGIApp,
        store: TaskStore,
        faults: Faults,
        credentials: dict[str, str] | None = None,
    ):
        self.moto_app = moto_app
        self.store = store
        self.faults = faults
        self.credentials = dict(credentials or {})  # access key -> secret
        self.refusal: str | None = None

    def refuse(self, message: str) -> None:
        """Answer every request from now on with 503 and this message."""
        self.refusal = message

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        try:
            request = Request.from_environ(environ)
            try:
                sig = signatures.parse(request)
            except Refusal as malformed:
                service = "ec2" if _looks_like_ec2(request) else "s3"
                return self._refuse(environ, start_response, service, malformed)
            service = (sig.service if sig else None) or (
                "ec2" if _looks_like_ec2(request) else "s3"
            )
            if self.refusal is not None:
                return self._unavailable(environ, start_response, service, self.refusal)
            if service == "ec2":
                return self._ec2(environ, start_response, request, sig)
            refused = self._s3_guard(environ, request, sig)
            if refused is not None:
                status, body = refused
                return self._send(environ, start_response, status, body, "application/xml")
        except Exception:
            log.exception("sandbox middleware error")
            body = ec2xml.error("InternalError", "An internal error has occurred in the sandbox")
            return self._send(environ, start_response, 500, body, "text/xml")
        return self.moto_app(environ, start_response)

    # -- authentication

    def _authenticate(self, request: Request, sig: Signature | None) -> None:
        """Refusal (in S3's words; `_ec2_words` turns them into EC2's) unless the request is
        signed with a key and secret of the sandbox's, for this very method, path, query and
        signed headers, and its signed payload hash is its body's."""
        if sig is None:
            raise Refusal(403, "AccessDenied", "Access Denied")
        secret = self.credentials.get(sig.access_key)
        if secret is None:
            raise Refusal(
                403,
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
                [("AWSAccessKeyId", sig.access_key)],
            )
        if sig.scheme == "v4-header":
            _check_clock(sig.timestamp or "")
        computed, to_sign, canonical = signatures.expected(request, sig, secret)
        if not signatures.matches(sig.provided, computed, sig.scheme):
            extra = [
                ("AWSAccessKeyId", sig.access_key),
                ("StringToSign", to_sign),
                ("SignatureProvided", sig.provided),
            ]
            if canonical:
                extra.append(("CanonicalRequest", canonical))
            raise Refusal(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you "
                "provided. Check your key and signing method.",
                extra,
            )
        actual = signatures.payload_problem(request)
        if actual is not None:
            raise Refusal(
                400,
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
                [
                    ("ClientComputedContentSHA256", request.headers["x-amz-content-sha256"]),
                    ("S3ComputedContentSHA256", actual),
                ],
            )

    def _refuse(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        service: str,
        refused: Refusal,
    ) -> list[bytes]:
        _drain(environ)
        if service == "ec2":
            err = _ec2_words(refused)
            body = ec2xml.error(err.code, err.message)
            return self._send(environ, start_response, err.status, body, "text/xml")
        body = ec2xml.s3_error(refused.code, refused.message, refused.extra)
        return self._send(environ, start_response, refused.status, body, "application/xml")

    @staticmethod
    def _send(
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        status: int,
        body: bytes,
        content_type: str,
    ) -> list[bytes]:
        start_response(
            _STATUS.get(status, f"{status} Error"),
            [("Content-Type", content_type), ("Content-Length", str(len(body)))],
        )
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    def _unavailable(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        service: str | None,
        message: str,
    ) -> list[bytes]:
        # In the service's own error format, so that boto3 shows the message, not a bare 503.
        _drain(environ)
        if service == "ec2":
            body, content_type = ec2xml.error("Unavailable", message), "text/xml"
        else:
            body, content_type = ec2xml.s3_error("ServiceUnavailable", message), "application/xml"
        return self._send(environ, start_response, 503, body, content_type)

    # -- EC2

    def _ec2(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        request: Request,
        sig: Signature | None,
    ) -> Any:
        body = _read_body(environ) if environ.get("REQUEST_METHOD") == "POST" else b""
        request = dataclasses.replace(request, body=body)
        try:
            self._authenticate(request, sig)
        except Refusal as refused:
            return self._refuse(environ, start_response, "ec2", refused)
        assert sig is not None
        if self.faults.throttle_ec2():
            err = ec2xml.throttled()
            return self._send(
                environ, start_response, err.status, ec2xml.error(err.code, err.message), "text/xml"
            )
        params = dict(
            urllib.parse.parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        )
        params.update(
            urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        )
        action = params.get("Action", "")
        handler = api.ACTIONS.get(action)
        if handler is None:
            try:
                placement.check_allowed(action)  # ours check it where EC2 does
            except Ec2Error as err:
                xml = ec2xml.error(err.code, err.message)
                return self._send(environ, start_response, err.status, xml, "text/xml")
            return self.moto_app(environ, start_response)
        region = sig.region or "us-east-1"
        try:
            account = moto_adapter.account_for(sig.access_key)
            xml = handler(self.store, params, account, region)
            status = 200
        except Ec2Error as err:
            xml, status = ec2xml.error(err.code, err.message), err.status
        except moto_adapter.UnsupportedMoto as exc:
            xml, status = ec2xml.error("Unavailable", str(exc)), 503
        return self._send(environ, start_response, status, xml, "text/xml;charset=UTF-8")

    # -- S3

    def _s3_guard(
        self, environ: dict[str, Any], request: Request, sig: Signature | None
    ) -> tuple[int, bytes] | None:
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        refused = _presign_refusal(query)
        if refused is None and not environ.get("PATH_INFO", "").startswith("/moto-api"):
            if signatures.covers_body(request, sig):
                request = dataclasses.replace(request, body=_read_body(environ))
            try:
                self._authenticate(request, sig)
            except Refusal as err:
                refused = err.status, ec2xml.s3_error(err.code, err.message, err.extra)
        if refused is None:
            refused = _denied_object_write(environ)
        if refused is None and environ.get("REQUEST_METHOD") == "PUT":
            path = environ.get("PATH_INFO", "")
            if _PART_KEY.search(path) and self.faults.fail_s3_put():
                refused = (
                    500,
                    ec2xml.s3_error(
                        "InternalError", "We encountered an internal error. Please try again."
                    ),
                )
        if refused is not None:
            _drain(environ)
        return refused


def _denied_object_write(environ: dict[str, Any]) -> tuple[int, bytes] | None:
    """403 AccessDenied for a PUT or DELETE of an object when the sandbox's policy lacks
    s3:PutObject or s3:DeleteObject (EC2_IMPORT_WIZARD_SANDBOX_DENY)."""
    action = {"PUT": "s3:PutObject", "DELETE": "s3:DeleteObject"}.get(
        environ.get("REQUEST_METHOD", "")
    )
    key = environ.get("PATH_INFO", "").lstrip("/").partition("/")[2]
    if action is None or not key or not placement.denied(action):
        return None
    return 403, ec2xml.s3_error("AccessDenied", "Access Denied")


def _looks_like_ec2(request: Request) -> bool:
    """An unsigned (or unreadably signed) request is EC2's if it is a query-API call: an
    `Action` in the query, or a form POST (S3 never takes one)."""
    if any(key == "Action" for key, _ in request.params()):
        return True
    content_type = request.headers.get("content-type", "")
    return request.method == "POST" and content_type.startswith("application/x-www-form-urlencoded")


def _ec2_words(refused: Refusal) -> Ec2Error:
    """An authentication refusal as EC2 answers it (docs/protocol.md section 7)."""
    if refused.code == "AccessDenied" and refused.message == "Access Denied":
        return Ec2Error(
            "MissingAuthenticationToken",
            "The request must contain either a valid (registered) AWS access key ID or X.509 "
            "certificate.",
            status=403,
        )
    if refused.code in ("RequestTimeTooSkewed", "RequestExpired"):
        return Ec2Error("RequestExpired", "Request has expired.", status=400)
    if refused.code in ("AuthorizationHeaderMalformed", "AuthorizationQueryParametersError"):
        return Ec2Error("IncompleteSignature", refused.message, status=400)
    return Ec2Error(
        "AuthFailure", "AWS was not able to validate the provided access credentials", status=401
    )


def _check_clock(stamp: str) -> None:
    """A header-signed request must be dated within 15 minutes of the server's clock."""
    try:
        signed = timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        raise Refusal(
            403, "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"
        ) from None
    now = int(time.time())
    if abs(now - signed) > signatures.MAX_SKEW_S:
        raise Refusal(
            403,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
            [("RequestTime", stamp), ("ServerTime", time.strftime("%Y-%m-%dT%H:%M:%SZ"))],
        )


def _presign_refusal(query: dict[str, list[str]]) -> tuple[int, bytes] | None:
    """What S3 answers a presigned URL that is too long-lived or expired (moto accepts all)."""
    now = int(time.time())
    if "X-Amz-Expires" in query or "X-Amz-Date" in query:
        try:
            expires = int(query.get("X-Amz-Expires", [""])[0])
            signed = timegm(time.strptime(query.get("X-Amz-Date", [""])[0], "%Y%m%dT%H%M%SZ"))
        except ValueError:
            return 400, ec2xml.s3_error(
                "AuthorizationQueryParametersError",
                "X-Amz-Date and X-Amz-Expires must be present and well formed",
            )
        if expires > MAX_PRESIGN_EXPIRY:
            return 400, ec2xml.s3_error(
                "AuthorizationQueryParametersError",
                "X-Amz-Expires must be less than a week (in seconds) that is 604800",
            )
        if now > signed + expires:
            return 403, _expired(str(expires), signed + expires, now)
    elif "Signature" in query and "Expires" in query:  # SigV2
        try:
            deadline = int(query["Expires"][0])
        except ValueError:
            return 403, ec2xml.s3_error(
                "AccessDenied", "Invalid date (should be seconds since epoch)"
            )
        if now > deadline:
            return 403, _expired(None, deadline, now)
    return None


def _expired(x_amz_expires: str | None, deadline: int, now: int) -> bytes:
    def stamp(t: int) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

    extra = [("X-Amz-Expires", x_amz_expires)] if x_amz_expires is not None else []
    return ec2xml.s3_error(
        "AccessDenied",
        "Request has expired",
        [*extra, ("Expires", stamp(deadline)), ("ServerTime", stamp(now))],
    )
