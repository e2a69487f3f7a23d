"""The command line: argparse in front, each subcommand a thin call into `tui.core`.

No command opens the TUI. Errors are one line on stderr with the exit codes of design.md
section 3; no traceback reaches a user (EC2_IMPORT_WIZARD_DEBUG=1 shows one).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from tui.core.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK, InputError, WizardError

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
            # The whole process is in sandbox mode: a named (maybe missing, maybe SSO) AWS
            # profile must not reach boto3 here, nor moto's own sessions in this process.
            for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
                os.environ.pop(name, None)
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
    import json  # not at import time: the wizard's first paint waits for every import

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


# -- run, resume, runs, tasks, cancel ------------------------------------------------------------


def _renderer(args: argparse.Namespace, labels: dict[str, str]) -> Any:
    from tui.console import JsonLines, TextProgress

    return JsonLines(labels=labels) if args.json else TextProgress(labels=labels)


def _drive(runs: list[Any], cancel: Any) -> int:
    """Run imports side by side; SIGINT/SIGTERM stop them cleanly (exit 130, resumable)."""
    import signal
    import threading

    from tui.core.errors import EXIT_AWS, EXIT_FAILED, Interrupted

    results: dict[str, int] = {}

    def one(r: Any) -> None:
        try:
            done = r.run()
            results[r.run_id] = (
                EXIT_OK
                if done.state in ("completed", "submitted", "uploaded", "dry-run")
                else EXIT_FAILED
            )
        except Interrupted:
            results[r.run_id] = EXIT_INTERRUPTED
        except WizardError as exc:
            results[r.run_id] = exc.exit_code
        except Exception as exc:  # a bug or an unmapped error: this run fails, not the others
            from tui.core.aws import map_error

            print(f"{PROG}: error: {map_error(exc)}", file=sys.stderr)
            results[r.run_id] = EXIT_AWS

    def stop(signum: int, _frame: Any) -> None:
        cancel.set()

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        threads = [threading.Thread(target=one, args=(r,), daemon=True) for r in runs]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():  # join in slices so the main thread can take signals
                t.join(0.2)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    if cancel.is_set():
        ids = " ".join(r.run_id for r in runs if results.get(r.run_id) == EXIT_INTERRUPTED)
        if ids:
            print(f"{PROG}: interrupted; continue with: {PROG} resume {ids}", file=sys.stderr)
        return EXIT_INTERRUPTED
    codes = set(results.values())
    for worst in (EXIT_INTERRUPTED, 2, EXIT_AWS, EXIT_FAILED):
        if worst in codes:
            return worst
    return EXIT_OK


def _poll(ctx: Context, args: argparse.Namespace, target: Any) -> float:
    if args.poll is not None:
        return float(args.poll)
    return 1.0 if target.endpoint_url else 15.0  # the sandbox converts in seconds


def cmd_run(ctx: Context, args: argparse.Namespace) -> int:
    import threading

    from tui.core.pipeline import ImportRun, TaskSlots

    loaded = [ctx.load_profile(ref) for ref in args.profiles]  # all valid before anything runs
    names = [p.name for p, _ in loaded]
    if len(set(names)) != len(names):
        raise InputError("the same profile is given twice", field="PROFILE")
    cancel = threading.Event()
    slots = TaskSlots()
    labels: dict[str, str] = {}
    render = _renderer(args, labels)  # labels are filled in below, before any run starts
    runs = []
    for profile, origin in loaded:
        target = ctx.target(profile)
        target.check_import_region()
        run = ImportRun.from_profile(
            profile,
            origin,
            target,
            on_event=lambda e: render(e),
            poll=_poll(ctx, args, target),
            wait=not args.no_wait,
            dry_run=args.dry_run,
            cancel=cancel,
            slots=slots,
            part_size=args.part_size,
            workers=args.workers,
        )
        labels[run.run_id] = profile.name
        runs.append(run)
    return _drive(runs, cancel)


def _record_target(ctx: Context, record: Any) -> Any:
    """Where a recorded run's requests went; flags given now take precedence."""
    from tui.core.aws import Target

    return Target(
        region=ctx.region or record.region,
        aws_profile=ctx.aws_profile or record.aws_profile,
        endpoint_url=ctx.endpoint_url or record.endpoint_url,
    )


def cmd_resume(ctx: Context, args: argparse.Namespace) -> int:
    import threading

    from tui.core.journal import Journal
    from tui.core.pipeline import ImportRun

    record = Journal().load(args.run_id)
    target = _record_target(ctx, record)
    cancel = threading.Event()
    render = _renderer(args, {record.run_id: record.profile_name})
    run = ImportRun.resume(record, target, on_event=lambda e: render(e), cancel=cancel)
    run.poll = _poll(ctx, args, run.target)
    return _drive([run], cancel)


