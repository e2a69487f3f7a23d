"""The WSGI middleware in front of moto's server app.

EC2 requests (told from S3 by the SigV4 credential scope `.../REGION/ec2/aws4_request`) for the
four conversion-task actions are answered here; every other request goes to moto. On the way,
it enforces what moto does not: presigned-URL expiry (S3's 403 `Request has expired`) and the
7-day SigV4 limit, and injects the configured faults. If moto could not be used (`refuse`),
every request is answered 503 with the one line saying why.
"""

from __future__ import annotations

import io
import logging
import re
import time
import urllib.parse
from calendar import timegm
from collections.abc import Callable, Iterable
from typing import Any

from tui.sandbox import api, ec2xml, moto_adapter
from tui.sandbox.ec2xml import Ec2Error
from tui.sandbox.engine import TaskStore
from tui.sandbox.faults import Faults

log = logging.getLogger("tui.sandbox")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
MAX_PRESIGN_EXPIRY = 604800  # SigV4: 7 days
_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_PART_KEY = re.compile(r"\.part\d+$")
_STATUS = {
    200: "200 OK",
    400: "400 Bad Request",
    403: "403 Forbidden",
    412: "412 Precondition Failed",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}


def credential_scope(environ: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(access key, region, service) from the Authorization header or a presigned query."""
    text = environ.get("HTTP_AUTHORIZATION", "")
    m = _SCOPE.search(text)
    if m is None:
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        cred = (query.get("X-Amz-Credential") or [""])[0]
        m = _SCOPE.search(f"Credential={cred}/aws4_request") if cred.count("/") == 4 else None
        if m is None:
            return None, None, None
    return m.group(1), m.group(2), m.group(3)


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
    def __init__(self, moto_app: WSGIApp, store: TaskStore, faults: Faults):
        self.moto_app = moto_app
        self.store = store
        self.faults = faults
        self.refusal: str | None = None

    def refuse(self, message: str) -> None:
        """Answer every request from now on with 503 and this message."""
        self.refusal = message

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        try:
            access_key, region, service = credential_scope(environ)
            if self.refusal is not None:
                return self._unavailable(environ, start_response, service, self.refusal)
            if service == "ec2":
                return self._ec2(environ, start_response, access_key, region or "us-east-1")
            refused = self._s3_guard(environ)
            if refused is not None:
                status, body = refused
                return self._send(environ, start_response, status, body, "application/xml")
        except Exception:
            log.exception("sandbox middleware error")
            body = ec2xml.error("InternalError", "An internal error has occurred in the sandbox")
            return self._send(environ, start_response, 500, body, "text/xml")
        return self.moto_app(environ, start_response)

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
        access_key: str | None,
        region: str,
    ) -> Any:
        body = _read_body(environ) if environ.get("REQUEST_METHOD") == "POST" else b""
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
        handler = api.ACTIONS.get(params.get("Action", ""))
        if handler is None:
            return self.moto_app(environ, start_response)
        try:
            account = moto_adapter.account_for(access_key)
            xml = handler(self.store, params, account, region)
            status = 200
        except Ec2Error as err:
            xml, status = ec2xml.error(err.code, err.message), err.status
        except moto_adapter.UnsupportedMoto as exc:
            xml, status = ec2xml.error("Unavailable", str(exc)), 503
        return self._send(environ, start_response, status, xml, "text/xml;charset=UTF-8")

    # -- S3

    def _s3_guard(self, environ: dict[str, Any]) -> tuple[int, bytes] | None:
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        refused = _presign_refusal(query)
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
