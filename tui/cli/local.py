"""Commands that send nothing anywhere: probe an image, preview a request, manage profiles."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from tui.cli.output import emit_json
from tui.core.errors import EXIT_BAD_INPUT, EXIT_OK, InputError
from tui.core.session import Session

if TYPE_CHECKING:
    from tui.core.disk import ProbeResult


def cmd_probe(session: Session, args: argparse.Namespace) -> int:
    from tui.core.disk import probe
    from tui.core.facts import image_path_problem
    from tui.core.units import human_bytes

    problem = image_path_problem(args.image)
    if problem:  # the same rule as source.path, so `probe` never passes what `run` refuses
        raise InputError(problem, field="IMAGE")
    result = probe(args.image)
    if args.json:
        emit_json({**result.to_json(), "guest": _guest(result)})
        return EXIT_OK if result.importable else EXIT_BAD_INPUT
    fmt = result.format or "not importable"
    variant = f" ({result.variant})" if result.variant else ""
    print(f"path:             {result.path}")
    print(f"format:           {fmt}{variant}")
    print(f"file size:        {result.file_bytes} bytes ({human_bytes(result.file_bytes)})")
    print(f"virtual size:     {result.virtual_bytes} bytes ({human_bytes(result.virtual_bytes)})")
    print(f"suggested volume: {result.volume_size_gib} GiB")
    print(f"importable:       {'yes' if result.importable else 'no'}")
    if result.plan is not None:
        from tui.core.sources import plan_line

        print(f"plan:             {result.plan['action']}: {plan_line(result)}")
        print(f"                  {result.plan['reason']}")
    for extent in result.extents:
        found = "found" if extent["found"] else "MISSING"
        print(f"extent:           {extent['path']} ({extent['type']}, {found})")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for problem in result.problems:
        print(f"problem: {problem}", file=sys.stderr)
    return EXIT_OK if result.importable else EXIT_BAD_INPUT


def _guest(result: ProbeResult) -> dict[str, Any] | None:
    """What is inside an importable image (tui/core/guest.py); None when it cannot be read."""
    import zlib

    from tui.core.guest import inspect, source_view

    view = source_view(result) if result.importable else None
    if view is None:  # not importable, or readable only once converted
        return None
    path, image_format, variant, offset = view
    try:
        report = inspect(path, image_format, variant, result.virtual_bytes, offset)
    except (OSError, ValueError, zlib.error):
        return None
    return report.to_json()


def cmd_preview(session: Session, args: argparse.Namespace) -> int:
    from tui.core.plan import build_preview

    profile, origin = session.load_profile(args.profile)
    # The sandbox is not started for a preview: its endpoint is shown as a placeholder.
    preview = build_preview(profile, origin, None if session.sandbox else session.target(profile))
    if args.json:
        emit_json(preview.as_json(reveal=args.reveal))
    elif args.url:
        print(preview.as_url(reveal=args.reveal))
    else:
        print(preview.as_lines(reveal=args.reveal))
    return EXIT_OK


def cmd_profiles(session: Session, args: argparse.Namespace) -> int:
    store = session.store
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
