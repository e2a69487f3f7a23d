"""What commands print besides events: JSON objects, one a line, and aligned tables."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any


def emit_json(obj: dict[str, Any]) -> None:
    import json  # not at import time: the wizard's first paint waits for every import

    print(json.dumps(obj, sort_keys=False), flush=True)


def print_table(rows: Sequence[Sequence[str]]) -> None:
    from tui.core.units import text_table

    sys.stdout.write(text_table(rows) + "\n")
