"""Two processes on one run, 20 tries each (issue 12's races): two `resume` of one interrupted
run started at once; `resume RUN` while its `run` is uploading; `cleanup RUN` while a `resume`
of it is uploading. Real CLI processes against one shared sandbox over HTTP.

Every process talks to the sandbox through a recording proxy of its own
(tests/helpers/proxy.py, HoldingProxy), so what each one sent is known from the wire, not from
our bookkeeping. The proxy holds the uploading process's part PUTs while the other process
starts: the contender always meets a run that is mid-upload, whatever the machine's speed (a
timed race would mostly test start-up jitter). Each try checks:

- exactly one conversion task carries the run's manifest (the sandbox's EC2, with boto3);
- no part was accepted twice. "Accepted" means S3 answered a PUT of the part's key with 2xx,
  as the proxies saw it. A resume that HEADs a part and finds it present sends no PUT, so it
  never counts; a second accepted PUT would be legitimate only if the first answer never
  reached the client (a lost response), and no answer is lost here (no faults; a held PUT is
  released before its process may exit), so every part key is accepted exactly once;
- the bytes in S3, reassembled through the manifest, are the image's;
- the losing process exits 2, names the holder (its pid and host), prints no traceback, and
  sends nothing at all: its proxy saw no request.

To stay within the suite's time budget the tries of one race share their set-up: the
interrupted runs are made by one `run` of 20 profiles, stopped by SIGINT while each run's
k-th part PUT is held (k from the try's seed), and a winner finishes in the background while
the next try starts. Each try still has its own run, its own processes and its own checks,
and a failure names the try.
"""

from __future__ import annotations

import random
import re
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.aws import client
from tests.helpers.cli import (
    KEEP_UPLOAD,
    LiveRun,
    cli_env,
    no_preflight,
    reassemble,
    records,
    start_cli,
    tasks_for,
    write_profile,
)
from tests.helpers.disks import with_mbr
from tests.helpers.proxy import HoldingProxy

TRIES = 20
MIB = 1 << 20
PARTS = 4  # a 4 MiB image in 1 MiB parts, one at a time: small, and still several parts
BOUND = 60.0  # seconds: generous bounds on waits that only a hang would reach
UPLOAD = ("--part-size", "1", "--workers", "1")
POLL = ("--json", "--poll", "0.2", *no_preflight())
_PART = re.compile(r"/d(\d+)\.raw\.part(\d+)$")  # the try and the part, from a part's key


