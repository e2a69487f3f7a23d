"""How long a part's answer may take after its last byte: from the link's measured pace."""

from __future__ import annotations

from tui.core.upload.parts import DRAIN_TIERS, SEND_BUFFER, LinkPace

MIB = 1 << 20


def test_a_fast_link_needs_no_allowance() -> None:
    pace = LinkPace()
    pace.record(10 * MIB, 0.5)  # 20 MiB/s a connection
    assert pace.drain_allowance(10 * MIB) == 0.0


def test_a_slow_link_gets_time_to_drain_what_the_kernel_holds() -> None:
    pace = LinkPace()
    pace.record(10 * MIB, 64.0)  # 160 KiB/s: 16 parts sharing 20 Mbit/s
    allowance = pace.drain_allowance(10 * MIB)
    drain = min(10 * MIB, SEND_BUFFER) / (10 * MIB / 64.0)
    assert allowance >= 2 * drain and allowance in DRAIN_TIERS


def test_the_slowest_recent_part_decides_and_the_wait_is_bounded() -> None:
    pace = LinkPace()
    for seconds in (0.5, 0.5, 30.0):
        pace.record(MIB, seconds)
    assert pace.drain_allowance(MIB) > 0.0  # one slow part among fast ones
    for _ in range(4):
        pace.record(MIB, 0.5)  # the slow one has left the window
    assert pace.drain_allowance(MIB) == 0.0
    pace.record(MIB, 10_000.0)
    assert pace.drain_allowance(MIB) == DRAIN_TIERS[-1]


def test_before_any_part_a_modest_pace_is_assumed() -> None:
    assert LinkPace().drain_allowance(10 * MIB) > LinkPace().drain_allowance(MIB) > 0.0


def test_an_unanswered_part_slows_the_pace_only_until_one_is_answered() -> None:
    unknown = LinkPace()
    unknown.record(MIB, 12.0, answered=False)  # a slow link from the start: wait longer
    assert unknown.drain_allowance(MIB) > LinkPace().drain_allowance(MIB)
    known = LinkPace()
    known.record(MIB, 0.5)
    known.record(MIB, 12.0, answered=False)  # after fast answers: a freeze, fail as fast
    assert known.drain_allowance(MIB) == 0.0
