"""Commands that drive the import pipeline (`upload`, `run`, `resume`) and list its records
(`runs`)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import threading
import time

from tui.cli.driver import drive, poll_interval, renderer
from tui.cli.output import emit_json, print_table
from tui.console import Outcomes, alert_end
from tui.core import notify
from tui.core.errors import EXIT_INTERRUPTED, EXIT_OK, InputError
from tui.core.events import Event, UploadedEvent
from tui.core.pipeline import ImportRun, TaskSlots
from tui.core.session import Session


def drive_and_alert(
    runs: list[ImportRun], cancel: threading.Event, outcomes: Outcomes, as_json: bool
) -> int:
    """`drive` the runs (whose events go through `outcomes`), then, in text mode, ring the
    terminal's bell with a desktop notification when they took long (tui/core/notify.py); not
    after an interrupt (whoever pressed ctrl+c is there)."""
    started = time.monotonic()
    code = drive(runs, cancel)
    if not as_json and code != EXIT_INTERRUPTED:
        labels = {r.run_id: r.plan.profile.name for r in runs}
        alert_end(sys.stderr, time.monotonic() - started, outcomes, labels)
    return code


def cmd_run(session: Session, args: argparse.Namespace) -> int:
    loaded = [session.load_profile(ref) for ref in args.profiles]  # all valid before any runs
    loaded = [
        (p.with_after(tags=args.tag, cleanup=args.cleanup, start=args.start), origin)
        for p, origin in loaded
    ]
    names = [p.name for p, _ in loaded]
    if len(set(names)) != len(names):
        raise InputError("the same profile is given twice", field="PROFILE")
    from tui.core.preflight import validate_skips

    skips = validate_skips(args.skip_check or ())
    notify.notify_after()  # a bad EC2_IMPORT_WIZARD_NOTIFY_AFTER is exit 2 before anything
    cancel = threading.Event()
    slots = TaskSlots()
    labels: dict[str, str] = {}
    # labels are filled in below, before any run starts
    render = Outcomes(renderer(args.json, labels))
    runs = []
    for profile, origin in loaded:
        target = session.target(profile)
        target.check_import_region()
        session.ensure_sandbox_bucket(profile)
        run = ImportRun.from_profile(
            profile,
            origin,
            target,
            on_event=render,
            poll=poll_interval(args.poll, target),
            wait=not args.no_wait,
            dry_run=args.dry_run,
            cancel=cancel,
            slots=slots,
            part_size=args.part_size,
            workers=args.workers,
            preflight=True,
            skip_checks=skips,
        )
        labels[run.run_id] = profile.name
        runs.append(run)
    return drive_and_alert(runs, cancel, render, args.json)


def cmd_resume(session: Session, args: argparse.Namespace) -> int:
    record = session.journal.load(args.run_id)
    notify.notify_after()
    cancel = threading.Event()
    render = Outcomes(renderer(args.json, {record.run_id: record.profile_name}))
    target = session.target_of(record)
    from tui.core.preflight import validate_skips

    skips = validate_skips(args.skip_check or ())
    run = ImportRun.resume(
        record,
        target,
        on_event=render,
        cancel=cancel,
        poll=poll_interval(args.poll, target),
        preflight=True,  # when nothing is uploaded yet (ImportRun._nothing_sent)
        skip_checks=skips,
    )
    return drive_and_alert([run], cancel, render, args.json)


def cmd_upload(session: Session, args: argparse.Namespace) -> int:
    """The pipeline up to the verified upload: the run is recorded, so `resume RUN_ID` submits
    it later and `cleanup RUN_ID` deletes it."""
    from tui.core.plan import plan_import

    profile, origin = session.load_profile(args.profile)
    target = session.target(profile)
    target.check_import_region()
    plan = plan_import(profile, origin, args.part_size)
    if plan.image_path is None:
        raise InputError(
            "the profile names an image already uploaded (source.manifest_url): nothing to upload",
            source=str(origin),
            field="source.manifest_url",
        )
    session.ensure_sandbox_bucket(profile)
    notify.notify_after()
    cancel = threading.Event()
    render = Outcomes(renderer(args.json, {}))

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
    code = drive_and_alert([run], cancel, render, args.json)
    if code == EXIT_OK and not args.json and run.manifest_url:
        from tui.core.redact import redact_url

        url = run.manifest_url if args.reveal else redact_url(run.manifest_url)
        print(f"manifest: s3://{profile.source.bucket}/{run.record.manifest_key}")
        print(f"manifest URL: {url}")
    return code


# `runs --json` is a record without these: the profile (long; `profiles show` has it), the
# image identity and the converted file (resume's and cleanup's business), so its lines stay
# what they were before identities.
RUNS_JSON_LEAVES_OUT = frozenset({"profile", "image_identity", "converted_path"})


def cmd_runs(session: Session, args: argparse.Namespace) -> int:
    from tui.core.units import counted

    scan = session.journal.scan()
    for damaged in scan.damaged:  # one line each; the good runs are listed all the same
        print(f"skipped {damaged.path}: {damaged.problem}", file=sys.stderr)
    everything = scan.records
    records = [r for r in everything if r.sandbox == session.sandbox]
    if len(records) < len(everything):  # said on stderr: stdout stays the table or JSON Lines
        hidden = len(everything) - len(records)
        where = "without --sandbox" if session.sandbox else "with --sandbox (add it to see them)"
        print(f"{counted(hidden, 'run')} made {where} not shown", file=sys.stderr)
    if args.json:
        for r in records:
            emit_json({k: v for k, v in r.to_json().items() if k not in RUNS_JSON_LEAVES_OUT})
        return EXIT_OK
    if not records:
        print("no other runs" if scan.damaged else "no runs yet", file=sys.stderr)
        return EXIT_OK
    rows = [("RUN", "PROFILE", "STATE", "TASK", "PARTS", "UPDATED")]
    for r in records:
        parts = f"{len(r.parts_done)}/{r.parts_total}" if r.parts_total else ""
        rows.append((r.short_id, r.profile_name, r.state, r.task_id or "", parts, r.updated_at))
    print_table(rows)
    return EXIT_OK
