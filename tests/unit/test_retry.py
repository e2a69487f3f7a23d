"""The retry policy, driven by a fake clock and a seeded random source (nothing sleeps, except
in the one test that proves a real wait is cut short by cancel)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, SSLError

from tui.core.errors import Interrupted
from tui.core.retry import Retry, RetryPolicy, is_throttling, is_transient


class FakeClock:
    """Time moves only when the policy waits; `waits` records every wait asked for."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wait(self, cancel: threading.Event | None, seconds: float) -> bool:
        self.waits.append(seconds)
        if cancel is not None and cancel.is_set():
            return True
        self.now += seconds
        return False


class Flaky(Exception):
    """A failure the tests call retryable."""


class Fatal(Exception):
    """A failure the tests do not."""


class Failing:
    """Fails `times` times, then returns "ok"; `calls` counts the calls."""

    def __init__(self, times: int, error: Callable[[], BaseException] = Flaky):
        self.times = times
        self.error = error
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.times:
            raise self.error()
        return "ok"


def policy(
    clock: FakeClock, seed: int = 1, deadline: float | None = None, **kw: float
) -> RetryPolicy:
    options = {"attempts": 5, "base_delay": 1.0, "max_delay": 100.0, **kw}
    return RetryPolicy(
        retryable=lambda exc: isinstance(exc, Flaky),
        attempts=int(options["attempts"]),
        base_delay=options["base_delay"],
        max_delay=options["max_delay"],
        deadline=deadline,
        clock=clock,
        random=random.Random(seed).random,
    )


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "Op",
    )


def test_success_needs_no_wait() -> None:
    clock = FakeClock()
    assert policy(clock).call(lambda: 42) == 42
    assert clock.waits == []


def test_retries_until_success_and_returns_the_result() -> None:
    clock = FakeClock()
    fn = Failing(3)
    assert policy(clock).call(fn) == "ok"
    assert fn.calls == 4
    assert len(clock.waits) == 3


def test_waits_are_jittered_within_a_doubling_ceiling() -> None:
    """Full jitter: retry n waits in [0, base * 2**(n-1)); over many draws the waits spread
    across the whole range and their ceilings double."""
    ceilings = [1.0, 2.0, 4.0, 8.0]
    draws: list[list[float]] = [[] for _ in ceilings]
    for seed in range(200):
        clock = FakeClock()
        with pytest.raises(Flaky):
            policy(clock, seed=seed).call(Failing(100))
        assert len(clock.waits) == 4
        for i, wait in enumerate(clock.waits):
            assert 0.0 <= wait < ceilings[i]
            draws[i].append(wait)
    for ceiling, waits in zip(ceilings, draws, strict=True):
        assert min(waits) < 0.1 * ceiling and max(waits) > 0.9 * ceiling  # jittered, not fixed
        assert 0.35 * ceiling < sum(waits) / len(waits) < 0.65 * ceiling  # uniform: mean ~ 1/2
    # On average each wait is longer than the one before: the delays grow.
    means = [sum(w) / len(w) for w in draws]
    assert means == sorted(means)


def test_the_same_seed_gives_the_same_waits() -> None:
    first, second = FakeClock(), FakeClock()
    for clock in (first, second):
        with pytest.raises(Flaky):
            policy(clock, seed=7).call(Failing(100))
    assert first.waits == second.waits


def test_waits_are_capped() -> None:
    clock = FakeClock()
    with pytest.raises(Flaky):
        policy(clock, attempts=40, max_delay=5.0).call(Failing(100))
    assert len(clock.waits) == 39
    assert max(clock.waits) <= 5.0
    assert max(clock.waits[10:]) > 4.0  # the later ones do reach near the cap


def test_attempts_are_capped_and_the_last_error_is_raised() -> None:
    clock = FakeClock()
    errors = iter(Flaky(f"try {n}") for n in range(1, 100))

    def fn() -> None:
        raise next(errors)

    with pytest.raises(Flaky, match="try 5"):
        policy(clock, attempts=5).call(fn)
    assert len(clock.waits) == 4


def test_one_attempt_means_no_retry() -> None:
    clock = FakeClock()
    fn = Failing(1)
    with pytest.raises(Flaky):
        policy(clock, attempts=1).call(fn)
    assert fn.calls == 1 and clock.waits == []


def test_non_retryable_errors_pass_through_at_once() -> None:
    clock = FakeClock()
    fn = Failing(1, Fatal)
    with pytest.raises(Fatal):
        policy(clock).call(fn)
    assert fn.calls == 1 and clock.waits == []


