"""Every screen and dialog in its default, filled, error and busy states, at 120x36 and at 80x24
(the smallest terminal the wizard is laid out for), by pytest-textual-snapshot.

Deterministic by construction: a canned account, fixed file names in a folder of the test's own
(painted as /tmp/ec2iw-ui, see tests/ui/scenarios.py), no blinking cursor, no clock; busy states
hold their worker on a gate until the screenshot is taken.
Update with `pytest tests/ui --snapshot-update` and look at every changed SVG before committing.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.ui.scenarios import NARROW, SIZE, Case, Folders, applied, cases


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_screen(case: Case, snap_compare: Any, ui_folders: Folders) -> None:
    with applied(case, ui_folders) as app:
        assert snap_compare(app, terminal_size=SIZE, run_before=case.run)


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_screen_narrow(case: Case, snap_compare: Any, ui_folders: Folders) -> None:
    with applied(case, ui_folders) as app:
        assert snap_compare(app, terminal_size=NARROW, run_before=case.run)
