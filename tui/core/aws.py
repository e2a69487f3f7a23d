"""Sessions and clients per (AWS profile, region, endpoint), and AWS errors as user errors.

Credentials come from boto3's own chain (named profiles, SSO, environment); only the sandbox
uses throwaway ones. boto3 is imported lazily so that the TUI paints before it loads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tui.core.errors import AwsError, InputError, WizardError
from tui.core.facts import DEFAULT_REGION, IMPORT_REGIONS

if TYPE_CHECKING:
    import boto3

SANDBOX_CREDENTIALS = ("AKIASANDBOXEXAMPLE00", "sandbox-secret-not-a-real-key")


def account_label(
    *, sandbox: bool, region: str, aws_profile: str | None, endpoint_url: str | None
) -> str:
    """The account context in words: the wizard's header, `tasks --watch`."""
    if sandbox:
        return f"SANDBOX · {region}"
    who = aws_profile or "default credentials"
    where = f" · {endpoint_url}" if endpoint_url else ""
    return f"{who} · {region}{where}"


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


_lock = threading.Lock()
_sessions: dict[Target, boto3.Session] = {}
_clients: dict[tuple[Target, str], Any] = {}

# botocore's own retries (standard mode: 5xx, throttling and connection errors, with backoff,
# full jitter and a retry quota that stops retrying when most calls of a client fail). The
# first try counts. tui.core.retry covers only what botocore cannot judge.
ATTEMPTS = 5  # an ordinary call: a dead network shows within seconds
# A part PUT of an hours-long upload rides out a bad minute of S3 instead; sized so that even
# the fault suite's S3 failing half of all part PUTs loses a part about once in 4,000.
UPLOAD_ATTEMPTS = 12
NO_RETRIES = 1  # for calls that must not be repeated blindly (ImportInstance)


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


def client(target: Target, service: str, *, attempts: int = ATTEMPTS) -> Any:
    """A shared, thread-safe client. S3 always signs SigV4 (SigV2 URLs break past 7 days and
    are what an unconfigured client presigns in us-east-1). `attempts` is botocore's, first
    try included: ATTEMPTS, UPLOAD_ATTEMPTS for part uploads, NO_RETRIES for ImportInstance."""
    from botocore.config import Config

    key = (target, f"{service}/{attempts}")
    with _lock:
        c = _clients.get(key)
    if c is not None:
        return c
    # total_max_attempts counts the first try too (botocore's max_attempts counts retries only).
    options: dict[str, Any] = {"retries": {"mode": "standard", "total_max_attempts": attempts}}
    if service == "s3":
        options["signature_version"] = "s3v4"
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
        return AwsError(f"network error: {exc}", code="NetworkError")
    if isinstance(exc, bx.BotoCoreError):
        return AwsError(str(exc), code=type(exc).__name__)
    # Not an AWS or network error: a bug of ours, said as plainly (exit 3, no traceback).
    return AwsError(f"{type(exc).__name__}: {exc}", code="InternalError")
