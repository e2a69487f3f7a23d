"""`Journal.own`: one owner per run, across processes (a real second process holds the lock)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tui.core.errors import EXIT_BAD_INPUT, InputError
from tui.core.journal import Journal, RunRecord, new_run_id

HOLD = """
import sys
from pathlib import Path
from tui.core.journal import Journal, RunRecord
journal = Journal(Path(sys.argv[1]))
record = RunRecord(run_id=sys.argv[2], profile_name="p", profile={}, profile_origin=None,
                   region="us-east-1")
with journal.own(record):
    print("held", flush=True)
    sys.stdin.readline()
"""


def _record() -> RunRecord:
    return RunRecord(
        run_id=new_run_id(), profile_name="p", profile={}, profile_origin=None, region="us-east-1"
    )


def test_a_run_held_by_another_process_is_refused_naming_it(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "runs")
    record = _record()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(journal.root), record.run_id],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(InputError) as refused, journal.own(record):
            pass
        assert refused.value.field == "RUN_ID" and refused.value.exit_code == EXIT_BAD_INPUT
        assert f"process {holder.pid} on {socket.gethostname()} since " in str(refused.value)
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.communicate(timeout=30)
    with journal.own(record):  # its end freed the run
        pass
    lock = journal.lock_path_for(record.run_id)
    assert oct(lock.stat().st_mode & 0o777) == "0o600"


def test_one_process_cannot_own_a_run_twice(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "runs")
    record = _record()
    refused = pytest.raises(InputError, match=f"process {os.getpid()} ")
    with journal.own(record), refused, journal.own(record):
        pass
    with journal.own(record):
        pass
