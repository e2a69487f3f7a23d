"""The session: the global options resolved once, and the services both faces use.

The command line builds one `Session` from its global options; the wizard receives the same
object. It says where requests go (`target`), holds the profile store and the run journal, and
owns the embedded sandbox, which is started only by an explicit `start_sandbox()`.

Import-light on purpose: the wizard builds a Session before its first paint, so pydantic,
botocore and the sandbox load only when a method needs them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tui.core.aws import Target, account_label
from tui.core.errors import InputError
from tui.core.facts import DEFAULT_REGION, endpoint_problem

if TYPE_CHECKING:
    from tui.core.journal import Journal, RunRecord
    from tui.core.profiles import Profile, ProfileStore


@dataclass(frozen=True)
class Options:
    """The global command-line options (all optional)."""

    sandbox: bool = False
    endpoint_url: str | None = None
    aws_profile: str | None = None
    region: str | None = None
    profiles_dir: str | None = None


class SandboxNotStarted(RuntimeError):
    """A sandbox session asked for its target before `start_sandbox()`: a bug, not input."""


class Sandbox(Protocol):
    """What a session needs of the embedded sandbox (tui.sandbox's server is one)."""

    @property
    def endpoint(self) -> str: ...

    def ensure_bucket(self, name: str, region: str = ...) -> None: ...

    def stop(self) -> None: ...


class _SandboxSlot:
    """The one embedded sandbox of a process, shared by a session and its account switches."""

    def __init__(self, start: Callable[[], Sandbox] | None) -> None:
        self.start = start
        self.server: Sandbox | None = None
        self.lock = threading.Lock()


class Session:
    """`start_sandbox` makes the sandbox of a sandbox session (the faces pass
    `tui.sandbox.start_from_env`): the core itself never imports the sandbox."""

    def __init__(
        self,
        options: Options | None = None,
        *,
        start_sandbox: Callable[[], Sandbox] | None = None,
        _slot: _SandboxSlot | None = None,
    ):
        self.options = options or Options()
        self._sandbox = _slot or _SandboxSlot(start_sandbox)

    # -- the account context ---------------------------------------------------------------

    @property
    def sandbox(self) -> bool:
        return self.options.sandbox

    @property
    def region(self) -> str | None:
        return self.options.region

    @property
    def aws_profile(self) -> str | None:
        return self.options.aws_profile

    @property
    def endpoint_url(self) -> str | None:
        return self.options.endpoint_url

    @property
    def label(self) -> str:
        """The account context in words, without loading botocore (the header must not wait):
        what only botocore knows (the configured region, whether there are credentials) shows
        as "…" until `context_label` says it."""
        env = os.environ
        region = self.region or (
            DEFAULT_REGION
            if self.sandbox
            else env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "region …"
        )
        return account_label(
            sandbox=self.sandbox,
            region=region,
            aws_profile=self.aws_profile or env.get("AWS_PROFILE"),
            endpoint_url=self.endpoint_url,
        )

    def context_label(self) -> str:
        """The account context as requests will find it: the region `target()` uses (marked
        when it is only the default) and whether boto3's chain finds credentials. Loads
        botocore and may run a credential process: call it from a worker."""
        if self.sandbox:
            return self.label
        region = self.region or _configured_region(self.aws_profile)
        return account_label(
            sandbox=False,
            region=region or f"{DEFAULT_REGION} (default)",
            aws_profile=self.aws_profile or os.environ.get("AWS_PROFILE"),
            endpoint_url=self.endpoint_url,
            credentials=_has_credentials(self.aws_profile),
        )

    def with_account(self, aws_profile: str | None, region: str | None) -> Session:
        """The same session with another AWS profile and region (the wizard's account switch);
        the sandbox, if any, is shared."""
        changed = replace(self.options, aws_profile=aws_profile, region=region)
        return Session(changed, _slot=self._sandbox)

    def target(self, profile: Profile | None = None) -> Target:
        """Where requests go: flags first, then the profile's [aws] table, then the AWS
        configuration (region) and us-east-1."""
        aws = profile.aws if profile is not None else None
        region = self.region or (aws.region if aws else None)
        if self.sandbox:
            server = self._sandbox.server
            if server is None:
                raise SandboxNotStarted("start_sandbox() before asking a sandbox session's target")
            return Target(
                region=region or DEFAULT_REGION, endpoint_url=server.endpoint, sandbox=True
            )
        endpoint = self.endpoint_url or (aws.endpoint_url if aws else None)
        aws_profile = self.aws_profile or (aws.profile if aws else None)
        if region is None:
            region = _configured_region(aws_profile) or DEFAULT_REGION
        return Target(region=region, aws_profile=aws_profile, endpoint_url=endpoint)

    def target_of(self, record: RunRecord) -> Target:
        """Where a recorded run's requests went; flags given now take precedence."""
        endpoint = self.endpoint_url or record.endpoint_url
        problem = endpoint_problem(endpoint) if endpoint else None
        if problem:  # a record written before the endpoint rule
            raise InputError(
                f"{problem}; give --endpoint-url",
                source=f"run {record.run_id}",
                field="endpoint_url",
            )
        return Target(
            region=self.region or record.region,
            aws_profile=self.aws_profile or record.aws_profile,
            endpoint_url=endpoint,
        )

    # -- the sandbox ---------------------------------------------------------------------------

    def start_sandbox(self) -> str:
        """Start the embedded sandbox once (it returns at once; moto loads in the background)
        and return its endpoint. Idempotent and thread-safe; only for a sandbox session."""
        if not self.sandbox or self._sandbox.start is None:
            raise SandboxNotStarted("this session has no sandbox to start")
        with self._sandbox.lock:
            if self._sandbox.server is None:
                self._sandbox.server = self._sandbox.start()
            return self._sandbox.server.endpoint

    def ensure_sandbox_bucket(self, profile: Profile) -> None:
        """The sandbox starts empty: make the profile's bucket there (never on real AWS)."""
        server = self._sandbox.server
        if self.sandbox and server is not None and profile.source.bucket:
            server.ensure_bucket(profile.source.bucket, self.target(profile).region)

    def close(self) -> None:
        with self._sandbox.lock:
            if self._sandbox.server is not None:
                self._sandbox.server.stop()
                self._sandbox.server = None

    # -- what is kept on disk --------------------------------------------------------------------

    @cached_property
    def store(self) -> ProfileStore:
        from tui.core.paths import profiles_dir
        from tui.core.profiles import ProfileStore

        return ProfileStore(profiles_dir(self.options.profiles_dir))

    @cached_property
    def journal(self) -> Journal:
        from tui.core.journal import Journal

        return Journal()

    def load_profile(self, ref: str) -> tuple[Profile, Path]:
        """A saved profile's name or a path to a .toml file."""
        return self.store.resolve(ref)


def _configured_region(aws_profile: str | None) -> str | None:
    env = os.environ
    if env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"):
        return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    try:
        import botocore.session

        region = botocore.session.Session(profile=aws_profile).get_config_variable("region")
    except Exception:  # a broken AWS config: the default region, and boto3 says why later
        return None
    return str(region) if region else None


def _has_credentials(aws_profile: str | None) -> bool | None:
    """Whether boto3's chain finds credentials (None: it could not tell, e.g. a broken
    config or an unknown profile, which the first call reports in its own words)."""
    try:
        import botocore.session

        return botocore.session.Session(profile=aws_profile).get_credentials() is not None
    except Exception:
        return None
