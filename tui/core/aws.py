"""Sessions and clients per (AWS profile, region, endpoint), and AWS errors as user errors.

Credentials come from boto3's own chain (named profiles, SSO, environment); only the sandbox
uses throwaway ones. boto3 is imported lazily so that the TUI paints before it loads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tui.core.errors import AwsError, InputError, WizardError
from tui.core.facts import DEFAULT_REGION, IMPORT_REGIONS, SANDBOX_CREDENTIALS

if TYPE_CHECKING:
    import boto3


def account_label(
    *,
    sandbox: bool,
    region: str,
    aws_profile: str | None,
    endpoint_url: str | None,
    credentials: bool | None = None,
) -> str:
    """The account context in words, mode first: the wizard's header, `tasks --watch`.
    `credentials` False: boto3's chain found none, which is said rather than a name."""
    if sandbox:
        return f"SANDBOX · {region}"
    mode = "ENDPOINT" if endpoint_url else "AWS"
    who = aws_profile or "default credentials"
    if credentials is False:
        who = f"{aws_profile}: no credentials" if aws_profile else "no credentials found"
    where = f" · {endpoint_url}" if endpoint_url else ""
    return f"{mode} · {who} · {region}{where}"


@dataclass(frozen=True)
class Target:
    """Where requests go. `endpoint_url` set means a local endpoint (the sandbox)."""

    region: str = DEFAULT_REGION
    aws_profile: str | None = None
    endpoint_url: str | None = None
    sandbox: bool = False

    @property
    def label(self) -> str:
        return account_label(
            sandbox=self.sandbox,
            region=self.region,
            aws_profile=self.aws_profile,
            endpoint_url=self.endpoint_url,
        )

    def check_import_region(self) -> None:
        if self.endpoint_url is None and self.region not in IMPORT_REGIONS:
            raise InputError(
                f"ImportInstance is not available in {self.region}; use one of "
                + ", ".join(sorted(IMPORT_REGIONS)),
                field="aws.region",
            )


# How long a call may take. A socket that sends or receives nothing for `read_timeout`
# seconds aborts the try: that is the stall detection, so a frozen network costs one timeout
# per try, never botocore's 60 s default. connect covers TCP (and TLS) set-up.
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 12.0  # AWS answers an ordinary call in well under a second


@dataclass(frozen=True)
class Budget:
    """botocore's tries of one call (the first included) and each try's socket timeouts.

    Retries live in one layer per kind of call, never stacked: botocore's own (standard mode:
    5xx, throttling and connection errors, with backoff and full jitter) for ordinary calls,
    `tui.core.retry` policies, with deadlines, for calls that make a single try here.
    """

    attempts: int
    read_timeout: float = READ_TIMEOUT_S
    connect_timeout: float = CONNECT_TIMEOUT_S
    # Connections botocore keeps per client: a thread beyond it waits for a free one.
    pool: int = 10


# An ordinary call: 3 tries of at most 12 s plus botocore's backoff, so a dead or frozen
# network is a clear error within about 45 s.
ORDINARY = Budget(attempts=3)
# The preflight's reads (and its DryRun ImportInstance, which creates nothing): 5 tries, so a
# throttled account still gets answers; its checks run side by side, so a dead network still
# costs one budget, not one per check.
PREFLIGHT = Budget(attempts=5)
# One try: ImportInstance (botocore must never repeat it blindly), and every call a policy of
# ours retries (the watch, the parts), so that retries never stack.
ONCE = Budget(attempts=1)


def part_budget(part_size: int, workers: int = 10, drain_s: float = 0.0) -> Budget:
    """One try of a part PUT (PART_POLICY retries it). S3 answers once it has stored the whole
    body, which for a part of several GiB takes seconds more than for 10 MiB, and once what
    the kernel still held of it has crossed a slow link (`drain_s`, tui.core.upload.parts'
    LinkPace). One connection per upload worker, so that no worker waits for another's."""
    return Budget(
        attempts=1,
        read_timeout=READ_TIMEOUT_S + 10.0 * part_size / 2**30 + drain_s,
        pool=max(10, workers),
    )


