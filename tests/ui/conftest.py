"""UI tests: the canned scenarios live in tests/ui/scenarios.py (shared with the screenshots)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ui import scenarios


@pytest.fixture(scope="session", autouse=True)
def _fixed_folders_are_ours() -> Iterator[None]:
    with scenarios.exclusive():
        yield


@pytest.fixture
def ui_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fresh fixed folders, and EC2_IMPORT_WIZARD_HOME pointing at them for this test only."""
    monkeypatch.setenv("EC2_IMPORT_WIZARD_HOME", str(scenarios.HOME))
    scenarios.prepare()
    yield
    scenarios.GATE.set()
