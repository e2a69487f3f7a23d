"""The command line's grammar: the global options, every command's arguments, and the light
parse that lets the wizard start without building every command's parser."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from tui.core.errors import EXIT_AWS, EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from tui.core.facts import DEFAULT_WORKERS
from tui.core.paths import HOME_ENV

PROG = "ec2-import-wizard"

_EXAMPLES = [
    ("--sandbox", "the wizard, on the embedded sandbox"),
    ("probe disk.vmdk", "what the image is and what it needs"),
    ("preview web01", "the request, exactly as it will be sent"),
    ("run web01 --json", "replay a saved profile (JSON Lines events)"),
    ("runs", "the local run records, newest first"),
    ("resume 308cd8c7", "go on with an interrupted run (an id or its prefix)"),
    ("tasks --watch", "follow the conversion tasks"),
]
EXAMPLES = (
    "examples:\n"
    + "".join(f"  {PROG} {cmd:<18} {what}\n" for cmd, what in _EXAMPLES)
    + f"""
exit codes:
  {EXIT_OK}    done (the import completed, or the command did what it says)
  {EXIT_FAILED}    the import ended cancelled or failed, or a cleanup was refused
  {EXIT_BAD_INPUT}    bad input: the message names the field and the fix; nothing was sent
  {EXIT_AWS}    AWS or the network failed (resume goes on from where it stopped)
  {EXIT_INTERRUPTED}  interrupted (ctrl+c): the run is recorded and resumable

