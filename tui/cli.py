"""The command line: argparse in front, each subcommand a thin call into `tui.core`.

No command opens the TUI. Errors are one line on stderr with the exit codes of design.md
section 3; no traceback reaches a user (EC2_IMPORT_WIZARD_DEBUG=1 shows one).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tui.core.errors import EXIT_INTERRUPTED, EXIT_OK, InputError, WizardError

PROG = "ec2-import-wizard"


# ---------------------------------------------------------------------------------------------
# Context: the global options, resolved once


class Context:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.sandbox: bool = bool(getattr(args, "sandbox", False))
        self.endpoint_url: str | None = getattr(args, "endpoint_url", None)
        self.aws_profile: str | None = getattr(args, "aws_profile", None)
        self.region: str | None = getattr(args, "region", None)
        self.profiles_dir: str | None = getattr(args, "profiles_dir", None)
        self._sandbox_server: Any = None

    def store(self) -> Any:
        from tui.core.paths import profiles_dir
        from tui.core.profiles import ProfileStore

        return ProfileStore(profiles_dir(self.profiles_dir))

    def load_profile(self, ref: str) -> tuple[Any, Path]:
        return self.store().resolve(ref)

    def target(self, profile: Any = None) -> Any:
        """Where to send requests: flags first, then the profile's [aws] table, then the
        AWS configuration (region) and us-east-1."""
        from tui.core.aws import DEFAULT_REGION, Target

        aws = profile.aws if profile is not None else None
        region = self.region or (aws.region if aws else None)
        if self.sandbox:
            return Target(
                region=region or DEFAULT_REGION,
                endpoint_url=self.sandbox_endpoint(profile),
                sandbox=True,
            )
        endpoint = self.endpoint_url or (aws.endpoint_url if aws else None)
        aws_profile = self.aws_profile or (aws.profile if aws else None)
        if region is None:
            region = _configured_region(aws_profile) or DEFAULT_REGION
        return Target(region=region, aws_profile=aws_profile, endpoint_url=endpoint)

    def sandbox_endpoint(self, profile: Any = None) -> str:
        """Start the in-process sandbox once per Context (it returns at once; moto loads in the
        background) and create the profile's bucket if missing."""
        from tui.core.aws import DEFAULT_REGION
        from tui.sandbox import FAULTS_ENV, RATE_ENV, float_from_env, parse_faults, start
        from tui.sandbox.faults import seed_from_env

        if self._sandbox_server is None:
            spec = os.environ.get(FAULTS_ENV)
            faults = parse_faults(spec, seed=seed_from_env(), source=FAULTS_ENV)
            self._sandbox_server = start(rate=float_from_env(RATE_ENV), faults=faults)
        bucket = getattr(getattr(profile, "source", None), "bucket", None)
        if bucket:
            aws = getattr(profile, "aws", None)
            region = self.region or getattr(aws, "region", None) or DEFAULT_REGION
            self._sandbox_server.ensure_bucket(bucket, region)
        return str(self._sandbox_server.endpoint)

    def close(self) -> None:
        if self._sandbox_server is not None:
            self._sandbox_server.stop()
            self._sandbox_server = None


def _configured_region(aws_profile: str | None) -> str | None:
    if os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"):
        return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    try:
        import botocore.session

        s = botocore.session.Session(profile=aws_profile)
        return s.get_config_variable("region")
    except Exception:
        return None


def emit_json(obj: Any) -> None:
    print(json.dumps(obj, sort_keys=False), flush=True)


# ---------------------------------------------------------------------------------------------
# Commands


def cmd_preview(ctx: Context, args: argparse.Namespace) -> int:
    from tui.core.plan import build_preview

    profile, origin = ctx.load_profile(args.profile)
    preview = build_preview(profile, origin, ctx.target(profile) if not ctx.sandbox else None)
    if args.json:
        emit_json(preview.as_json(reveal=args.reveal))
    elif args.url:
        print(preview.as_url(reveal=args.reveal))
    else:
        print(preview.as_lines(reveal=args.reveal))
    return EXIT_OK


def cmd_profiles(ctx: Context, args: argparse.Namespace) -> int:
    store = ctx.store()
    action = args.action
    if action == "path":
        print(store.root)
    elif action == "list":
        names = store.names()
        if not names:
            print(f"no saved profiles in {store.root}", file=sys.stderr)
        for name in names:
            print(name)
    elif action in ("show", "delete"):
        if not args.name:
            raise InputError(f"`profiles {action}` needs a profile NAME", field="NAME")
        if action == "show":
            profile, _ = store.resolve(args.name)
            sys.stdout.write(profile.to_toml())
        else:
            path = store.delete(args.name)
            print(f"deleted {path}", file=sys.stderr)
    return EXIT_OK


def cmd_sandbox(ctx: Context, args: argparse.Namespace) -> int:
    """Serve the sandbox until SIGINT (exit 130) or SIGTERM (exit 0)."""
    import signal
    import threading

    from tui.sandbox import start

    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        received.append(signum)
        stop.set()

    # Handlers first: a signal right after the endpoint line must still stop us cleanly.
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            server = start(host=args.host, port=args.port, rate=args.rate, faults=args.faults)
        except OSError as exc:
            raise InputError(f"cannot serve on {args.host}:{args.port}: {exc}") from None
        try:
            print(f"endpoint: {server.endpoint}", flush=True)
            print("sandbox: any credentials work; Ctrl-C to stop", file=sys.stderr, flush=True)
            while not stop.wait(0.5):
                pass
        finally:
            server.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return EXIT_INTERRUPTED if received and received[0] == signal.SIGINT else EXIT_OK