@dataclass
class Race:
    """One race's world: a bucket, one image and profile per try, the processes' home, every
    proxy opened (closed at the end) and every process started (killed if still running)."""

    sandbox: str
    s3: Any
    ec2: Any
    tmp: Path
    bucket: str
    env: dict[str, str]
    images: dict[int, Path] = field(default_factory=dict)
    profiles: dict[int, Path] = field(default_factory=dict)
    proxies: list[HoldingProxy] = field(default_factory=list)
    procs: list[LiveRun] = field(default_factory=list)

    @property
    def home(self) -> Path:
        return self.tmp / "home"

    def proxy(self, hold: Any = None) -> HoldingProxy:
        p = HoldingProxy(self.sandbox, hold)
        self.proxies.append(p)
        return p

    def start(self, proxy: HoldingProxy, *args: str) -> LiveRun:
        live = LiveRun(start_cli(self.env, proxy.url, *args))
        self.procs.append(live)
        return live

    def record(self, n: int) -> dict[str, Any]:
        name = f"race{n}"
        (found,) = [r for r in records(self.home) if r["profile_name"] == name]
        return found

    def run_held(self, tries: range, hold_part: dict[int, int]) -> tuple[LiveRun, HoldingProxy]:
        """One `run` of the tries' profiles side by side, each held at its part PUT number
        `hold_part[n]` (0-based) and later ones: returned once every run is held there."""

        def hold(path: str) -> bool:
            m = _PART.search(path)
            return m is not None and int(m.group(2)) >= hold_part[int(m.group(1))]

        proxy = self.proxy(hold)
        run = self.start(proxy, "run", *(str(self.profiles[n]) for n in tries), *UPLOAD, *POLL)
        held = proxy.wait_held(len(tries), BOUND)
        assert held, f"not every run reached its held part: {proxy.held} {run.stderr}"
        return run, proxy

    def interrupted_runs(self, seed: str) -> dict[int, dict[str, Any]]:
        """Every try's run, interrupted while its part k (1 <= k <= PARTS - 2, from the seed)
        is held: k + 1 parts end up in S3 (the held one completes), and at least one is left
        for a resume to send."""
        rng = random.Random(seed)
        hold_part = {n: rng.randint(1, PARTS - 2) for n in range(TRIES)}
        run, proxy = self.run_held(range(TRIES), hold_part)
        run.proc.send_signal(signal.SIGINT)
        time.sleep(0.3)  # let the signal land before the held PUTs complete
        proxy.release()
        assert run.wait(BOUND) == 130, run.stderr
        made = {n: self.record(n) for n in range(TRIES)}
        for n, rec in made.items():
            assert rec["state"] == "interrupted" and rec["task_id"] is None, (n, rec)
        return made

    def check_completed(self, n: int, what: str) -> None:
        """One completed run: one task, each part accepted once, the image's bytes in S3."""
        rec = self.record(n)
        assert rec["state"] == "completed", f"{what}: {rec}"
        manifest_key = rec["manifest_key"]
        tasks = tasks_for(self.ec2, manifest_key)
        assert len(tasks) == 1, f"{what}: {len(tasks)} conversion tasks: {tasks}"
        accepted = Counter(
            path
            for p in self.proxies
            for method, path, status in p.requests()
            if method == "PUT"
            and f"/{rec['run_id']}/" in path
            and ".part" in path
            and 200 <= status < 300
        )
        assert len(accepted) == PARTS, f"{what}: accepted part PUTs {accepted}"
        twice = {k: c for k, c in accepted.items() if c > 1}
        # A PUT held longer than the client's read timeout (12 s) is retried by the client,
        # and then the first answer was lost: say so, it would be the set-up's slowness.
        holds = max(p.longest_hold for p in self.proxies)
        assert not twice, f"{what}: parts accepted by S3 more than once: {twice} ({holds=:.1f} s)"
        data = reassemble(self.s3, self.bucket, manifest_key)
        assert data == self.images[n].read_bytes(), f"{what}: the bytes in S3 differ"


@pytest.fixture
def race(sandbox: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Race]:
    s3, ec2 = client(sandbox, "s3"), client(sandbox, "ec2")
    bucket = f"race-{random.randrange(16**8):08x}"
    s3.create_bucket(Bucket=bucket)
    r = Race(sandbox, s3, ec2, tmp_path, bucket, cli_env(tmp_path / "home", tmp_path))
    for n in range(TRIES):
        image = tmp_path / f"d{n}.raw"
        image.write_bytes(
            with_mbr(random.Random(f"{request.node.name}/{n}").randbytes(PARTS * MIB))
        )
        r.images[n] = image
        r.profiles[n] = write_profile(tmp_path, f"race{n}", image, bucket, after=KEEP_UPLOAD)
    try:
        yield r
    finally:
        for live in r.procs:
            live.kill()
        # Side by side: each proxy takes up to half a second to stop serving.
        closing = [threading.Thread(target=p.close) for p in r.proxies]
        for t in closing:
            t.start()
        for t in closing:
            t.join()


def _check_refused(loser: LiveRun, proxy: HoldingProxy, holder_pid: int, what: str) -> None:
    assert loser.proc.returncode == 2, f"{what}: exit {loser.proc.returncode}\n{loser.stderr}"
    assert "Traceback" not in loser.stderr, f"{what}: {loser.stderr}"
    holder = f"in use by process {holder_pid} on {socket.gethostname()} since "
    said = " ".join(str(e.get("message")) for e in loser.events) + " " + loser.stderr
    assert holder in said, f"{what}: the refusal does not name the holder: {said}"
    assert not [e for e in loser.events if e["event"] != "error"], f"{what}: {loser.events}"
    assert proxy.requests() == [], f"{what}: the refused process sent {proxy.requests()}"


def _first_to_exit(runs: list[LiveRun], timeout: float, what: str) -> LiveRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for r in runs:
            if r.proc.poll() is not None:
                r.wait(10)  # its output read to the end
                return r
        time.sleep(0.05)
    raise AssertionError(
        f"{what}: no process was refused within {timeout:g} s: both got past the run's lock "
        f"(each waits at its proxy's held PUT): {[r.events[-2:] for r in runs]}"
    )