_lock = threading.Lock()
_sessions: dict[Target, boto3.Session] = {}
_clients: dict[tuple[Target, str, Budget], Any] = {}


def session(target: Target) -> boto3.Session:
    import boto3

    with _lock:
        s = _sessions.get(target)
        if s is None:
            if target.sandbox:
                key, secret = SANDBOX_CREDENTIALS
                s = boto3.Session(
                    aws_access_key_id=key, aws_secret_access_key=secret, region_name=target.region
                )
            else:
                s = boto3.Session(profile_name=target.aws_profile, region_name=target.region)
            _sessions[target] = s
        return s


def client(target: Target, service: str, budget: Budget = ORDINARY) -> Any:
    """A shared, thread-safe client whose calls keep to `budget`. S3 always signs SigV4 (SigV2
    URLs break past 7 days and are what an unconfigured client presigns in us-east-1)."""
    from botocore.config import Config

    key = (target, service, budget)
    with _lock:
        c = _clients.get(key)
    if c is not None:
        return c
    options: dict[str, Any] = {
        # total_max_attempts counts the first try too (max_attempts counts retries only).
        "retries": {"mode": "standard", "total_max_attempts": budget.attempts},
        "connect_timeout": budget.connect_timeout,
        "read_timeout": budget.read_timeout,
        "max_pool_connections": budget.pool,
    }
    if service == "s3":
        options["signature_version"] = "s3v4"
        # Every PUT carries Content-MD5, which S3 checks and whose ETag resume compares:
        # botocore's default CRC32 on top would be a second pass over every byte sent.
        options["request_checksum_calculation"] = "when_required"
        options["s3"] = {"addressing_style": "path" if target.endpoint_url else "virtual"}
    try:
        # Any: the stubs overload client() per literal service name.
        boto_session: Any = session(target)
        c = boto_session.client(service, endpoint_url=target.endpoint_url, config=Config(**options))
    except Exception as exc:
        raise map_error(exc) from None
    with _lock:
        return _clients.setdefault(key, c)


def unsigned_endpoint(target: Target, service: str = "ec2") -> str:
    """The endpoint URL botocore would use, without touching credentials."""
    if target.endpoint_url:
        return target.endpoint_url
    import botocore.session
    from botocore import UNSIGNED
    from botocore.config import Config

    c = botocore.session.get_session().create_client(
        service, region_name=target.region, config=Config(signature_version=UNSIGNED)
    )
    return str(c.meta.endpoint_url)


NETWORK_ERROR = "NetworkError"  # the code of a request that got no whole answer


def error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


def map_error(exc: BaseException) -> WizardError:
    """botocore's exceptions as one readable line with AWS's code (AwsError, exit 3); a profile
    name that does not exist is the user's input (InputError, exit 2)."""
    from botocore import exceptions as bx

    if isinstance(exc, WizardError):
        return exc
    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {})
        return AwsError(err.get("Message") or str(exc), code=err.get("Code"))
    if isinstance(exc, bx.NoCredentialsError):
        return AwsError(
            "no AWS credentials found: run `aws configure`, set AWS_PROFILE, or use --sandbox",
            code="NoCredentials",
        )
    if isinstance(exc, bx.ProfileNotFound):
        return InputError(
            f"{exc}; list them with `aws configure list-profiles`", field="--aws-profile"
        )
    if isinstance(exc, bx.TokenRetrievalError | bx.SSOError | bx.UnauthorizedSSOTokenError):
        return AwsError(f"{exc}; run `aws sso login`", code="SSOTokenExpired")
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectionClosedError | bx.ReadTimeoutError):
        return AwsError(
            f"{exc}; check the network, a proxy or a firewall between here and AWS",
            code=NETWORK_ERROR,
        )
    if isinstance(exc, bx.BotoCoreError):
        return AwsError(str(exc), code=type(exc).__name__)
    # Not an AWS or network error: a bug of ours, said as plainly (exit 3, no traceback).
    return AwsError(f"{type(exc).__name__}: {exc}", code="InternalError")
