"""The one retry policy: what is retried, how long to wait between tries, when to give up.

Who retries what (one layer per kind of failure, so retries never stack):

- botocore, configured once in `tui.core.aws.client`: 5xx, throttling and connection errors of
  ordinary S3 and EC2 calls;
- this policy, only for what botocore cannot judge: S3 storing other bytes than we sent
  (`tui.core.upload.parts`), the presigned-URL checks made with urllib
  (`tui.core.upload.presign`), ImportInstance, which botocore must never repeat blindly, and
  the blips of an hours-long watch (`tui.core.pipeline`);
- and one exception, throttling only: a preflight check still throttled after botocore's
  tries runs again, whole, after a longer pause (`tui.core.preflight`). Throttling is the
  account's pace, which waiting gets past; a dead network is not waited on twice.

Waits use full jitter (a uniform draw between 0 and the exponential ceiling), so parallel
workers that failed together do not retry together. A wait ends early when the cancel event is
set, raising `Interrupted`. The clock and the random source are injectable, so tests drive the
policy without sleeping.
"""

from __future__ import annotations

import random as _random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from tui.core.aws import NETWORK_ERROR, error_code
from tui.core.errors import AwsError, Interrupted

T = TypeVar("T")

# Error codes AWS sends when it wants the caller to slow down (EC2 and S3 spellings).
THROTTLING_CODES = frozenset(
    {
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "SlowDown",
        "BandwidthLimitExceeded",
    }
)
# Codes of a bad moment on AWS's side that another try usually gets past.
TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "Unavailable",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
    }
)


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def wait(self, cancel: threading.Event | None, seconds: float) -> bool:
        """Wait `seconds`, or less if `cancel` is set: True when it was."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, cancel: threading.Event | None, seconds: float) -> bool:
        if cancel is None:
            time.sleep(seconds)
            return False
        return cancel.wait(seconds)


SYSTEM_CLOCK = SystemClock()


@dataclass(frozen=True)
class Retry:
    """What `on_retry` is told before each wait."""

    attempt: int  # the attempt that failed, from 1
    error: Exception
    delay: float  # seconds about to be waited
    elapsed: float  # seconds since the first attempt started


@dataclass(frozen=True)
class RetryPolicy:
    """Try `fn` up to `attempts` times (the first try included) while `retryable(error)`, and
    start no try that would begin more than `deadline` seconds after the first one did.

    The n-th retry waits a uniform draw from [0, min(max_delay, base_delay * 2**(n-1))).
    `random` returns floats in [0, 1); pass a seeded `random.Random(...).random` in tests.
    A try itself is bounded by the socket timeouts of its client (`tui.core.aws.Budget`), so
    a policy with a deadline gives up within about deadline + one try.
    """

    retryable: Callable[[BaseException], bool]
    attempts: int = 3
    base_delay: float = 0.2
    max_delay: float = 10.0
    deadline: float | None = None  # seconds
    clock: Clock = field(default=SYSTEM_CLOCK, compare=False)
    random: Callable[[], float] = field(default=_random.random, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {self.attempts}")
        if not 0 <= self.base_delay <= self.max_delay:
            raise ValueError("delays must satisfy 0 <= base_delay <= max_delay")
        if self.deadline is not None and self.deadline < 0:
            raise ValueError(f"deadline must not be negative, not {self.deadline}")

    def ceiling(self, retry: int) -> float:
        """The longest wait before retry number `retry` (from 1)."""
        # The exponent is bounded: 2**64 already dwarfs any sensible max_delay.
        return min(self.max_delay, self.base_delay * 2.0 ** min(retry - 1, 64))

    def delay(self, retry: int) -> float:
        return self.random() * self.ceiling(retry)

    def call(
        self,
        fn: Callable[[], T],
        *,
        cancel: threading.Event | None = None,
        on_retry: Callable[[Retry], None] | None = None,
    ) -> T:
        """`fn()`'s result; its last error once attempts run out or at once if not retryable.

        Raises `Interrupted` when `cancel` is set during a wait (or before one starts).
        """
        started = self.clock.monotonic()
        attempt = 1
        while True:
            try:
                return fn()
            except Exception as exc:
                if attempt >= self.attempts or not self.retryable(exc):
                    raise
                delay = self.delay(attempt)
                elapsed = self.clock.monotonic() - started
                if self.deadline is not None and elapsed + delay > self.deadline:
                    raise
                if on_retry is not None:
                    on_retry(Retry(attempt, exc, delay, elapsed))
                if self.clock.wait(cancel, delay):
                    raise Interrupted("interrupted while waiting to retry") from None
            attempt += 1


def http_status(exc: BaseException) -> int:
    """The HTTP status of a botocore ClientError, 0 when there is none."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return 0


def is_throttling(exc: BaseException) -> bool:
    """AWS asked the caller to slow down (an error already mapped is judged by its code)."""
    code = exc.code if isinstance(exc, AwsError) else error_code(exc)
    return code in THROTTLING_CODES


def is_connection_error(exc: BaseException) -> bool:
    """The network failed: nothing, or no whole answer, came back. A bad certificate is not
    a blip and is not counted."""
    from botocore import exceptions as bx

    if isinstance(exc, bx.SSLError):
        return False
    return isinstance(exc, bx.ConnectionError | bx.HTTPClientError | ConnectionError)


def is_transient(exc: BaseException) -> bool:
    """Throttling, a 5xx or a transient code, or a connection error: worth another try. An
    error already mapped for the user (AwsError) is judged by its code."""
    if isinstance(exc, AwsError):
        return (
            exc.code in THROTTLING_CODES
            or exc.code in TRANSIENT_CODES
            or (exc.code == NETWORK_ERROR)
        )
    code = error_code(exc)
    if code in THROTTLING_CODES or code in TRANSIENT_CODES or http_status(exc) >= 500:
        return True
    return code is None and is_connection_error(exc)
