"""The facts of ImportInstance, S3 and this tool that more than one module relies on, each
stated once (docs/protocol.md says where each comes from). Import-light: the UI, the sandbox
and the core all read them."""

from __future__ import annotations

import re

GIB = 1 << 30
MIB = 1 << 20

# -- AWS limits (docs/protocol.md sections 3, 4 and 6) -----------------------------------------
MAX_IMAGE_BYTES = 16 * 2**40  # disk images must be under 16 TiB
MAX_VOLUME_GIB = 16384  # an EBS volume holds at most 16 TiB
MAX_URL_EXPIRY_DAYS = 7  # SigV4 query signatures live at most 604800 s
ACTIVE_TASK_LIMIT = 5  # active conversion tasks per account
DEFAULT_PART_SIZE = 10 * MIB  # the part size every AWS importer uses
TASK_ID_RE = re.compile(r"import-(i|vol)-[0-9a-z]{8}([0-9a-z]{9})?")
TASK_ID_FORM = "import-i-xxxxxxxx or import-vol-xxxxxxxx"

# ImportInstance exists only in these regions.
IMPORT_REGIONS = frozenset(
    [
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "ca-central-1",
        "us-gov-west-1",
        "sa-east-1",
        "eu-west-1",
        "eu-central-1",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-south-1",
        "cn-north-1",
    ]
)
DEFAULT_REGION = "us-east-1"
REGION_RE = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}")

# -- This tool's own rules ---------------------------------------------------------------------
ENDPOINT_FIX = "use https://, or http:// only to a loopback address such as http://127.0.0.1:5000"
PROFILE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
PROFILE_NAME_RULE = "letters, digits, '.', '_', '-' (at most 64), starting with a letter or digit"


def profile_name_problem(name: str) -> str | None:
    """Why `name` cannot name a saved profile, or None."""
    return (
        None
        if PROFILE_NAME_RE.fullmatch(name)
        else f"{name!r} is not a profile name: {PROFILE_NAME_RULE}"
    )


def is_loopback_host(host: str | None) -> bool:
    """localhost, 127.0.0.0/8 or ::1: the only hosts plain http may go to."""
    import ipaddress  # stdlib, but not needed for the first paint

    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def endpoint_problem(url: str) -> str | None:
    """Why `url` cannot be an endpoint, or None. Signed requests, the session token and the
    disk go there: https, or http to loopback; no credentials, path, query or fragment."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed [ of an IPv6 address
        parts = urlsplit("")
    if "@" in parts.netloc:  # never echo it: it may hold a password
        return (
            "an endpoint URL carries no user name or password (credentials come from the AWS "
            f"credential chain): {ENDPOINT_FIX}"
        )
    shown = f"{url[:60]!r}"
    bad = f"{shown} is not an endpoint URL: {ENDPOINT_FIX}"
    if any(c.isspace() or ord(c) < 32 or c in "?#" for c in url):
        return bad
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        return f"{shown} has no valid port (1..65535)"
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        return bad
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        return f"{shown} would send signed requests and the disk in cleartext: {ENDPOINT_FIX}"
    return None
