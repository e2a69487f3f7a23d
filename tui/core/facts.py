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
# Parts in flight. One connection carries about one part per round trip's worth of window, so
# 4 lost half the link at 80 ms RTT (44 vs 89 MiB/s for boto3's upload_file); 16 fills it.
# Memory does not grow with it: a part streams from the file, never held whole (85 MiB peak
# RSS at 16 workers and 10 MiB parts, 60 MiB at 4; 258 and 103 when parts were held).
DEFAULT_WORKERS = 16
# convert = "auto" turns a RAW or fixed VHD into a stream-optimized VMDK when the estimate of
# its zeros says that sends this share of the bytes fewer (docs/design.md, the probe's plan).
CONVERT_MIN_SAVING = 0.25
# ... and at least this many bytes: under it the saving is under 2 s at 100 Mbit/s, not worth a
# copy of the image on disk.
CONVERT_MIN_SAVED_BYTES = 16 * MIB
TASK_ID_RE = re.compile(r"import-(i|vol)-[0-9a-z]{8}([0-9a-z]{9})?")
TASK_ID_FORM = "import-i-xxxxxxxx or import-vol-xxxxxxxx"

# ImportInstance imports these architectures only (docs/protocol.md section 9).
IMPORT_ARCHITECTURES = ("i386", "x86_64")
# Presigned URLs die with the credentials that signed them, and EC2 reads the parts until the
# conversion ends. Our estimate of how long that is (docs/protocol.md section 9): the upload at
# UPLOAD_ESTIMATE_BYTES_PER_S, then a conversion of at least CONVERSION_ESTIMATE_MIN_S or at
# CONVERSION_ESTIMATE_BYTES_PER_S, whichever is longer.
UPLOAD_ESTIMATE_BYTES_PER_S = 10 * MIB
CONVERSION_ESTIMATE_BYTES_PER_S = 20 * MIB
CONVERSION_ESTIMATE_MIN_S = 3600.0
# EC2 keeps the first four and the last address of every subnet's range for itself.
SUBNET_RESERVED_HEAD = 4

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

# The sandbox's own throwaway credentials (access key, secret): `--sandbox` signs with them and
# the sandbox always knows them (docs/design.md section 4). Not a secret of anyone's.
SANDBOX_CREDENTIALS = ("AKIASANDBOXEXAMPLE00", "sandbox-secret-not-a-real-key")
REGION_RE = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}")

# -- S3 naming (docs/protocol.md section 8) ----------------------------------------------------
MAX_KEY_BYTES = 1024  # an object key, counted in UTF-8 bytes
# S3's "safe" key characters: they need no escaping in a URL, in XML or on any client.
KEY_SAFE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!-_.*'()")
KEY_PREFIX_FIX = "use letters, digits and ! - _ . * ' ( ), with single '/' between folders"
BUCKET_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")
BUCKET_IP_RE = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3")


def bucket_problem(name: str) -> str | None:
    """Why S3 would refuse `name` as a general purpose bucket's name, or None: the rule broken."""
    bad = f"{name[:70]!r} is not an S3 bucket name"
    if not 3 <= len(name) <= 63:
        return f"{bad}: it has {len(name)} characters, S3 takes 3 to 63"
    odd = next((c for c in name if c not in BUCKET_CHARS), None)
    if odd is not None:
        return f"{bad}: {odd!r} is not allowed (lowercase letters, digits, '.' and '-' only)"
    if not (name[0].isalnum() and name[-1].isalnum()):
        return f"{bad}: it must begin and end with a lowercase letter or a digit"
    if ".." in name:
        return f"{bad}: it must not have two dots in a row"
    if BUCKET_IP_RE.fullmatch(name):
        return f"{bad}: it must not be formatted as an IP address"
    for prefix in BUCKET_RESERVED_PREFIXES:
        if name.startswith(prefix):
            return f"{bad}: names beginning with {prefix!r} are reserved by S3"
    for suffix in BUCKET_RESERVED_SUFFIXES:
        if name.endswith(suffix):
            return f"{bad}: names ending with {suffix!r} are reserved by S3"
    return None


def control_character(text: str) -> str | None:
    """The first C0 or C1 control character or DEL in `text`, as U+XXXX, or None."""
    import unicodedata

    found = next((c for c in text if unicodedata.category(c) == "Cc"), None)
    return None if found is None else f"U+{ord(found):04X}"


def image_path_problem(path: str) -> str | None:
    """Why a disk image's path cannot be imported as typed, or None. A control character would
    reach S3 inside a key (the basename goes into it) and fail there, far from its cause."""
    char = control_character(path)
    if char is None:
        return None
    return (
        f"{path[:80]!r} has a control character ({char}) in its name: rename the file "
        "(or its folder) without it"
    )


def key_prefix_problem(prefix: str) -> str | None:
    """Why `prefix` (one trailing '/' allowed) cannot begin our S3 keys, or None."""
    if prefix.startswith("/"):
        return f"{prefix[:60]!r} is not a key prefix (no leading '/'): {KEY_PREFIX_FIX}"
    for segment in prefix.removesuffix("/").split("/") if prefix else ():
        if segment in ("", ".", ".."):
            # S3 would store them literally, but URL clients and proxies resolve dot segments
            # (RFC 3986) in a presigned URL's path: EC2 would ask for another key, or none.
            if not segment:
                return (
                    f"{prefix[:60]!r} has an empty folder ('//'): use a single '/' between folders"
                )
            return (
                f"{prefix[:60]!r} has a {segment!r} folder, which a URL resolves to another "
                "folder: remove it"
            )
        odd = next((c for c in segment if c not in KEY_SAFE_CHARS), None)
        if odd is not None:
            return (
                f"{prefix[:60]!r} has {odd!r} (U+{ord(odd):04X}), not one of S3's safe key "
                f"characters: {KEY_PREFIX_FIX}"
            )
    return None


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


# EC2 tags (CreateTags; docs/protocol.md section 11): per resource at most 50 of them, a key of
# 1..128 characters not starting with `aws:` in any case (AWS's own), a value of 0..256.
MAX_TAGS = 50
MAX_TAG_KEY_CHARS = 128
MAX_TAG_VALUE_CHARS = 256
RESERVED_TAG_PREFIX = "aws:"
# A run's end rings the terminal bell (and sends a desktop notification) when it took this long.
NOTIFY_AFTER_S = 10.0


def tag_problem(key: str, value: str) -> str | None:
    """Why EC2 would refuse the tag `key`=`value`, or None."""
    shown = f"{key[:40]!r}"
    if not key:
        return 'a tag key is empty: give every tag a name, e.g. Name = "app01"'
    if len(key) > MAX_TAG_KEY_CHARS:
        return (
            f"tag key {shown}... is {len(key)} characters: EC2 takes at most "
            f"{MAX_TAG_KEY_CHARS}; shorten it"
        )
    if key.lower().startswith(RESERVED_TAG_PREFIX):
        return (
            f"tag key {shown} starts with {RESERVED_TAG_PREFIX!r}, which AWS keeps for its own "
            "tags: rename it"
        )
    if len(value) > MAX_TAG_VALUE_CHARS:
        return (
            f"the value of tag {shown} is {len(value)} characters: EC2 takes at most "
            f"{MAX_TAG_VALUE_CHARS}; shorten it"
        )
    char = control_character(key) or control_character(value)
    if char is not None:
        return f"tag {shown} has a control character ({char}): remove it"
    return None
