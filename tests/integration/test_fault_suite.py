"""The fault suite: S3 part PUTs failing at 5%, 20% and 50%, EC2 throttled at 30%, each with
the `run` process SIGKILLed at a random moment of its upload, then `resume`d.

Every run must end completed, with the image in S3 byte-identical to the source, exactly one
conversion task, and no part uploaded twice once S3 had accepted it. A recording proxy in front
of the sandbox counts what the server really accepted, independently of our own bookkeeping.
Two seeds per fault run by default; the `long` marker runs 20 (`.ci/run` runs both).
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.aws import client, spawn_sandbox
from tests.helpers.cli import (
    KEEP_UPLOAD,
    cli,
    cli_env,
    reassemble,
    records,
    tasks_for,
    write_profile,
)
from tests.helpers.disks import make_source_raw
from tests.helpers.proxy import FaultyProxy

FAULTS = {
    "s3-put-5": "s3-put=0.05",
    "s3-put-20": "s3-put=0.2",
    "s3-put-50": "s3-put=0.5",
    "throttle-30": "throttle=0.3",
}
QUICK_SEEDS = range(2)
LONG_SEEDS = range(2, 20)
CASES = [
    pytest.param(name, seed, id=f"{name}-seed{seed}", marks=[pytest.mark.long] if long else [])
    for name in FAULTS
    for seeds, long in ((QUICK_SEEDS, False), (LONG_SEEDS, True))
    for seed in seeds
]
SUMMARY: Counter[str] = Counter()  # printed at the end of the run by tests/conftest.py


@pytest.fixture(scope="module")
def faulty_endpoints() -> Iterator[dict[str, tuple[str, FaultyProxy]]]:
    """One sandbox per fault spec, each behind a recording proxy (started on first use)."""
    started: dict[str, tuple[Any, FaultyProxy]] = {}

    class Lazy(dict[str, tuple[str, FaultyProxy]]):
        def __missing__(self, name: str) -> tuple[str, FaultyProxy]:
            sb = spawn_sandbox(
                "--rate", str(64 << 20), "--faults", FAULTS[name],
                env={"EC2_IMPORT_WIZARD_SANDBOX_SEED": str(len(started))},
            )  # fmt: skip
            proxy = FaultyProxy(sb.endpoint)
            started[name] = (sb, proxy)
            self[name] = (sb.endpoint, proxy)
            return self[name]

    yield Lazy()
    for sb, proxy in started.values():
        proxy.close()
        sb.stop()


@pytest.mark.parametrize(("fault", "seed"), CASES)
def test_killed_run_resumes_to_completion(
    fault: str, seed: int, faulty_endpoints: Any, tmp_path: Path
) -> None:
    sandbox, proxy = faulty_endpoints[fault]
    rng = random.Random(f"{fault}/{seed}")
    home = tmp_path / "home"
    env = cli_env(home, tmp_path)
    bucket = f"faults-{fault}-{seed}"
    client(sandbox, "s3", retries={"mode": "standard", "total_max_attempts": 20}).create_bucket(
        Bucket=bucket
    )
    image = make_source_raw(tmp_path / f"disk{seed}.raw", size=6 << 20, seed=seed)
    profile = write_profile(tmp_path, f"fault-{seed}", image, bucket, after=KEEP_UPLOAD)

    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", "--endpoint-url", proxy.url, "run", str(profile), "--json",
         "--part-size", "1", "--workers", "2", "--poll", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    # The first upload event: the bucket is checked and the run recorded from here on.
    printed: list[str] = []
    first = {"event": "probe"}
    while first["event"] != "upload":
        line = proc.stdout.readline()
        assert line, ("".join(printed), proc.communicate())
        printed.append(line)
        first = json.loads(line)
    time.sleep(rng.uniform(0.0, 1.2))  # a random moment of the upload (or just after it)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode in (0, -signal.SIGKILL)  # 0: it finished before the kill landed
    SUMMARY["killed" if proc.returncode else "finished before the kill"] += 1

    (record,) = records(home)
    resumes = 0
    while record["state"] != "completed":
        assert resumes < 3, record
        resumed = cli(env, "resume", record["run_id"], "--json", "--poll", "0.2", timeout=180)
        assert resumed.returncode == 0, resumed.stderr
        resumes += 1
        (record,) = records(home)
    SUMMARY["runs completed"] += 1
    SUMMARY["resumes"] += resumes

    s3 = client(sandbox, "s3")
    ec2 = client(sandbox, "ec2", retries={"mode": "standard", "total_max_attempts": 20})
    assert reassemble(s3, bucket, record["manifest_key"]) == image.read_bytes()
    assert len(tasks_for(ec2, record["manifest_key"])) == 1

    accepted = Counter(
        path
        for method, path, status in proxy.log
        if method == "PUT" and f"/{bucket}/" in path and ".part" in path and status < 300
    )
    assert len(accepted) == 6, "\n".join(map(str, (e for e in proxy.log if bucket in e[1])))
    twice = {k: n for k, n in accepted.items() if n > 1}
    assert not twice, f"parts uploaded again after S3 accepted them: {twice}"
    refused = sum(
        1
        for method, path, status in proxy.log
        if method == "PUT" and f"/{bucket}/" in path and status >= 500
    )
    SUMMARY["part PUTs refused by faults"] += refused
