"""Hiding the secrets of presigned URLs. Its own small module: the screens that show URLs load
it without the request models (pydantic) behind them."""

from __future__ import annotations

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
