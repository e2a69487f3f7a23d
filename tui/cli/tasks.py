"""Commands on the account's conversion tasks, through the one account facade: `tasks`,
`cancel`, `cleanup`."""

from __future__ import annotations

import argparse
import sys
import time

from tui.cli.output import emit_json
from tui.core.account import Account
from tui.core.errors import EXIT_OK, AwsError, InputError
from tui.core.facts import TASK_ID_FORM, TASK_ID_RE
from tui.core.retry import is_transient
from tui.core.session import Session


def _check_task_ids(ids: list[str]) -> None:
    for tid in ids:
        if not TASK_ID_RE.fullmatch(tid):
            raise InputError(
                f"is not a conversion task id ({TASK_ID_FORM})", source=repr(tid), field="TASK_ID"
            )


def cmd_tasks(session: Session, args: argparse.Namespace) -> int:
    from tui.core.tasks import format_table

    _check_task_ids(args.task_ids)
    target = session.target()
    account = Account.of(target)
    interval = args.poll if getattr(args, "poll", None) else (2.0 if target.endpoint_url else 15.0)
    while True:
        try:
            tasks = account.tasks(args.task_ids)
        except AwsError as exc:
            if not (args.watch and is_transient(exc)):
                raise
            # A watch lasts as long as someone looks: network trouble is shown, not fatal.
            print(f"{exc} (trying again in {interval:g} s)", file=sys.stderr, flush=True)
            time.sleep(interval)
            continue
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


def cmd_cancel(session: Session, args: argparse.Namespace) -> int:
    _check_task_ids([args.task_id])
    Account.of(session.target()).cancel(args.task_id, args.reason)
    print(f"cancelling {args.task_id}", file=sys.stderr)
    return EXIT_OK


def cmd_cleanup(session: Session, args: argparse.Namespace) -> int:
    """Delete an upload's parts and manifest, found from a run record (its S3 keys) or from a
    task (its manifest URL). Refused while EC2 may still be reading them."""
    ref: str = args.ref
    journal = session.journal
    by_task = TASK_ID_RE.fullmatch(ref) is not None
    record = journal.find_by_task(ref) if by_task else journal.load(ref)
    if record is not None and record.sandbox:
        raise InputError(
            "that run used --sandbox, whose S3 died with its process", field="TASK_ID|RUN_ID"
        )
    # Not while another process uploads or submits this run (refused before any call).
    with journal.own_latest(record):
        target = session.target_of(record) if record is not None else session.target()
        account = Account.of(target)
        task_id = ref if by_task else record.task_id if record else None
        task = None
        if task_id:
            found = account.tasks([task_id])
            if not found:
                raise InputError(
                    f"no conversion task {task_id} in {target.region}", field="TASK_ID"
                )
            task = found[0]
        summary = account.cleanup(task, record, force=args.force)
        if record is not None and record.converted_path:
            from tui.core import convert

            if convert.remove(record.converted_path):
                summary += f"; removed the converted image {record.converted_path}"
            record.converted_path = None
        print(summary)
        if record is not None:
            journal.update(record, message=summary)
    return EXIT_OK
