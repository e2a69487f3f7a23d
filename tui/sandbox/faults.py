"""Fault injection for tests and demos: `--faults "s3-put=0.1,throttle=0.2"`.

`s3-put` fails that share of S3 PUTs of part objects with a 500 InternalError (what S3 answers
when it has a bad moment; clients retry). `throttle` answers that share of EC2 calls with
`RequestLimitExceeded` on HTTP 503, as EC2 does, so SDKs retry with back-off as they would
against AWS. `throttle-first=N` throttles the first N EC2 calls, then none: the burst a busy
account sees, which no random share reproduces exactly.
"""

from __future__ import annotations

import os
import random
import threading
from dataclasses import dataclass, field

from tui.core.errors import InputError

FAULTS_ENV = "EC2_IMPORT_WIZARD_SANDBOX_FAULTS"
SEED_ENV = "EC2_IMPORT_WIZARD_SANDBOX_SEED"
KNOWN = ("s3-put", "throttle", "throttle-first")


@dataclass
class Faults:
    s3_put: float = 0.0
    throttle: float = 0.0
    throttle_first: int = 0
    seed: int | None = None
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def _roll(self, share: float) -> bool:
        if share <= 0.0:
            return False
        # One generator behind a lock: with a seed and a sequential client, the same requests fail.
        with self._lock:
            return self._rng.random() < share

    def fail_s3_put(self) -> bool:
        return self._roll(self.s3_put)

    def throttle_ec2(self) -> bool:
        with self._lock:
            if self.throttle_first > 0:
                self.throttle_first -= 1
                return True
        return self._roll(self.throttle)

    @property
    def active(self) -> bool:
        return self.s3_put > 0 or self.throttle > 0 or self.throttle_first > 0

    def spec(self) -> str:
        burst = f",throttle-first={self.throttle_first}" if self.throttle_first else ""
        return f"s3-put={self.s3_put:g},throttle={self.throttle:g}{burst}"


def parse_faults(spec: str | None, *, seed: int | None = None, source: str = "--faults") -> Faults:
    """Parse `name=share,...`; every bad item is an InputError naming it (exit code 2)."""
    values = {"s3-put": 0.0, "throttle": 0.0}
    burst = 0
    for raw in (spec or "").split(","):
        item = raw.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep:
            raise InputError(
                f"bad item {item!r}: expected NAME=SHARE, e.g. s3-put=0.1", field=source
            )
        if name == "throttle-first":
            if not value.strip().isdigit():
                raise InputError(
                    f"bad item {item!r}: {value.strip()!r} is not a count of calls", field=source
                )
            burst = int(value)
            continue
        if name not in values:
            raise InputError(
                f"bad item {item!r}: unknown fault {name!r} (known: {', '.join(KNOWN)})",
                field=source,
            )
        try:
            share = float(value)
        except ValueError:
            raise InputError(
                f"bad item {item!r}: {value.strip()!r} is not a number", field=source
            ) from None
        if not 0.0 <= share <= 1.0:
            raise InputError(f"bad item {item!r}: share must be between 0 and 1", field=source)
        values[name] = share
    return Faults(
        s3_put=values["s3-put"], throttle=values["throttle"], throttle_first=burst, seed=seed
    )


def seed_from_env() -> int | None:
    text = os.environ.get(SEED_ENV, "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise InputError(f"{text!r} is not an integer", field=SEED_ENV) from None
