"""UI tests: the canned scenarios live in tests/ui/scenarios.py (shared with the screenshots)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ui import scenarios
from tui.core.paths import HOME_ENV


@pytest.fixture
def ui_folders(monkeypatch: pytest.MonkeyPatch) -> Iterator[scenarios.Folders]:
    """A folder of this test's own, EC2_IMPORT_WIZARD_HOME pointing into it for this test."""
    with scenarios.own_folders() as folders:
        monkeypatch.setenv(HOME_ENV, str(folders.home))
        yield folders
        scenarios.GATE.set()


@pytest.fixture
def ui_home(ui_folders: scenarios.Folders) -> scenarios.Folders:
    """The test's folder, prepared: two saved profiles and the disk images."""
    scenarios.prepare(ui_folders)
    return ui_folders
