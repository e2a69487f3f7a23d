"""Fewest bytes on the wire (issue 15): a RAW image holding a little random data in a few
extents, uploaded with `convert = "auto"` (qemu-img makes a stream-optimized VMDK first) and with
`convert = "never"` (sent as it is), through tests/helpers/netproxy.py capped at 100 Mbit/s to
the sandbox, each a fresh `upload` process with a home of its own (no cached conversion).

    python -m tests.benchmarks --only convert            # 1 GiB RAW, 128 MiB of data
    python -m tests.benchmarks --only convert --quick    # 256 MiB RAW, 32 MiB of data

Figures, each against its peer of the same run: bytes sent with auto vs the size of qemu-img's
own stream-optimized conversion of the same file (<= 1.1x; the bytes counted by the proxy, so
they include the HTTP requests and the manifest), wall time of auto (convert + upload) vs never
(<= 0.4x), and our conversion (qemu-img with progress read, as the run does it) vs
`qemu-img convert` run alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import tomli_w

MIB = 1 << 20
GIB = 1 << 30
LINK = 100e6 / 8  # 100 Mbit/s in bytes a second
REGION = "us-east-1"


def log(text: str) -> None:
    print(f"[convert] {text}", file=sys.stderr, flush=True)


def make_image(path: Path, size: int, data: int, extents: int = 4) -> Path:
    """`size` bytes, `data` of them random in `extents` runs spread over it, the rest holes."""
    with path.open("wb") as fh:
        fh.truncate(size)
        each = data // extents
        for i in range(extents):
            fh.seek(i * (size // extents) + MIB)
            for _ in range(0, each, 16 * MIB):
                fh.write(os.urandom(min(16 * MIB, each)))
    return path


def qemu_alone(image: Path, out: Path) -> tuple[float, int]:
    started = time.perf_counter()
    subprocess.run(
        ["qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized",
         str(image), str(out)], check=True,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    size = out.stat().st_size
    out.unlink()
    return seconds, size


def upload(proxy_url: str, image: Path, bucket: str, home: Path, convert: str) -> dict[str, Any]:
    from tests.benchmarks.bench_wan import CREDS, child_env

    home.mkdir(parents=True, exist_ok=True)
    profile = home / "bench.toml"
    profile.write_text(
        tomli_w.dumps(
            {
                "name": "bench",
                "aws": {"region": REGION},
                "source": {"path": str(image), "bucket": bucket, "convert": convert},
                "request": {
                    "Platform": "Windows",
                    "LaunchSpecification": {
                        "Architecture": "x86_64",
                        "InstanceType": "m5.large",
                        "Placement": {"AvailabilityZone": f"{REGION}a"},
                    },
                },
            }
        )
    )
    env = child_env(home)
    assert CREDS
    started = time.perf_counter()
    done = subprocess.run(
        # The default 16 parts in flight: each part's read timeout allows for the link's pace.
        [sys.executable, "-m", "tui", "--endpoint-url", proxy_url, "upload", str(profile),
         "--json"], env=env, capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"upload ({convert}) failed: {(done.stdout + done.stderr)[-2000:]}")
    evs = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    converted = next((e for e in evs if e["event"] == "converted"), None)
    uploaded = next(e for e in evs if e["event"] == "uploaded")
    return {
        "seconds": seconds,
        "convert_s": converted["seconds"] if converted else 0.0,
        "image_bytes": uploaded["bytes"],
    }


def run(quick: bool = True) -> list[dict[str, Any]]:
    from tests.benchmarks.bench_wan import empty_bucket, s3_direct, sandbox
    from tests.helpers.netproxy import NetProxy

    size, data = (256 * MIB, 32 * MIB) if quick else (GIB, 128 * MIB)
    label = f"{size // MIB} MiB RAW, {data // MIB} MiB data"
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-convert-") as tmp:
        root = Path(tmp)
        image = make_image(root / "disk.raw", size, data)
        with sandbox() as sb, NetProxy(sb.endpoint, lifetime=3600) as proxy:
            # Beside the sandbox and the proxy, as the run's own conversion is.
            alone_s, qemu_bytes = qemu_alone(image, root / "alone.vmdk")
            log(f"qemu-img alone: {alone_s:.2f} s, {qemu_bytes} bytes")
            proxy.bandwidth(LINK, shared=True)
            s3 = s3_direct(sb.endpoint)
            results = {}
            for mode in ("auto", "never"):
                bucket = f"convert-{mode}"
                s3.create_bucket(Bucket=bucket)
                before = proxy.stats().bytes_up
                res = upload(proxy.url, image, bucket, root / f"home-{mode}", mode)
                res["sent"] = proxy.stats().bytes_up - before
                empty_bucket(s3, bucket)
                log(
                    f"{mode}: {res['seconds']:.1f} s (conversion {res['convert_s']:.1f} s), "
                    f"{res['sent']} bytes sent"
                )
                results[mode] = res
    auto, never = results["auto"], results["never"]
    rows.append(
        {
            "name": f"bytes sent, convert auto, {label} (vs qemu-img's stream VMDK)",
            "ours": round(auto["sent"] / MIB, 1),
            "peer": round(qemu_bytes / MIB, 1),
            "unit": "MiB",
            "ratio": auto["sent"] / qemu_bytes,
            "target": "<= 1.1x",
        }
    )
    rows.append(
        {
            "name": f"wall time at 100 Mbit/s, auto (convert + upload) vs never, {label}",
            "ours": round(auto["seconds"], 1),
            "peer": round(never["seconds"], 1),
            "unit": "s",
            "ratio": auto["seconds"] / never["seconds"],
            "target": "<= 0.4x",
        }
    )
    rows.append(
        {
            "name": f"conversion with progress vs qemu-img convert alone, {label}",
            "ours": round(auto["convert_s"], 2),
            "peer": round(alone_s, 2),
            "unit": "s",
            "ratio": auto["convert_s"] / alone_s if alone_s else None,
            "target": "<= 1.1x",
        }
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    import argparse

    from tests.benchmarks.__main__ import table

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="256 MiB with 32 MiB of data")
    args = parser.parse_args(argv)
    print(table(run(args.quick)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
