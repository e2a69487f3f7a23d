"""Upload throughput and peak memory: ours vs boto3's `upload_file`, same endpoint, same run.

    python -m tests.benchmarks.bench_upload            # 512 MiB
    python -m tests.benchmarks.bench_upload --full     # 512 MiB and 2 GiB (RSS flatness)

The sandbox (moto behind our middleware, with keep-alive connections as S3 has) runs in its
own process (its CPU and memory are not ours). Each upload runs in
a fresh child process that reports its wall time and peak RSS (VmHWM), so the figures are
of that upload alone. Targets (issue 3): our throughput >= 1.0x upload_file's; our peak RSS
<= 200 MiB and flat from 512 MiB to 2 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MIB = 1 << 20
ROOT = Path(__file__).resolve().parents[2]
CREDS = {"AWS_ACCESS_KEY_ID": "AKIABENCHBENCH000000", "AWS_SECRET_ACCESS_KEY": "bench"}


def make_image(path: Path, size: int) -> Path:
    """Sparse-ish: 1 MiB random blocks with 1 MiB holes between them (half the bytes real)."""
    block = os.urandom(MIB)
    with path.open("wb") as fh:
        fh.truncate(size)
        for offset in range(0, size, 2 * MIB):
            fh.seek(offset)
            # Vary the block cheaply so parts do not all hash alike.
            fh.write(offset.to_bytes(8, "little") + block[8:])
    return path


def start_sandbox() -> tuple[subprocess.Popen[bytes], str]:
    """The sandbox's server (moto behind our middleware) in its own process. Not a bare
    ThreadedMotoServer: werkzeug's server there answers `Connection: close` to every request,
    so each client would pay a TCP handshake per part, as S3 never makes it pay; the sandbox
    keeps connections alive (tui/sandbox/keepalive.py)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", "sandbox", "--port", "0"],
        cwd=ROOT,
        # The sandbox checks signatures: it must know the pair the benchmark signs with.
        env={
            **os.environ,
            "EC2_IMPORT_WIZARD_SANDBOX_CREDENTIALS": (
                f"{CREDS['AWS_ACCESS_KEY_ID']}:{CREDS['AWS_SECRET_ACCESS_KEY']}"
            ),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if not line.startswith("endpoint: "):
        proc.kill()
        raise RuntimeError(f"the sandbox did not start: {line!r}")
    return proc, line.split(" ", 1)[1].strip()


def _client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session(
        region_name="us-east-1",
        aws_access_key_id=CREDS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDS["AWS_SECRET_ACCESS_KEY"],
    ).client(
        "s3",
        endpoint_url=endpoint,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def child(kind: str, endpoint: str, image: str, bucket: str) -> None:
    """Run one upload in this (fresh) process; print {seconds, bytes, rss_mib}."""
    s3 = _client(endpoint)
    size = os.path.getsize(image)
    started = time.perf_counter()
    if kind == "ours":
        from tui.core.upload import upload_image

        upload_image(s3, image, bucket, "bench", "run", file_format="RAW", volume_size=1)
    else:
        # boto3's managed transfer with its defaults (multipart, 8 MiB chunks, 10 threads).
        s3.upload_file(image, bucket, "bench/" + os.path.basename(image))
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "bytes": size, "rss_mib": peak_rss_kib() / 1024}))


def peak_rss_kib() -> int:
    """This process's own peak RSS. Not ru_maxrss: Linux carries that over fork and exec, so a
    child would report at least its parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _run_child(kind: str, endpoint: str, image: Path, bucket: str) -> dict[str, float]:
    s3 = _client(endpoint)
    s3.create_bucket(Bucket=bucket)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.benchmarks.bench_upload",
            "--child",
            kind,
            endpoint,
            str(image),
            bucket,
        ],
        cwd=ROOT,
        capture_output=True,
        check=True,
        env={**os.environ, **CREDS},
    )
    result: dict[str, float] = json.loads(out.stdout.decode().strip().splitlines()[-1])
    # Empty the bucket so the sandbox does not hold every run's bytes.
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    return result


def measure(endpoint: str, image: Path, rounds: int) -> dict[str, Any]:
    """Alternate peer and ours `rounds` times; keep each one's best throughput."""
    best: dict[str, dict[str, float]] = {}
    for r in range(rounds):
        for kind in ("peer", "ours") if r % 2 == 0 else ("ours", "peer"):
            res = _run_child(kind, endpoint, image, f"bench-{kind}-{r}-{os.getpid()}")
            mib_s = res["bytes"] / MIB / res["seconds"]
            prev = best.get(kind)
            if prev is None or mib_s > prev["mib_s"]:
                best[kind] = {**res, "mib_s": mib_s}
            print(
                f"  {image.stat().st_size // MIB} MiB {kind:4}: {mib_s:7.1f} MiB/s  "
                f"{res['seconds']:6.2f} s  peak RSS {res['rss_mib']:6.1f} MiB",
                file=sys.stderr,
            )
    return best


def run(quick: bool = True) -> list[dict[str, Any]]:
    sizes = [512 * MIB] if quick else [512 * MIB, 2048 * MIB]
    rounds = 1 if quick else 2
    results: list[dict[str, Any]] = []
    proc, endpoint = start_sandbox()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
            rss: dict[int, float] = {}
            for size in sizes:
                image = make_image(Path(tmp) / f"disk-{size // MIB}.raw", size)
                best = measure(endpoint, image, rounds)
                label = f"{size // MIB} MiB"
                results.append(
                    {
                        "name": f"upload throughput {label} (vs boto3 upload_file)",
                        "ours": round(best["ours"]["mib_s"], 1),
                        "peer": round(best["peer"]["mib_s"], 1),
                        "ratio": round(best["ours"]["mib_s"] / best["peer"]["mib_s"], 2),
                        "target": ">= 1.0x",
                        "unit": "MiB/s",
                    }
                )
                rss[size] = best["ours"]["rss_mib"]
                results.append(
                    {
                        "name": f"upload peak RSS {label} (vs boto3 upload_file)",
                        "ours": round(best["ours"]["rss_mib"], 1),
                        "peer": round(best["peer"]["rss_mib"], 1),
                        "ratio": round(best["ours"]["rss_mib"] / best["peer"]["rss_mib"], 2),
                        "target": "<= 200 MiB",
                        "unit": "MiB",
                    }
                )
                image.unlink()
            if len(rss) == 2:
                small, big = (rss[s] for s in sizes)
                results.append(
                    {
                        "name": "upload peak RSS growth 512 MiB -> 2 GiB",
                        "ours": round(big - small, 1),
                        "peer": None,
                        "ratio": round(big / small, 2),
                        "target": "flat (< 10% growth)",
                        "unit": "MiB",
                        "met": big < small * 1.10,
                    }
                )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(*argv[1:5])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="also 2 GiB, two rounds each")
    args = parser.parse_args(argv)
    for row in run(quick=not args.full):
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