def cmd_runs(ctx: Context, args: argparse.Namespace) -> int:
    from tui.core.journal import list_runs
    from tui.core.units import counted

    everything = list_runs()
    records = [r for r in everything if r.sandbox == ctx.sandbox]
    if len(records) < len(everything):  # said on stderr: stdout stays the table or JSON Lines
        hidden = len(everything) - len(records)
        where = "without --sandbox" if ctx.sandbox else "with --sandbox (add it to see them)"
        print(f"{counted(hidden, 'run')} made {where} not shown", file=sys.stderr)
    if args.json:
        for r in records:
            emit_json({k: v for k, v in r.to_json().items() if k != "profile"})
        return EXIT_OK
    if not records:
        print("no runs yet", file=sys.stderr)
        return EXIT_OK
    rows = [("RUN", "PROFILE", "STATE", "TASK", "PARTS", "UPDATED")]
    for r in records:
        parts = f"{len(r.parts_done)}/{r.parts_total}" if r.parts_total else ""
        rows.append((r.short_id, r.profile_name, r.state, r.task_id or "", parts, r.updated_at))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK


def _check_task_ids(ids: list[str]) -> None:
    from tui.core.facts import TASK_ID_FORM, TASK_ID_RE

    for tid in ids:
        if not TASK_ID_RE.fullmatch(tid):
            raise InputError(
                f"is not a conversion task id ({TASK_ID_FORM})",
                source=repr(tid),
                field="TASK_ID",
            )


def cmd_tasks(ctx: Context, args: argparse.Namespace) -> int:
    import time

    from tui.core import aws
    from tui.core.tasks import format_table, views

    _check_task_ids(args.task_ids)
    target = ctx.target()
    ec2 = aws.client(target, "ec2")
    kwargs = {"ConversionTaskIds": args.task_ids} if args.task_ids else {}
    interval = args.poll if getattr(args, "poll", None) else (2.0 if target.endpoint_url else 15.0)
    while True:
        try:
            tasks = views(ec2.describe_conversion_tasks(**kwargs))
        except Exception as exc:
            raise aws.map_error(exc) from None
        if args.json:
            for t in tasks:
                emit_json(t.to_json())
        else:
            table = format_table(tasks) if tasks else "no conversion tasks"
            if args.watch and sys.stdout.isatty():
                sys.stdout.write("\x1b[H\x1b[2J")  # redraw in place
                stamp = time.strftime("%H:%M:%S")
                print(f"{target.label}  {stamp}  (every {interval:g} s; ctrl+c to stop)\n")
            print(table, flush=True)
        if not args.watch:
            return EXIT_OK
        time.sleep(interval)


def cmd_cancel(ctx: Context, args: argparse.Namespace) -> int:
    from tui.core import aws

    _check_task_ids([args.task_id])
    ec2 = aws.client(ctx.target(), "ec2")
    params = {"ConversionTaskId": args.task_id}
    if args.reason:
        params["ReasonMessage"] = args.reason
    try:
        ec2.cancel_conversion_task(**params)
    except Exception as exc:
        raise aws.map_error(exc) from None
    print(f"cancelling {args.task_id}", file=sys.stderr)
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


def cmd_probe(ctx: Context, args: argparse.Namespace) -> int:
    from tui.core.disk import probe
    from tui.core.units import human_bytes

    result = probe(args.image)
    if args.json:
        emit_json(result.to_json())
    else:
        fmt = result.format or "not importable"
        variant = f" ({result.variant})" if result.variant else ""
        print(f"path:             {result.path}")
        print(f"format:           {fmt}{variant}")
        print(f"file size:        {result.file_bytes} bytes ({human_bytes(result.file_bytes)})")
        print(
            f"virtual size:     {result.virtual_bytes} bytes ({human_bytes(result.virtual_bytes)})"
        )
        print(f"suggested volume: {result.volume_size_gib} GiB")
        print(f"importable:       {'yes' if result.importable else 'no'}")
        for warning in result.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        for problem in result.problems:
            print(f"problem: {problem}", file=sys.stderr)
    return EXIT_OK if result.importable else EXIT_BAD_INPUT