def _not_yet(name: str) -> Callable[[Context, argparse.Namespace], int]:
    def run(ctx: Context, args: argparse.Namespace) -> int:
        raise InputError(f"`{name}` is not available yet in this build")

    return run


COMMANDS: dict[str, Callable[[Context, argparse.Namespace], int]] = {
    "preview": cmd_preview,
    "profiles": cmd_profiles,
    "probe": _not_yet("probe"),
    "upload": _not_yet("upload"),
    "run": _not_yet("run"),
    "resume": _not_yet("resume"),
    "runs": _not_yet("runs"),
    "tasks": _not_yet("tasks"),
    "cancel": _not_yet("cancel"),
    "cleanup": _not_yet("cleanup"),
    "sandbox": cmd_sandbox,
}


# ---------------------------------------------------------------------------------------------
# Parser


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    # On subcommands the defaults are suppressed so `cmd --region X` and `--region X cmd` both work.
    d: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
    g = parser.add_argument_group("global options")
    where = g.add_mutually_exclusive_group()
    where.add_argument(
        "--sandbox", action="store_true", help="use the embedded sandbox (no AWS account)", **d
    )
    where.add_argument("--endpoint-url", metavar="URL", help="send requests to this endpoint", **d)
    g.add_argument("--aws-profile", metavar="NAME", help="named AWS profile (~/.aws/config)", **d)
    g.add_argument(
        "--region", metavar="REGION", help="AWS region (default: profile, then config)", **d
    )
    g.add_argument("--profiles-dir", metavar="DIR", help="where saved profiles live", **d)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Import a single-volume Windows VM into Amazon EC2 (ImportInstance). "
        "With no command, opens the wizard.",
    )
    _global_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _global_options(p, suppress=True)
        return p

    p = add("probe", "format, variant, sizes, suggested volume and problems of a disk image")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--json", action="store_true", help="one JSON object")

    p = add("preview", "the flattened ImportInstance request, exactly as it will be sent")
    p.add_argument("profile", metavar="PROFILE", help="a saved profile name or a .toml path")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help='{"endpoint": ..., "params": {...}}')
    fmt.add_argument("--url", action="store_true", help="one GET-style URL")
    p.add_argument("--reveal", action="store_true", help="show presigned-URL signatures")

    p = add("upload", "upload the image and its manifest only; print the manifest URL")
    p.add_argument("profile", metavar="PROFILE")
    p.add_argument("--json", action="store_true", help="JSON Lines events")

    p = add("run", "replay profiles headlessly: probe, upload, submit, watch")
    p.add_argument("profiles", metavar="PROFILE", nargs="+")
    p.add_argument("--dry-run", action="store_true", help="validate and ask EC2 with DryRun=true")
    p.add_argument("--no-wait", action="store_true", help="exit once the task is submitted")
    p.add_argument("--json", action="store_true", help="JSON Lines events")
    p.add_argument("--poll", type=_positive_float, metavar="SECONDS", help="poll interval")

    p = add("resume", "continue an interrupted run (uploads missing parts only)")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--json", action="store_true", help="JSON Lines events")
    p.add_argument("--poll", type=_positive_float, metavar="SECONDS", help="poll interval")

    p = add("runs", "local run records")
    p.add_argument("--json", action="store_true")

    p = add("tasks", "DescribeConversionTasks as a table")
    p.add_argument("task_ids", metavar="TASK_ID", nargs="*")
    p.add_argument("--json", action="store_true")
    p.add_argument("--watch", action="store_true", help="refresh in place until interrupted")

    p = add("cancel", "CancelConversionTask")
    p.add_argument("task_id", metavar="TASK_ID")
    p.add_argument("--reason", metavar="TEXT")

    p = add("cleanup", "delete a run's uploaded parts and manifest")
    p.add_argument("ref", metavar="TASK_ID|RUN_ID")
    p.add_argument("--force", action="store_true", help="even while the task is active")

    p = add("profiles", "saved profiles: list, show NAME, delete NAME, path")
    p.add_argument("action", choices=["list", "show", "delete", "path"])
    p.add_argument("name", metavar="NAME", nargs="?")

    p = add("sandbox", "serve the sandbox endpoint until interrupted")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0: a free port")
    p.add_argument("--rate", type=_positive_float, metavar="BYTES_PER_S", help="conversion speed")
    p.add_argument("--faults", metavar="SPEC", help='e.g. "s3-put=0.1,throttle=0.2"')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    ctx = Context(args)
    try:
        if args.command is None:
            from tui.app import run_app

            return run_app(ctx)
        return COMMANDS[args.command](ctx, args)
    except WizardError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:
        if os.environ.get("EC2_IMPORT_WIZARD_DEBUG"):
            raise
        from tui.core.aws import map_error

        err = map_error(exc)
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return err.exit_code
    finally:
        ctx.close()
