"""`check PROFILE`: the preflight on its own (tui/core/preflight.py). Nothing is uploaded or
created; exit 0 when nothing fails, 2 on a fail, 3 when AWS could not be asked."""

from __future__ import annotations

import argparse
import sys

from tui.cli.output import emit_json
from tui.core.errors import InputError
from tui.core.session import Session


def cmd_check(session: Session, args: argparse.Namespace) -> int:
    from tui.core.journal import new_run_id
    from tui.core.plan import plan_import
    from tui.core.preflight import plan_failure, run_checks, validate_skips

    skip = validate_skips(args.skip_check or ())
    profile, origin = session.load_profile(args.profile)
    target = session.target(profile)
    try:
        plan = plan_import(profile, origin)
    except InputError as exc:
        report = plan_failure(exc)
    else:
        report = run_checks(plan, target, run_id=new_run_id(), skip=skip)
    if args.json:
        emit_json(report.to_json())
        return report.exit_code
    for check in report.checks:
        print(check.line)
    fails, warns = len(report.failures), len(report.warnings)
    if fails:
        print(
            f"preflight failed: {fails} fail, {warns} warn; nothing was uploaded", file=sys.stderr
        )
    else:
        print(f"preflight ok: {len(report.checks) - warns} pass, {warns} warn", file=sys.stderr)
    return report.exit_code
