"""Uploads over a modelled WAN, requests per part, and per-part bookkeeping at scale (issue 13).

    python -m tests.benchmarks --only wan            # 1 GiB, two rounds (a few minutes more)
    python -m tests.benchmarks --only wan --quick    # 256 MiB, one round, smaller tables
    python -m tests.benchmarks.bench_wan --rtt 0 --sections wan --sandbox-root DIR
        # the same against another checkout's sandbox (e.g. before a server change)

Everything runs against the sandbox (`python -m tui sandbox`, its own process), reached
through tests/helpers/netproxy.py with each way delayed by RTT/2 (this kernel has no netem).

- wan: 1 GiB of random data at 0, 20 and 80 ms RTT, defaults only, each upload in a fresh child
  process (wan_child.py) reporting wall time, CPU (user+sys, from wait4) and peak RSS (VmHWM,
  read by the child itself). Peers in the same run: boto3 `upload_file` (default
  TransferConfig), `aws s3 cp` and a raw 16-thread `put_object` loop of 10 MiB objects (the
  ceiling); ours is the `upload` command, as users run it. Each kind keeps its best of the
  rounds, run in alternating order.
- requests: HTTP requests per part through tests/helpers/proxy.py's recording proxy, for a new
  `upload` and for `resume` of that fully uploaded run (the sandbox's own reads of the parts,
  EC2's side, are told apart by their process and left out).
- scaling: ms per part at 1k / 4k / 16k parts for presigning, one journal save, the manifest's
  XML and the presigned-URL verification (against the sandbox, no delay), and the resume
  decision with every part present vs one ListObjectsV2 scan of the run's prefix. The calls
  into tui.core are the small `adapter_*` functions below, one per figure, so a changed
  signature is fixed in one place.

`aws s3 cp` comes from awscli installed on demand (pip, the registry) into a venv of its own,
$BENCH_AWSCLI_VENV or ~/.cache/ec2-import-wizard-bench/awscli; it is not a dependency of the
project or its tests. Without it the `aws s3 cp` rows say so.

Figures are ratios against peers of the same run on the same machine; the proxy, the sandbox
and the client share the machine's cores, as they do in the issue's figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from tests.benchmarks import targets

MIB = 1 << 20
GIB = 1 << 30
ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("wan_child.py")
REGION = "us-east-1"
CREDS = {"AWS_ACCESS_KEY_ID": "AKIABENCHBENCH000000", "AWS_SECRET_ACCESS_KEY": "bench"}
# The sandbox checks signatures: it must know the pair the benchmark signs with.
SANDBOX_KNOWS = {
    "EC2_IMPORT_WIZARD_SANDBOX_CREDENTIALS": f"{CREDS['AWS_ACCESS_KEY_ID']}:{CREDS['AWS_SECRET_ACCESS_KEY']}"
}
KINDS = ("upload_file", "aws", "ceiling", "ours")
AWSCLI_VENV = Path(
    os.environ.get("BENCH_AWSCLI_VENV")
    or Path.home() / ".cache" / "ec2-import-wizard-bench" / "awscli"
)


def log(text: str) -> None:
    print("  " + text, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# The sandbox, the peers' tools, the children


@dataclass
class Sandbox:
    endpoint: str
    proc: subprocess.Popen[str]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def sandbox(root: Path = ROOT, rate: int = GIB) -> Iterator[Sandbox]:
    """`python -m tui sandbox` from `root` (another checkout: its server), converting fast so a
    resumed run's watch ends soon."""
    env = {**os.environ, "PYTHONPATH": str(root), **SANDBOX_KNOWS}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", "sandbox", "--port", "0", "--rate", str(rate)],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("endpoint: "):
        proc.kill()
        raise RuntimeError(f"the sandbox did not start: {line!r}")
    sb = Sandbox(line.split(" ", 1)[1].strip(), proc)
    try:
        yield sb
    finally:
        sb.stop()


