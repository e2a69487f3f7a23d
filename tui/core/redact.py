"""Hiding the secrets of presigned URLs. Its own small module: the screens that show URLs load
it without the request models (pydantic) behind them."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

# Query parameters of a presigned URL that let anyone holding it act: hidden unless revealed.
SECRET_QUERY_PARAMS = frozenset(
    {"Signature", "X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token", "AWSAccessKeyId"}
)
REDACTED = "REDACTED"


def redact_url(url: str) -> str:
    """Hide the secret query parameters of a presigned URL."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [
        (k, REDACTED if k in SECRET_QUERY_PARAMS else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote, safe="/:")))


# A secret query parameter anywhere in free text (a traceback, an error message): the value runs
# to the next separator; `%3D` catches a URL quoted inside another one.
_SECRET_PARAM_RE = re.compile(
    r"(?<![\w-])("
    + "|".join(map(re.escape, sorted(SECRET_QUERY_PARAMS)))
    + r")(=|%3D)[^&\s'\"<>)]+"
)
# Credentials as botocore and the AWS config files name them, in `key=value` or `"Key": "value"`.
_SECRET_FIELD_RE = re.compile(
    r"(?i)\b(aws_secret_access_key|secret_?access_?key|aws_session_token|session_?token)"
    r"([\"']?\s*[:=]\s*[\"']?)[^\s'\",}]+"
)


def redact_text(text: str) -> str:
    """Hide every presigned-URL secret and credential value in `text` (for logs and reports)."""
    text = _SECRET_PARAM_RE.sub(lambda m: f"{m[1]}{m[2]}{REDACTED}", text)
    return _SECRET_FIELD_RE.sub(lambda m: f"{m[1]}{m[2]}{REDACTED}", text)
