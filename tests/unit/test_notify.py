"""The alert at the end of a long run: the bell and a desktop notification escape, written only
to a terminal (a real pty here), never into a pipe, and not for a short run."""

from __future__ import annotations

import io
import os
import pty
from collections.abc import Iterator

import pytest

from tui.console import Outcomes, alert_end
from tui.core import notify
from tui.core.errors import InputError
from tui.core.events import DoneEvent, ErrorEvent, Outcome

RUN = "0f0e0d0c-0b0a-4908-8706-050403020100"


@pytest.fixture
def terminal() -> Iterator[tuple[io.TextIOWrapper, int]]:
    """A text stream on a pty's terminal side, and the fd of its other side."""
    master, slave = pty.openpty()
    stream = io.TextIOWrapper(io.FileIO(slave, "w", closefd=True), encoding="utf-8")
    try:
        yield stream, master
    finally:
        stream.close()
        os.close(master)


def read_all(master: int) -> bytes:
    os.set_blocking(master, False)
    data = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


def ended(*events: DoneEvent | ErrorEvent) -> Outcomes:
    outcomes = Outcomes(lambda e: None)
    for e in events:
        outcomes(e)
    return outcomes


@pytest.fixture(autouse=True)
def plain_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("VTE_VERSION", raising=False)
    monkeypatch.delenv(notify.NOTIFY_ENV, raising=False)


def test_a_long_run_rings_and_notifies_on_a_terminal(terminal) -> None:
    stream, master = terminal
    done = ended(DoneEvent(RUN, state=Outcome.COMPLETED))
    assert alert_end(stream, 11.0, done, {RUN: "app01"}) is True
    assert read_all(master) == b"\a\x1b]9;ec2-import-wizard: app01 completed\a"


def test_vte_terminals_get_osc_777_instead(terminal, monkeypatch) -> None:
    monkeypatch.setenv("VTE_VERSION", "7600")
    stream, master = terminal
    failed = ErrorEvent(RUN, code="UnauthorizedOperation", message="no; really\x1b]0;x")
    assert alert_end(stream, 60.0, ended(failed), {}) is True
    out = read_all(master)
    assert out == b"\a\x1b]777;notify;ec2-import-wizard;0f0e0d0c error UnauthorizedOperation\a"
    assert b"\x1b]9;" not in out


def test_nothing_into_a_pipe_or_after_a_short_run(terminal) -> None:
    stream, master = terminal
    done = ended(DoneEvent(RUN, state=Outcome.COMPLETED))
    assert alert_end(stream, 9.9, done, {}) is False  # under NOTIFY_AFTER_S
    piped = io.StringIO()
    assert alert_end(piped, 3600.0, done, {}) is False
    assert piped.getvalue() == ""
    r, w = os.pipe()
    with os.fdopen(w, "w") as pipe:
        assert alert_end(pipe, 3600.0, done, {}) is False
    with os.fdopen(r, "rb") as reader:
        assert reader.read() == b""
    stream.flush()
    assert read_all(master) == b""


def test_the_threshold_comes_from_the_environment(terminal, monkeypatch) -> None:
    stream, master = terminal
    done = ended(DoneEvent(RUN, state=Outcome.COMPLETED), DoneEvent("x" * 36, state="cancelled"))
    monkeypatch.setenv(notify.NOTIFY_ENV, "never")
    assert alert_end(stream, 1e9, done, {}) is False
    monkeypatch.setenv(notify.NOTIFY_ENV, "0")
    assert alert_end(stream, 0.0, done, {}) is True
    assert read_all(master) == b"\a\x1b]9;ec2-import-wizard: 2 runs: 1 completed, 1 cancelled\a"
    monkeypatch.setenv(notify.NOTIFY_ENV, "soon")
    with pytest.raises(InputError, match="neither a number of seconds nor 'never'"):
        notify.notify_after()