def awscli_python() -> str | None:
    """The interpreter of the awscli venv, made on first use (a pip install from the registry)."""
    py = AWSCLI_VENV / "bin" / "python"
    check = [str(py), "-c", "import awscli.clidriver"]
    if py.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return str(py)
    log(f"installing awscli into {AWSCLI_VENV} (once) ...")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(AWSCLI_VENV)], check=True)
        subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "awscli"],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        log(f"awscli could not be installed ({exc}); the aws s3 cp rows are left out")
        return None
    return str(py) if subprocess.run(check, capture_output=True).returncode == 0 else None


def child_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        CREDS,
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=str(home / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        EC2_IMPORT_WIZARD_HOME=str(home),
        PYTHONPATH=str(ROOT),
    )
    return env


def run_child(python: str, kind: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """One child (wan_child.py): {seconds, cpu_s, rss_mib, rchar, rc}."""
    with tempfile.TemporaryDirectory(prefix="bench-wan-child-") as tmp:
        result, errors = Path(tmp) / "result.json", Path(tmp) / "stderr"
        with errors.open("wb") as err:
            started = time.perf_counter()
            proc = subprocess.Popen(
                [python, str(CHILD), str(result), kind, *args],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - started
            proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0 or not result.exists():
            tail = errors.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{kind} {' '.join(args[:3])} failed ({proc.returncode}): {tail}")
        report = json.loads(result.read_text())
    return {
        "seconds": seconds,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "rss_mib": report["rss_kib"] / 1024,
        "rchar": report["rchar"],
    }


def make_random(path: Path, size: int) -> Path:
    with path.open("wb") as fh:
        for offset in range(0, size, 16 * MIB):
            fh.write(os.urandom(min(16 * MIB, size - offset)))
    return path


def write_profile(folder: Path, image: Path, bucket: str) -> Path:
    import tomli_w

    data = {
        "name": "bench",
        "aws": {"region": REGION},
        # The WAN figures are of the upload as it is: no conversion of the RAW (bench_convert).
        "source": {
            "path": str(image),
            "bucket": bucket,
            "key_prefix": "imports",
            "convert": "never",
        },
        "request": {
            "Platform": "Windows",
            "Description": "bench",
            "LaunchSpecification": {
                "Architecture": "x86_64",
                "InstanceType": "m5.large",
                "Placement": {"AvailabilityZone": f"{REGION}a"},
            },
        },
    }
    path = folder / f"bench-{bucket}.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def s3_direct(endpoint: str, pool: int = 16) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session(
        region_name=REGION,
        aws_access_key_id=CREDS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDS["AWS_SECRET_ACCESS_KEY"],
    ).client(
        "s3",
        endpoint_url=endpoint,
        config=Config(
            signature_version="s3v4", s3={"addressing_style": "path"}, max_pool_connections=pool
        ),
    )


def empty_bucket(s3: Any, bucket: str) -> None:
    """So the sandbox does not hold every run's bytes."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


# ---------------------------------------------------------------------------------------------
# wan: throughput, CPU and memory at 0, 20, 80 ms


def upload_once(
    kind: str, proxy_url: str, image: Path, bucket: str, home: Path, aws_py: str | None
) -> dict[str, Any]:
    env = child_env(home)
    if kind == "aws":
        assert aws_py is not None
        dest = f"s3://{bucket}/aws/{image.name}"
        # --only-show-errors: no progress lines to draw (a terminal's cost, not the transfer's)
        args = ["--endpoint-url", proxy_url, "s3", "cp", str(image), dest, "--only-show-errors"]
        return run_child(aws_py, "aws", args, env)
    if kind == "ours":
        profile = write_profile(home, image, bucket)
        return run_child(
            sys.executable, "ours", ["--endpoint-url", proxy_url, "upload", str(profile)], env
        )
    return run_child(sys.executable, kind, [proxy_url, str(image), bucket], env)


def measure_wan(
    endpoint: str, size: int, rtts: list[int], rounds: int, kinds: tuple[str, ...] = KINDS
) -> dict[int, dict[str, dict[str, Any]]]:
    """Best (shortest) run of each kind at each RTT: {rtt: {kind: result}}."""
    from tests.helpers.netproxy import NetProxy

    aws_py = awscli_python() if "aws" in kinds else None
    kinds = tuple(k for k in kinds if k != "aws" or aws_py)
    s3 = s3_direct(endpoint)
    best: dict[int, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-wan-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        image = make_random(Path(tmp) / "disk.raw", size)
        with NetProxy(endpoint, lifetime=3600) as proxy:
            for rtt in rtts:
                proxy.delay(up=rtt / 2000, down=rtt / 2000)
                for r in range(rounds):
                    order = kinds if r % 2 == 0 else kinds[::-1]
                    for kind in order:
                        bucket = f"wan-{kind.replace('_', '-')}-{rtt}-{r}"
                        s3.create_bucket(Bucket=bucket)
                        before = proxy.stats().connections
                        res = upload_once(kind, proxy.url, image, bucket, home, aws_py)
                        res["connections"] = proxy.stats().connections - before
                        res["mib_s"] = size / MIB / res["seconds"]
                        empty_bucket(s3, bucket)
                        s3.delete_bucket(Bucket=bucket)
                        log(
                            f"{rtt:3d} ms {kind:11}: {res['mib_s']:7.1f} MiB/s "
                            f"{res['seconds']:6.2f} s  CPU {res['cpu_s']:5.2f} s  "
                            f"RSS {res['rss_mib']:6.1f} MiB  {res['connections']} connections"
                        )
                        prev = best.setdefault(rtt, {}).get(kind)
                        if prev is None or res["seconds"] < prev["seconds"]:
                            best[rtt][kind] = res
    return best


def wan_rows(best: dict[int, dict[str, dict[str, Any]]], size: int) -> list[dict[str, Any]]:
    label = f"{size // MIB} MiB" if size < GIB else f"{size / GIB:g} GiB"
    peers = {"upload_file": "boto3 upload_file", "aws": "aws s3 cp", "ceiling": "ceiling"}
    rows: list[dict[str, Any]] = []
    for rtt, res in best.items():
        ours = res["ours"]
        for kind, name in peers.items():
            peer = res.get(kind)
            target = targets.wan_throughput(kind, rtt)
            if peer is None:
                rows.append({"name": f"WAN {rtt} ms, {label}: vs {name} (not run)",
                             "target": target})  # fmt: skip
                continue
            rows.append(
                {
                    "name": f"WAN {rtt} ms RTT, {label}, throughput (vs {name})",
                    "ours": round(ours["mib_s"], 1),
                    "peer": round(peer["mib_s"], 1),
                    "ratio": round(ours["mib_s"] / peer["mib_s"], 2),
                    "target": target,
                    "unit": "MiB/s",
                }
            )
        rows.append(
            {
                "name": f"WAN {rtt} ms RTT, {label}, peak RSS (vs boto3 upload_file)",
                "ours": round(ours["rss_mib"], 1),
                "peer": round(res["upload_file"]["rss_mib"], 1),
                "ratio": round(ours["rss_mib"] / res["upload_file"]["rss_mib"], 2),
                "target": targets.WAN_PEAK_RSS,
                "unit": "MiB",
            }
        )
    if 0 in best:
        ours, peer = best[0]["ours"], best[0]["upload_file"]
        per = size / GIB
        rows.append(
            {
                "name": "client CPU per GiB, 0 ms (vs boto3 upload_file)",
                "ours": round(ours["cpu_s"] / per, 2),
                "peer": round(peer["cpu_s"] / per, 2),
                "ratio": round(ours["cpu_s"] / peer["cpu_s"], 2),
                "target": targets.WAN_CPU_PER_GIB,
                "unit": "s",
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------
# requests: per part, new run and resume of an uploaded run


def tag_requests(proxy: Any, sandbox_pid: int) -> list[tuple[str, str, bool]]:
    """Make `proxy` (a FaultyProxy) also log (method, path, from the sandbox) per request: the
    sandbox reading the parts through their presigned URLs is EC2's side, not the client's."""
    from tests.helpers.netproxy import _opened_by

    seen: list[tuple[str, str, bool]] = []
    base = proxy.server.RequestHandlerClass
    pids = frozenset({sandbox_pid})

    class Tagged(base):  # type: ignore[misc, valid-type]
        def _tagged(self) -> None:
            if not hasattr(self, "from_sandbox"):  # one handler per connection
                self.from_sandbox = _opened_by(self.client_address, pids)
            seen.append((self.command, self.path.split("?", 1)[0], self.from_sandbox))
            base._handle(self)

        do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _tagged

    proxy.server.RequestHandlerClass = Tagged
    return seen


def measure_requests(sb: Sandbox, size: int) -> list[dict[str, Any]]:
    from tests.helpers.proxy import FaultyProxy

    s3 = s3_direct(sb.endpoint)
    bucket = "wan-requests"
    s3.create_bucket(Bucket=bucket)
    proxy = FaultyProxy(sb.endpoint)
    seen = tag_requests(proxy, sb.proc.pid)
    rows: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-wan-req-") as tmp:
            home = Path(tmp) / "home"
            home.mkdir()
            image = make_random(Path(tmp) / "disk.raw", size)
            parts = -(-size // (10 * MIB))  # the default part size
            env = child_env(home)
            profile = write_profile(home, image, bucket)

            def count(args: list[str]) -> tuple[dict[str, int], int, dict[str, Any]]:
                del seen[:]
                res = run_child(sys.executable, "ours", ["--endpoint-url", proxy.url, *args], env)
                s3_calls: dict[str, int] = {}
                ec2 = 0
                for method, path, from_sandbox in seen:
                    if from_sandbox:
                        continue
                    if path.startswith(f"/{bucket}"):
                        s3_calls[method] = s3_calls.get(method, 0) + 1
                    else:
                        ec2 += 1
                return s3_calls, ec2, res

            new, _, res_new = count(["upload", str(profile)])
            run_id = next(p.stem for p in (home / "runs").glob("*.json"))
            again, ec2, res_resume = count(["resume", run_id, "--poll", "0.2"])
            pages = -(-parts // 1000)  # ListObjectsV2 pages of the run's prefix
            for label, calls, res in (
                ("new run", new, res_new),
                ("resume of an uploaded run", again, res_resume),
            ):
                total = sum(calls.values())
                detail = ", ".join(f"{n} {m}" for m, n in sorted(calls.items()))
                log(
                    f"{label}: {total} S3 requests for {parts} parts ({detail}); "
                    f"{res['rchar'] / MIB:.0f} MiB read by the client (image {size // MIB} MiB)"
                )
                if label == "new run":
                    row = {
                        "name": f"S3 requests per part, new run ({parts} parts: {detail})",
                        "ours": round(total / parts, 2),
                        "target": targets.REQUESTS_NEW,
                    }
                else:  # the bound is on the whole resume: 1 + the listing's pages
                    row = {
                        "name": f"S3 requests, resume of an uploaded run ({parts} parts: "
                        f"{detail}; {ec2} EC2 requests to submit and watch)",
                        "ours": total,
                        "target": targets.requests_resume(pages),
                    }
                rows.append(row)  # fmt: skip
                # rchar counts every file the process read (its modules too, ~12 MiB): a
                # resume that re-reads the image shows it as the image's size on top.
                rows.append(
                    {
                        "name": f"MiB read by the client, {label} (vs the image)",
                        "ours": round(res["rchar"] / MIB, 1),
                        "peer": size // MIB,
                        "ratio": round(res["rchar"] / size, 2),
                        "unit": "MiB",
                    }
                )
            log(f"resume: {ec2} EC2 requests (submit and watch)")
    finally:
        proxy.close()
        empty_bucket(s3, bucket)
    return rows


# ---------------------------------------------------------------------------------------------
# scaling: the adapters (one per figure; fix a changed signature here), then the table


def adapter_client(endpoint: str) -> Any:
    from tui.core import aws

    os.environ.update(CREDS)
    return aws.client(aws.Target(region=REGION, endpoint_url=endpoint), "s3")


def adapter_presign(s3: Any, bucket: str, keys: list[str]) -> None:
    """The three URLs per part that the manifest lists, as upload_image makes them."""
    from tui.core.upload.presign import Presigner

    presign = Presigner(s3, bucket, 7 * 86400)
    for key in keys:
        presign("head_object", key)
        presign("get_object", key)
        presign("delete_object", key)


def adapter_journal_record(parts: int, part_size: int) -> tuple[Any, Any]:
    """(journal, record) with every one of `parts` parts done, in a temporary folder."""
    from tui.core.journal import Journal, RunRecord

    root = Path(tempfile.mkdtemp(prefix="bench-wan-journal-"))
    record = RunRecord(
        run_id=str(uuid.uuid4()),
        profile_name="bench",
        profile={"name": "bench", "source": {"key_prefix": "imports"}},
        profile_origin=None,
        region=REGION,
        image_path="/bench/disk.raw",
        image_bytes=parts * part_size,
        bucket="bench",
        part_size=part_size,
        parts_total=parts,
        parts_done=list(range(parts)),
    )
    return Journal(root), record


def adapter_journal_save(journal: Any, record: Any) -> None:
    journal.save(record)


def adapter_manifest(parts: int, part_size: int, url: Callable[[int], str]) -> Any:
    from tui.core.manifest import Manifest, ManifestPart, plan_parts

    return Manifest(
        file_format="RAW",
        size=parts * part_size,
        volume_size=max(1, parts * part_size // GIB + 1),
        parts=[
            ManifestPart(
                index=i,
                start=s,
                end=e,
                key=f"imports/run/disk.raw.part{i}",
                head_url=url(i),
                get_url=url(i),
                delete_url=url(i),
            )
            for i, (s, e) in enumerate(plan_parts(parts * part_size, part_size))
        ],
        self_destruct_url=url(-1),
    )


def adapter_manifest_xml(manifest: Any) -> bytes:
    return bytes(manifest.to_xml())


def adapter_verify(manifest: Any, manifest_url: str, body: bytes) -> None:
    """Every part's presigned HEAD and the manifest's GET, as the uploader checks them (here
    all at the end, `DEFAULT_WORKERS` at a time; the uploader does it as parts are stored)."""
    from concurrent.futures import ThreadPoolExecutor

    from tui.core.facts import DEFAULT_WORKERS
    from tui.core.upload.presign import UrlChecker

    checker = UrlChecker(DEFAULT_WORKERS, threading.Event())
    try:
        with ThreadPoolExecutor(DEFAULT_WORKERS) as pool:
            list(pool.map(lambda p: checker.head_part(p.index, p.head_url, p.size), manifest.parts))
        checker.get_manifest(manifest_url, body)
    finally:
        checker.close()


def adapter_resume_decision(
    s3: Any, bucket: str, folder: str, keys: list[str], sizes: list[int], known: dict[int, str]
) -> int:
    """What a resume does, with every part in S3, before it sends anything: one listing of
    the run's folder, each part the journal confirmed (`known`: index -> MD5) checked against
    it by size and ETag; no part read from disk. The parts it would send (0 here)."""
    import threading

    from tui.core.upload.parts import Listed, list_folder

    objects = list_folder(s3, bucket, folder, threading.Event())
    return sum(
        1 for i, key in enumerate(keys) if objects.get(key) != Listed(sizes[i], known.get(i, ""))
    )


def adapter_list_prefix(s3: Any, bucket: str, prefix: str) -> int:
    """The peer: one ListObjectsV2 scan of the run's prefix; its page count."""
    pages = 0
    for _ in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        pages += 1
    return pages


def timed(fn: Callable[[], Any], repeat: int = 1) -> float:
    """Best of `repeat` runs, seconds."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def flat_row(what: str, per_part: dict[int, float], target: str) -> dict[str, Any]:
    counts = sorted(per_part)
    small, big = per_part[counts[0]], per_part[counts[-1]]
    steps = " / ".join(f"{per_part[n]:.3g}" for n in counts)
    labels = "/".join(f"{n // 1024}k" for n in counts)
    return {
        "name": f"{what}, ms per part at {labels} parts ({steps})",
        "ours": round(big, 4),
        "peer": round(small, 4),
        "ratio": round(big / small, 2),
        "target": target,
        "unit": "ms",
    }


def populate(s3: Any, bucket: str, keys: list[str], part_size: int) -> None:
    body = bytes(part_size)  # the sparse image's parts: zeros
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=body), keys))


def measure_scaling(sb: Sandbox, counts: list[int], present: int) -> list[dict[str, Any]]:
    """`counts`: the table's part counts; `present`: parts put in S3 for verify and resume."""
    from tui.core import s3keys

    rows: list[dict[str, Any]] = []
    s3 = adapter_client(sb.endpoint)
    bucket = "wan-scaling"
    s3_direct(sb.endpoint).create_bucket(Bucket=bucket)

    adapter_presign(s3, bucket, [f"warm/{i}" for i in range(200)])  # botocore's first-call loads
    presign_ms = {}
    for n in counts:
        keys = [f"imports/run/disk.raw.part{i}" for i in range(n)]
        presign_ms[n] = timed(partial(adapter_presign, s3, bucket, keys)) * 1000 / n
    rows.append(flat_row("presign (3 URLs)", presign_ms, targets.FLAT))

    journal_ms = {}
    for n in counts:
        journal, record = adapter_journal_record(n, MIB)
        journal_ms[n] = timed(partial(adapter_journal_save, journal, record), 5) * 1e3 / n
        shutil.rmtree(journal.root, ignore_errors=True)
    # One save's fixed cost (write, rename) dominates at 1k: the per-save times say how it grows.
    saves = " / ".join(f"{journal_ms[n] * n:.3g}" for n in counts)
    rows.append(flat_row(f"journal save, all parts done ({saves} ms a save)", journal_ms,
                         targets.FLAT))  # fmt: skip

    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "x" * 60}, ExpiresIn=7 * 86400
    )
    xml_ms = {}
    for n in counts:
        manifest = adapter_manifest(n, MIB, lambda i: url)
        xml_ms[n] = timed(partial(adapter_manifest_xml, manifest), 3) * 1000 / n
    rows.append(flat_row("manifest XML", xml_ms, targets.FLAT))

    # Verify and resume need the parts in S3: small ones (64 KiB, a HEAD carries no body).
    part_size = 64 * 1024
    run_id = str(uuid.uuid4())
    with tempfile.TemporaryDirectory(prefix="bench-wan-scale-") as tmp:
        image = Path(tmp) / "disk.raw"
        with image.open("wb") as fh:
            fh.truncate(present * part_size)
        keys = [s3keys.part_key("imports", run_id, str(image), i) for i in range(present)]
        t0 = time.perf_counter()
        populate(s3_direct(sb.endpoint), bucket, keys, part_size)
        log(f"put {present} parts in {time.perf_counter() - t0:.0f} s")
        presign = s3.generate_presigned_url
        verify_ms = {}
        for n in [c for c in counts if c <= present]:
            manifest = adapter_manifest(
                n,
                part_size,
                lambda i: presign(
                    "head_object",
                    Params={"Bucket": bucket, "Key": keys[max(i, 0)]},
                    ExpiresIn=3600,
                ),
            )
            body = adapter_manifest_xml(manifest)
            s3.put_object(Bucket=bucket, Key=f"manifests/{n}.xml", Body=body)
            murl = presign(
                "get_object",
                Params={"Bucket": bucket, "Key": f"manifests/{n}.xml"},
                ExpiresIn=3600,
            )
            verify_ms[n] = timed(partial(adapter_verify, manifest, murl, body))
            verify_ms[n] *= 1000 / n
            log(f"verify {n} parts: {verify_ms[n]:.2f} ms per part")
        if len(verify_ms) > 1:
            rows.append(flat_row("verify presigned URLs (sandbox, 0 ms)", verify_ms, targets.FLAT))

        prefix = s3keys.run_folder("imports", run_id)
        pages = 0

        def scan() -> None:
            nonlocal pages
            pages = adapter_list_prefix(s3, bucket, prefix)

        listing = timed(scan)
        # What the journal holds: each confirmed part's MD5 (S3's ETag of a single PUT).
        listed = {
            o["Key"]: o
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])
        }
        known = {i: str(listed[k]["ETag"]).strip('"') for i, k in enumerate(keys) if k in listed}
        sizes = [int(listed[k]["Size"]) if k in listed else -1 for k in keys]
        sent = [0]
        decision = timed(
            lambda: sent.__setitem__(
                0, adapter_resume_decision(s3, bucket, prefix, keys, sizes, known)
            )
        )
        log(
            f"resume decision {present} parts: {decision:.1f} s (would send {sent[0]}); "
            f"ListObjectsV2 {listing:.1f} s, {pages} pages"
        )
        rows.append(
            {
                "name": f"resume decision, {present:,} parts present (vs one ListObjectsV2 "
                f"scan, {pages} pages)",
                "ours": round(decision, 2),
                "peer": round(listing, 2),
                "ratio": round(decision / listing, 2),
                "target": targets.RESUME_DECISION,
                "unit": "s",
            }
        )
    empty_bucket(s3_direct(sb.endpoint), bucket)
    return rows


