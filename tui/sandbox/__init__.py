"""The embedded sandbox: moto's server plus a faithful ImportInstance conversion emulation.

    with tui.sandbox.start() as sb:          # returns at once; moto loads in the background
        boto3.client("ec2", endpoint_url=sb.endpoint, ...)

Importing this package is cheap: werkzeug and moto load only when a sandbox starts.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from tui.sandbox.faults import FAULTS_ENV, SEED_ENV, Faults, parse_faults

if TYPE_CHECKING:
    from tui.sandbox.server import SandboxServer

RATE_ENV = "EC2_IMPORT_WIZARD_SANDBOX_RATE"
TASK_TTL_ENV = "EC2_IMPORT_WIZARD_SANDBOX_TASK_TTL"
# More credentials the sandbox accepts besides its own: "KEY:SECRET[,KEY:SECRET...]".
CREDENTIALS_ENV = "EC2_IMPORT_WIZARD_SANDBOX_CREDENTIALS"

__all__ = [
    "CREDENTIALS_ENV",
    "FAULTS_ENV",
    "RATE_ENV",
    "SEED_ENV",
    "TASK_TTL_ENV",
    "Faults",
    "SandboxServer",
    "parse_faults",
    "start",
    "start_from_env",
]


def start(
    host: str = "127.0.0.1",
    port: int = 0,
    rate: float | None = None,
    faults: str | Faults | None = None,
    *,
    seed: int | None = None,
    task_ttl: float | None = None,
    poll_interval: float | None = None,
    credentials: dict[str, str] | None = None,
) -> SandboxServer:
    """Bind, serve and return the sandbox. `rate`: BytesConverted per second (default: a
    demo-friendly pace); `faults`: "s3-put=P,throttle=P" (InputError if malformed);
    `task_ttl`: seconds until ExpirationTime (default 7 days); `credentials`: access key ->
    secret accepted besides the sandbox's own pair and CREDENTIALS_ENV's. UnsupportedMoto (an
    InputError) at once if the installed moto is outside the tested range,
    moto_adapter.SUPPORTED."""
    from tui.sandbox.server import SandboxServer

    return SandboxServer(
        host,
        port,
        rate,
        faults,
        seed=seed,
        task_ttl=task_ttl,
        poll_interval=poll_interval,
        credentials=credentials,
    ).start()


def float_from_env(name: str) -> float | None:
    """A positive number from the environment, or None; InputError if it is not one."""
    from tui.core.errors import InputError

    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{text!r} is not a number", field=name) from None
    if not value > 0:
        raise InputError(f"{text!r} must be greater than 0", field=name)
    return value


def credentials_from_env() -> dict[str, str]:
    """CREDENTIALS_ENV's pairs; InputError naming it if one is not KEY:SECRET."""
    from tui.core.errors import InputError

    pairs: dict[str, str] = {}
    for item in os.environ.get(CREDENTIALS_ENV, "").split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, secret = item.partition(":")
        if not (sep and key.strip() and secret):
            raise InputError(
                "each credential must be ACCESS_KEY:SECRET, separated by commas",
                field=CREDENTIALS_ENV,
            )
        pairs[key.strip()] = secret
    return pairs


def start_from_env() -> SandboxServer:
    """The sandbox of `--sandbox`: in this process, faults, pace and seed from the environment.

    The whole process is then in sandbox mode: a named (maybe missing, maybe SSO) AWS profile
    must not reach boto3, nor moto's own sessions in this process."""
    from tui.sandbox.faults import seed_from_env

    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        os.environ.pop(name, None)
    faults = parse_faults(os.environ.get(FAULTS_ENV), seed=seed_from_env(), source=FAULTS_ENV)
    return start(rate=float_from_env(RATE_ENV), faults=faults)