def cmd_upload(ctx: Context, args: argparse.Namespace) -> int:
    """The pipeline up to the verified upload: the run is recorded, so `resume RUN_ID` submits
    it later and `cleanup RUN_ID` deletes it."""
    import dataclasses
    import threading

    from tui.core.events import Event, UploadedEvent
    from tui.core.pipeline import ImportRun
    from tui.core.plan import plan_import

    profile, origin = ctx.load_profile(args.profile)
    target = ctx.target(profile)
    target.check_import_region()
    plan = plan_import(profile, origin)
    if plan.image_path is None:
        raise InputError(
            "the profile names an image already uploaded (source.manifest_url): nothing to upload",
            source=str(origin),
            field="source.manifest_url",
        )
    cancel = threading.Event()
    render = _renderer(args, {})

    def on_event(event: Event) -> None:
        if args.reveal and isinstance(event, UploadedEvent) and run.manifest_url:
            event = dataclasses.replace(event, manifest_url=run.manifest_url)
        render(event)

    run = ImportRun(
        plan,
        target,
        on_event=on_event,
        upload_only=True,
        cancel=cancel,
        part_size=args.part_size,
        workers=args.workers,
    )
    code = _drive([run], cancel)
    if code == EXIT_OK and not args.json and run.manifest_url:
        from tui.core.redact import redact_url

        url = run.manifest_url if args.reveal else redact_url(run.manifest_url)
        print(f"manifest: s3://{profile.source.bucket}/{run.record.manifest_key}")
        print(f"manifest URL: {url}")
    return code


def cmd_cleanup(ctx: Context, args: argparse.Namespace) -> int:
    """Delete an upload's parts and manifest, found from a run record (its S3 keys) or from a
    task (its manifest URL). Refused while EC2 may still be reading them."""
    from tui.core import aws, cleanup
    from tui.core.facts import TASK_ID_RE
    from tui.core.journal import Journal
    from tui.core.tasks import TaskView

    ref: str = args.ref
    journal = Journal()
    by_task = TASK_ID_RE.fullmatch(ref) is not None
    record = journal.find_by_task(ref) if by_task else journal.load(ref)
    if record is not None and record.sandbox:
        raise InputError(
            "that run used --sandbox, whose S3 died with its process", field="TASK_ID|RUN_ID"
        )
    target = _record_target(ctx, record) if record is not None else ctx.target(None)
    task_id = ref if by_task else record.task_id if record else None
    task = None
    if task_id:
        try:
            found = aws.client(target, "ec2").describe_conversion_tasks(
                ConversionTaskIds=[task_id]
            )["ConversionTasks"]
        except Exception as exc:
            raise aws.map_error(exc) from None
        if not found:
            raise InputError(f"no conversion task {task_id} in {target.region}", field="TASK_ID")
        task = TaskView.from_api(found[0])
    cleanup.refuse_if_active(task, force=args.force)
    bucket, key = cleanup.upload_location(record, task)
    print(cleanup.delete(aws.client(target, "s3"), bucket, key))
    if record is not None:
        journal.update(record, message=f"cleaned up s3://{bucket}/{key}")
    return EXIT_OK


COMMANDS: dict[str, Callable[[Context, argparse.Namespace], int]] = {
    "preview": cmd_preview,
    "profiles": cmd_profiles,
    "probe": cmd_probe,
    "upload": cmd_upload,
    "run": cmd_run,
    "resume": cmd_resume,
    "runs": cmd_runs,
    "tasks": cmd_tasks,
    "cancel": cmd_cancel,
    "cleanup": cmd_cleanup,
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


def _region(text: str) -> str:
    from tui.core.facts import REGION_RE

    if not REGION_RE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an AWS region name (e.g. us-east-1)")
    return text


def _endpoint(text: str) -> str:
    from tui.core.facts import ENDPOINT_RE

    if not ENDPOINT_RE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an endpoint URL (http://HOST:PORT)")
    return text.rstrip("/")


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    # On subcommands the defaults are suppressed so `cmd --region X` and `--region X cmd` both work.
    d: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
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


def _part_size(text: str) -> int:
    try:
        mib = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of MiB") from None
    if not 1 <= mib <= 5 * 1024:  # each part is a whole S3 object: at most 5 GiB
        raise argparse.ArgumentTypeError(f"{mib} MiB is outside 1..5120 MiB")
    return mib << 20


def _workers(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= n <= 32:
        raise argparse.ArgumentTypeError(f"{n} is outside 1..32")
    return n


def _upload_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--part-size", type=_part_size, metavar="MIB", help="part size (default 10)")
    p.add_argument("--workers", type=_workers, metavar="N", help="parallel part uploads (4)")


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
    p.add_argument("--reveal", action="store_true", help="show the presigned URL's signature")
    _upload_options(p)

    p = add("run", "replay profiles headlessly: probe, upload, submit, watch")
    p.add_argument("profiles", metavar="PROFILE", nargs="+")
    p.add_argument("--dry-run", action="store_true", help="validate and ask EC2 with DryRun=true")
    p.add_argument("--no-wait", action="store_true", help="exit once the task is submitted")
    p.add_argument("--json", action="store_true", help="JSON Lines events")
    p.add_argument("--poll", type=_positive_float, metavar="SECONDS", help="poll interval")
    _upload_options(p)

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


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
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
