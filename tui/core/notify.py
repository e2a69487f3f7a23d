"""The terminal's alert when a long run ends: the bell, and a desktop notification escape.

Terminals show a desktop notification for one of two escapes: OSC 9 (iTerm2, Windows
Terminal, kitty, WezTerm, Ghostty, ConEmu) or OSC 777 `notify` (VTE terminals such as GNOME
Terminal and Tilix, rxvt-unicode, foot). One of them is sent, so a terminal that knows both
does not notify twice; one that knows neither ignores it, as it ignores any OSC. The faces
decide where it goes (the CLI: stderr, only when it is a terminal and not --json; the TUI:
through textual's driver) and the core says what and when.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

from tui.core.errors import InputError
from tui.core.events import DoneEvent, ErrorEvent
from tui.core.facts import NOTIFY_AFTER_S

NOTIFY_ENV = "EC2_IMPORT_WIZARD_NOTIFY_AFTER"  # seconds, or "never"
BEL = "\a"
TITLE = "ec2-import-wizard"
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # would end or break the escape


def notify_after(env: Mapping[str, str] | None = None) -> float | None:
    """How long a run must take for its end to alert (NOTIFY_ENV, else NOTIFY_AFTER_S);
    None: never."""
    text = (os.environ if env is None else env).get(NOTIFY_ENV, "").strip()
    if not text:
        return NOTIFY_AFTER_S
    if text.lower() == "never":
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also nan
        raise InputError(
            f"{text[:40]!r} is neither a number of seconds nor 'never'", field=NOTIFY_ENV
        )
    return seconds


def uses_osc_777(env: Mapping[str, str]) -> bool:
    """The terminals that notify on OSC 777 rather than OSC 9."""
    term = env.get("TERM", "")
    return bool(env.get("VTE_VERSION")) or term.startswith(("rxvt", "foot"))


def notification(body: str, env: Mapping[str, str] | None = None) -> str:
    """The escape of a desktop notification saying `body`, as the terminal of `env` takes it."""
    env = os.environ if env is None else env
    text = _UNSAFE.sub(" ", body)[:200]
    if uses_osc_777(env):
        return f"\x1b]777;notify;{TITLE};{text}{BEL}"
    return f"\x1b]9;{TITLE}: {text}{BEL}"


def alert(body: str, env: Mapping[str, str] | None = None) -> str:
    """The bell, then the notification."""
    return BEL + notification(body, env)


def ended(outcomes: Sequence[DoneEvent | ErrorEvent], labels: Mapping[str, str]) -> str:
    """How the runs ended, in a few words: "web01 completed", "2 runs: 1 completed, 1 error"."""

    def word(e: DoneEvent | ErrorEvent) -> str:
        return f"error {e.code}" if isinstance(e, ErrorEvent) else str(e.state)

    if len(outcomes) == 1:
        (e,) = outcomes
        return f"{labels.get(e.run_id, e.run_id[:8])} {word(e)}"
    counts: dict[str, int] = {}
    for e in outcomes:
        key = "error" if isinstance(e, ErrorEvent) else str(e.state)
        counts[key] = counts.get(key, 0) + 1
    return f"{len(outcomes)} runs: " + ", ".join(f"{n} {k}" for k, n in counts.items())


def should_alert(seconds: float, env: Mapping[str, str] | None = None) -> bool:
    after = notify_after(env)
    return after is not None and seconds >= after