Credentials come from the AWS chain (aws configure, AWS_PROFILE, SSO, environment), never from a
profile. {HOME_ENV}=DIR keeps every folder of the tool (profiles, runs, logs) under DIR.
"""
)

# What the positional arguments mean, said once for every command that takes them.
IMAGE_HELP = "a disk image file (VMDK stream-optimized, VHD fixed or dynamic, RAW)"
PROFILE_HELP = "a saved profile's name (see `profiles list`) or the path of a .toml file"
RUN_ID_HELP = "a run's id as `runs` lists it, or a prefix of it that only it has"
TASK_ID_HELP = "a conversion task's id (import-i-...), as `tasks` lists it"


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def _region(text: str) -> str:
    from tui.core.facts import REGION_RE

    if not REGION_RE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an AWS region name (e.g. us-east-1)")
    return text


def _endpoint(text: str) -> str:
    from tui.core.facts import endpoint_problem

    problem = endpoint_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text.rstrip("/")


def _number_in(
    kind: type[int] | type[float], low: float, high: float, unit: str = "", note: str = ""
) -> Callable[[str], Any]:
    """An argparse type: a whole number (int) or a number (float) within low..high."""
    noun = "a whole number" if kind is int else "a number"

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            of = f" of{unit}" if unit else ""
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}{of}") from None
        if not low <= value <= high:  # also refuses nan and inf
            raise argparse.ArgumentTypeError(f"{text!r} is outside {low:g}..{high:g}{unit}{note}")
        return value

    return parse


# 0.1 s, not 1 s, at the bottom: tests poll the sandbox every 0.2 s.
_poll = _number_in(float, 0.1, 3600, " seconds")
_port = _number_in(int, 0, 65535, note=" (0: a free port)")
_workers = _number_in(int, 1, 32)
_part_mib = _number_in(int, 1, 5 * 1024, " MiB")  # each part is a whole S3 object: <= 5 GiB


def _part_size(text: str) -> int:
    return int(_part_mib(text)) << 20


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    # On subcommands the defaults are suppressed so `cmd --region X` and `--region X cmd` both work.
    d: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}  # add_argument kwargs
    g = parser.add_argument_group("global options")
    where = g.add_mutually_exclusive_group()
    where.add_argument(
        "--sandbox", action="store_true", help="use the embedded sandbox (no AWS account)", **d
    )
    where.add_argument(
        "--endpoint-url", type=_endpoint, metavar="URL", help="send requests here", **d
    )
    g.add_argument("--aws-profile", metavar="NAME", help="named AWS profile (~/.aws/config)", **d)
    g.add_argument(
        "--region", type=_region, metavar="REGION", help="AWS region (default: profile)", **d
    )
    g.add_argument("--profiles-dir", metavar="DIR", help="where saved profiles live", **d)


def _upload_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--part-size", type=_part_size, metavar="MIB", help="part size (default 10)")
    p.add_argument(
        "--workers", type=_workers, metavar="N", help=f"parallel part uploads ({DEFAULT_WORKERS})"
    )


def _skip_check(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--skip-check",
        action="append",
        metavar="ID",
        help="do not run this preflight check (repeatable; ids: `check --help`)",
    )


def _tag(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text[:60]!r} is not KEY=VALUE, e.g. Name=app01")
    return key, value


def _after_options(p: argparse.ArgumentParser) -> None:
    """Flags over the profile's [after] table (docs/design.md section 2)."""
    g = p.add_argument_group("after the import (over the profile's [after])")
    g.add_argument(
        "--tag",
        type=_tag,
        action="append",
        metavar="KEY=VALUE",
        help="tag the instance and its volumes (repeatable; over the profile's tags)",
    )
    g.add_argument(
        "--cleanup",
        choices=["on-success", "never"],
        help="delete the uploaded parts and manifest once the task completed, or never "
        "(default: the profile's, else on-success)",
    )
    g.add_argument(
        "--start",
        action=argparse.BooleanOptionalAction,
        help="start the instance and wait until it is running (default: the profile's, else no)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Import a single-volume Windows VM into Amazon EC2 (ImportInstance). "
        "With no command, opens the wizard.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    _global_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _global_options(p, suppress=True)
        return p

    p = add("probe", "format, variant, sizes, suggested volume and problems of a disk image")
    p.add_argument("image", metavar="IMAGE", help=IMAGE_HELP)
    p.add_argument("--json", action="store_true", help="one JSON object")

    p = add("preview", "the flattened ImportInstance request, exactly as it will be sent")
    p.add_argument("profile", metavar="PROFILE", help=PROFILE_HELP)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help='{"endpoint": ..., "params": {...}}')
    fmt.add_argument("--url", action="store_true", help="one GET-style URL")
    p.add_argument("--reveal", action="store_true", help="show presigned-URL signatures")

    p = add("check", "the preflight: what the account and the disk say, before any upload")
    p.add_argument("profile", metavar="PROFILE", help=PROFILE_HELP)
    p.add_argument("--json", action="store_true", help='{"ok": ..., "checks": [...]}')
    _skip_check(p)

    p = add("upload", "upload the image and its manifest only; print the manifest URL")
    p.add_argument("profile", metavar="PROFILE", help=PROFILE_HELP)
    p.add_argument("--json", action="store_true", help="JSON Lines events")
    p.add_argument("--reveal", action="store_true", help="show the presigned URL's signature")
    _upload_options(p)

    p = add("run", "replay profiles headlessly: probe, upload, submit, watch")
    p.add_argument("profiles", metavar="PROFILE", nargs="+", help=PROFILE_HELP)
    p.add_argument("--dry-run", action="store_true", help="validate and ask EC2 with DryRun=true")
    p.add_argument("--no-wait", action="store_true", help="exit once the task is submitted")
    p.add_argument("--json", action="store_true", help="JSON Lines events")
    p.add_argument("--poll", type=_poll, metavar="SECONDS", help="poll interval")
    _upload_options(p)
    _skip_check(p)
    _after_options(p)

    p = add("resume", "continue an interrupted run (uploads missing parts only)")
    p.add_argument("run_id", metavar="RUN_ID", help=RUN_ID_HELP)
    p.add_argument("--json", action="store_true", help="JSON Lines events")
    p.add_argument("--poll", type=_poll, metavar="SECONDS", help="poll interval")
    _skip_check(p)

    p = add("runs", "local run records")
    p.add_argument("--json", action="store_true")

    p = add("tasks", "DescribeConversionTasks as a table")
    p.add_argument("task_ids", metavar="TASK_ID", nargs="*", help=f"{TASK_ID_HELP} (default all)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--watch", action="store_true", help="refresh in place until interrupted")

    p = add("cancel", "CancelConversionTask")
    p.add_argument("task_id", metavar="TASK_ID", help=TASK_ID_HELP)
    p.add_argument("--reason", metavar="TEXT")

    p = add("cleanup", "delete a run's uploaded parts and manifest")
    p.add_argument("ref", metavar="TASK_ID|RUN_ID", help="the task, or the run (before it had one)")
    p.add_argument("--force", action="store_true", help="even while the task is active")

    p = add("profiles", "saved profiles: list, show NAME, delete NAME, path")
    p.add_argument(
        "action",
        choices=["list", "show", "delete", "path"],
        help="list them, show or delete one, or print the folder they live in",
    )
    p.add_argument("name", metavar="NAME", nargs="?", help="a saved profile's name (show, delete)")

    p = add("sandbox", "serve the sandbox endpoint until interrupted")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_port, default=0, help="0: a free port")
    p.add_argument("--rate", type=_positive_float, metavar="BYTES_PER_S", help="conversion speed")
    p.add_argument("--faults", metavar="SPEC", help='e.g. "s3-put=0.1,throttle=0.2"')
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ec2-import-wizard")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


class _NotJustGlobalOptions(Exception):
    pass


class _GlobalOptionsParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _NotJustGlobalOptions(message)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line. The wizard's own (global options only) is read without building
    every command's parser, which would cost its first paint a few milliseconds; anything
    else, or any mistake, goes to the full parser, whose messages and help are the ones shown.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    light = _GlobalOptionsParser(prog=PROG, add_help=False)
    _global_options(light, suppress=False)
    try:
        args, rest = light.parse_known_args(argv)
    except _NotJustGlobalOptions:
        rest = ["(error)"]
    if rest:
        return build_parser().parse_args(argv)
    args.command = None
    return args