def _finish(race: Race, winners: list[tuple[int, LiveRun]]) -> None:
    for n, winner in winners:
        what = f"try {n}"
        assert winner.wait(BOUND) == 0, f"{what}: exit {winner.proc.returncode}\n{winner.stderr}"
        race.check_completed(n, what)


def test_two_resumes_at_once(race: Race) -> None:
    made = race.interrupted_runs("two resumes")
    winners: list[tuple[int, LiveRun]] = []
    for n in range(TRIES):
        what = f"try {n} (run {made[n]['run_id']})"
        # Each holds its part PUTs: whichever wins the lock is mid-upload until released.
        proxies = [race.proxy(lambda path: True), race.proxy(lambda path: True)]
        runs = [race.start(p, "resume", made[n]["run_id"], *POLL) for p in proxies]
        loser = _first_to_exit(runs, BOUND, what)
        w = 1 - runs.index(loser)
        assert proxies[w].wait_held(1, BOUND), f"{what}: the winner never sent a part"
        _check_refused(loser, proxies[1 - w], runs[w].proc.pid, what)
        proxies[w].release()
        winners.append((n, runs[w]))  # it finishes while the next try starts
    _finish(race, winners)


BATCH = 5  # runs per `run` process in the next race: each held no longer than a few seconds


def test_resume_while_its_run_uploads(race: Race) -> None:
    rng = random.Random("resume during run")
    hold_part = {n: rng.randint(0, PARTS - 1) for n in range(TRIES)}  # k parts in S3 first
    for first in range(0, TRIES, BATCH):
        tries = range(first, first + BATCH)
        run, run_proxy = race.run_held(tries, hold_part)
        # The batch's resumes side by side, so the run's PUTs are held only seconds.
        resumes = {}
        for n in tries:
            resume_proxy = race.proxy(lambda path: True)  # past the lock, it would stop here
            resumes[n] = (
                resume_proxy,
                race.start(resume_proxy, "resume", race.record(n)["run_id"], *POLL),
            )
        for n, (resume_proxy, resume) in resumes.items():
            what = f"try {n} (run {race.record(n)['run_id']}, held at part {hold_part[n]})"
            assert resume.wait(BOUND) is not None, f"{what}: the resume was not refused"
            assert run.proc.poll() is None, f"{what}: the run stopped: {run.stderr}"
            _check_refused(resume, resume_proxy, run.proc.pid, what)
        run_proxy.release()
        assert run.wait(BOUND) == 0, f"tries {tries}: {run.stderr}"
        for n in tries:
            race.check_completed(n, f"try {n}")


def test_cleanup_while_a_resume_uploads(race: Race) -> None:
    made = race.interrupted_runs("cleanup during resume")
    winners: list[tuple[int, LiveRun]] = []
    for n in range(TRIES):
        run_id = made[n]["run_id"]
        what = f"try {n} (run {run_id})"
        resume_proxy = race.proxy(lambda path: True)
        resume = race.start(resume_proxy, "resume", run_id, *POLL)
        assert resume_proxy.wait_held(1, BOUND), f"{what}: the resume never sent a part"
        listing = race.s3.list_objects_v2(Bucket=race.bucket, Prefix=f"imports/{run_id}/")
        before = sorted(o["Key"] for o in listing.get("Contents", []))
        cleanup_proxy = race.proxy()
        cleanup = race.start(cleanup_proxy, "cleanup", run_id)
        assert cleanup.wait(BOUND) is not None, f"{what}: the cleanup hung"
        _check_refused(cleanup, cleanup_proxy, resume.proc.pid, what)
        listing = race.s3.list_objects_v2(Bucket=race.bucket, Prefix=f"imports/{run_id}/")
        after = sorted(o["Key"] for o in listing.get("Contents", []))
        assert after == before and before, f"{what}: the refused cleanup changed {before}"
        assert resume.proc.poll() is None, f"{what}: the resume stopped: {resume.stderr}"
        resume_proxy.release()
        winners.append((n, resume))
    _finish(race, winners)