# ---------------------------------------------------------------------------------------------


SECTIONS = ("wan", "requests", "scaling")


def run(
    quick: bool = True,
    *,
    sections: tuple[str, ...] = SECTIONS,
    rtts: list[int] | None = None,
    size: int | None = None,
    sandbox_root: Path = ROOT,
    kinds: tuple[str, ...] = KINDS,
) -> list[dict[str, Any]]:
    size = size or (256 * MIB if quick else GIB)
    rtts = rtts if rtts is not None else [0, 20, 80]
    rows: list[dict[str, Any]] = []
    with sandbox(sandbox_root) as sb:
        if "wan" in sections:
            best = measure_wan(sb.endpoint, size, rtts, 1 if quick else 2, kinds)
            if all("ours" in b and "upload_file" in b for b in best.values()):
                rows.extend(wan_rows(best, size))
        if "requests" in sections:
            rows.extend(measure_requests(sb, 64 * MIB if quick else 256 * MIB))
        if "scaling" in sections:
            counts = [1024, 4096, 16384]
            rows.extend(measure_scaling(sb, counts, 4096 if quick else 16384))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="256 MiB, one round, 4k parts")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--rtt", nargs="+", type=int, help="round-trip times in ms (0 20 80)")
    parser.add_argument("--size", type=int, help="MiB to upload (1024; --quick 256)")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument(
        "--sandbox-root", type=Path, default=ROOT, help="serve the sandbox from this checkout"
    )
    args = parser.parse_args(argv)
    from tests.benchmarks.__main__ import table

    rows = run(
        args.quick,
        sections=tuple(args.sections),
        rtts=args.rtt,
        size=args.size * MIB if args.size else None,
        sandbox_root=args.sandbox_root.resolve(),
        kinds=tuple(args.kinds),
    )
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
