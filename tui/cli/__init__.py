"""The command line: argparse in front (`parser`), each command a thin call into `tui.core`.

No command opens the wizard. Errors are one line on stderr with the exit codes of
docs/design.md section 3; no traceback reaches a user (EC2_IMPORT_WIZARD_DEBUG=1 shows one).
A command's module is imported only when that command runs: the wizard's first paint waits for
nothing but the parser.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import NamedTuple

from tui.cli.parser import PROG, build_parser, parse_args
from tui.core.errors import EXIT_INTERRUPTED, EXIT_OK, WizardError
from tui.core.session import Options, Sandbox, Session

__all__ = ["PROG", "build_parser", "main", "options_from", "parse_args", "session_from"]


class Command(NamedTuple):
    module: str  # tui.cli.<module> defines cmd_<name>(session, args) -> int
    sends: bool  # talks to an endpoint: with --sandbox, the sandbox is started first


COMMANDS: dict[str, Command] = {
    "probe": Command("local", sends=False),
    "preview": Command("local", sends=False),
    "profiles": Command("local", sends=False),
    "check": Command("check", sends=True),
    "upload": Command("imports", sends=True),
    "run": Command("imports", sends=True),
    "resume": Command("imports", sends=True),
    "runs": Command("imports", sends=False),
    "tasks": Command("tasks", sends=True),
    "cancel": Command("tasks", sends=True),
    "cleanup": Command("tasks", sends=True),
    "sandbox": Command("serve", sends=False),
}

Handler = Callable[[Session, argparse.Namespace], int]


def options_from(args: argparse.Namespace) -> Options:
    return Options(
        sandbox=bool(getattr(args, "sandbox", False)),
        endpoint_url=getattr(args, "endpoint_url", None),
        aws_profile=getattr(args, "aws_profile", None),
        region=getattr(args, "region", None),
        profiles_dir=getattr(args, "profiles_dir", None),
    )


def _start_sandbox() -> Sandbox:
    from tui.sandbox import start_from_env  # loaded only when a sandbox starts

    return start_from_env()


def session_from(args: argparse.Namespace) -> Session:
    """The session of a command line; with --sandbox, one that can start the sandbox."""
    return Session(options_from(args), start_sandbox=_start_sandbox)


def handler(name: str) -> Handler:
    module = importlib.import_module(f"tui.cli.{COMMANDS[name].module}")
    found: Handler = getattr(module, f"cmd_{name}")
    return found


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    session = session_from(args)
    try:
        if args.command is None:
            from tui.app import run_app

            return run_app(session)
        if session.sandbox and COMMANDS[args.command].sends:
            session.start_sandbox()
        return handler(args.command)(session, args)
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
        session.close()
