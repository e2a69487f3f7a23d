"""Run records as the pipeline writes them: valid (a real profile snapshot), so that the
journal loads them back."""

from __future__ import annotations

from typing import Any

from tests.helpers.profiles import LOCAL, edit
from tui.core.journal import RunRecord, new_run_id


def make_record(name: str = "p", **fields: Any) -> RunRecord:
    """A record of profile `name` (a local-image profile's snapshot); `fields` override."""
    return RunRecord(
        **{
            "run_id": new_run_id(),
            "profile_name": name,
            "profile": edit("name", name, base=LOCAL),
            "profile_origin": None,
            "region": "us-east-1",
            **fields,
        }
    )