def test_keyboard_interrupt_is_never_retried() -> None:
    clock = FakeClock()
    retry_everything = RetryPolicy(retryable=lambda exc: True, clock=clock)
    fn = Failing(1, KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        retry_everything.call(fn)
    assert clock.waits == []


def test_on_retry_is_told_each_retry() -> None:
    clock = FakeClock()
    seen: list[Retry] = []
    assert policy(clock).call(Failing(3), on_retry=seen.append) == "ok"
    assert [r.attempt for r in seen] == [1, 2, 3]
    assert all(isinstance(r.error, Flaky) for r in seen)
    assert [r.delay for r in seen] == clock.waits
    # elapsed: the time since the first attempt, here the waits so far.
    assert [r.elapsed for r in seen] == pytest.approx([0.0, clock.waits[0], sum(clock.waits[:2])])


def test_on_retry_counts_across_threads() -> None:
    """One shared policy, many threads (as the upload workers use it), one counter."""
    retry_fast = RetryPolicy(retryable=lambda exc: isinstance(exc, Flaky), base_delay=0.0)
    count = 0
    lock = threading.Lock()

    def counted(_: Retry) -> None:
        nonlocal count
        with lock:
            count += 1

    threads = [
        threading.Thread(target=retry_fast.call, args=(Failing(2),), kwargs={"on_retry": counted})
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert count == 16


def test_cancel_interrupts_instead_of_waiting() -> None:
    clock = FakeClock()
    cancel = threading.Event()
    fn = Failing(100)

    def cancel_on_second(retry: Retry) -> None:
        if retry.attempt == 2:
            cancel.set()

    with pytest.raises(Interrupted):
        policy(clock).call(fn, cancel=cancel, on_retry=cancel_on_second)
    assert fn.calls == 2
    assert clock.now == 1000.0 + clock.waits[0]  # the second wait did not pass


def test_cancel_cuts_a_real_wait_short() -> None:
    """With the real clock: a 60 s wait ends as soon as another thread sets cancel."""
    slow = RetryPolicy(
        retryable=lambda exc: isinstance(exc, Flaky),
        base_delay=60.0,
        max_delay=60.0,
        random=lambda: 0.999,
    )
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(Interrupted):
        slow.call(Failing(100), cancel=cancel)
    assert time.monotonic() - started < 5.0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(retryable=lambda exc: True, attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(retryable=lambda exc: True, base_delay=10.0, max_delay=1.0)


# ---------------------------------------------------------------------------------------------
# What counts as transient


@pytest.mark.parametrize(
    ("error", "transient", "throttling"),
    [
        (client_error("RequestLimitExceeded", 503), True, True),
        (client_error("SlowDown", 503), True, True),
        (client_error("InternalError", 500), True, False),
        (client_error("Whatever", 502), True, False),
        (client_error("RequestTimeout", 400), True, False),
        (client_error("InvalidParameterValue", 400), False, False),
        (client_error("AuthFailure", 401), False, False),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), True, False),
        (ConnectionResetError(), True, False),
        (SSLError(endpoint_url="https://x", error="bad certificate"), False, False),
        (ValueError("a bug"), False, False),
    ],
)
def test_transient_errors(error: Exception, transient: bool, throttling: bool) -> None:
    assert is_transient(error) is transient
    assert is_throttling(error) is throttling


def test_no_try_starts_after_the_deadline():
    """Tries that each take 15 s (a stalled socket timing out) under a 60 s deadline: the
    policy stops before a try that would start past it, however many attempts are left."""
    clock = FakeClock()
    starts: list[float] = []

    def stalled() -> str:
        starts.append(clock.now - 1000.0)
        clock.now += 15.0
        raise Flaky()

    with pytest.raises(Flaky):
        policy(clock, attempts=100, base_delay=1.0, max_delay=4.0, deadline=60.0).call(stalled)
    assert 3 <= len(starts) <= 5
    assert all(start <= 60.0 for start in starts)
    assert clock.now - 1000.0 <= 60.0 + 15.0


def test_a_deadline_leaves_fast_retries_alone():
    clock = FakeClock()
    flaky = Failing(times=9)
    assert policy(clock, attempts=10, max_delay=2.0, deadline=60.0).call(flaky) == "ok"
    assert flaky.calls == 10


def test_a_negative_deadline_is_refused():
    with pytest.raises(ValueError, match="deadline"):
        RetryPolicy(retryable=lambda e: True, deadline=-1.0)
