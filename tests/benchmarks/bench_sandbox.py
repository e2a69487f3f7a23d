"""Sandbox figures: start-up time and the DescribeConversionTasks round trip.

    python -m tests.benchmarks.bench_sandbox [--quick]

`run(quick)` returns rows `{name, ours, peer, ratio, target, unit}`; `target` is the value
`ours` should stay at or under (same unit). Peers: a bare moto `ThreadedMotoServer` for
start-up, and moto's own DescribeInstances through the same sandbox for the round trip.
Start-up is measured in fresh interpreters, from the first line of the script (imports
included) to the first successful answer, because that is what a user or a test waits for.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import time
from typing import Any

# Start a server, then time one raw HTTP request (no boto3 in the measured process: its import
# would dominate and is the same for both sides). The sandbox checks signatures, so the request
# carries real ones, made by botocore in this process beforehand (`_signed_headers`).
_STARTUP = r"""
import time
t0 = time.perf_counter()
import json, sys, urllib.request
which, service = sys.argv[1], sys.argv[2]
if which == "ours":
    import tui.sandbox
    sb = tui.sandbox.start()
    endpoint = sb.endpoint
else:
    from moto.server import ThreadedMotoServer
    sb = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    sb.start()
    host, port = sb.get_host_and_port()
    endpoint = f"http://{host}:{port}"
headers = json.loads(sys.argv[3])
data = None if service == "s3" else b"Action=DescribeInstances&Version=2016-11-15"
req = urllib.request.Request(endpoint + "/", data=data, headers=headers)
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
with opener.open(req, timeout=60) as resp:
    assert resp.status == 200, resp.status
    resp.read()
print(time.perf_counter() - t0)
sb.stop()
"""


def _signed_headers(service: str) -> dict[str, str]:
    """The headers of a request signed with the sandbox's own pair. Host is left out of the
    signature, so that it holds for whatever port the server gets."""
    from botocore.auth import S3SigV4Auth, SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from tui.core.facts import SANDBOX_CREDENTIALS

    base: Any = S3SigV4Auth if service == "s3" else SigV4Auth

    class HostUnsigned(base):  # type: ignore[misc]
        def headers_to_sign(self, request: Any) -> Any:
            headers = super().headers_to_sign(request)
            del headers["host"]
            return headers

    if service == "s3":
        req = AWSRequest(method="GET", url="http://sandbox/")
    else:
        req = AWSRequest(
            method="POST",
            url="http://sandbox/",
            data=b"Action=DescribeInstances&Version=2016-11-15",
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        )
    HostUnsigned(Credentials(*SANDBOX_CREDENTIALS), service, "us-east-1").add_auth(req)
    return dict(req.headers.items())


def _startup(which: str, service: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _STARTUP, which, service, json.dumps(_signed_headers(service))],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    return float(out.stdout.strip().splitlines()[-1])


def _startup_rows(repeats: int) -> list[dict[str, Any]]:
    rows = []
    for service, action, target in (("s3", "ListBuckets", 1.0), ("ec2", "DescribeInstances", 3.0)):
        ours = statistics.median(_startup("ours", service) for _ in range(repeats))
        peer = statistics.median(_startup("peer", service) for _ in range(repeats))
        rows.append(_row(f"start-up to first {service.upper()} {action}", ours, peer, target, "s"))
    return rows


def _row(name: str, ours: float, peer: float, target: float, unit: str) -> dict[str, Any]:
    return {
        "name": name,
        "ours": round(ours, 4),
        "peer": round(peer, 4),
        "ratio": round(ours / peer, 2) if peer else None,
        "target": f"<= {target:g} {unit}",
        "unit": unit,
    }


def _round_trip_rows(calls: int) -> list[dict[str, Any]]:
    """Through the `sandbox` command in its own process, with three completed imports on it."""
    from tests.helpers.aws import client, spawn_sandbox

    sb = spawn_sandbox("--rate", "1e9")
    try:
        s3, ec2 = client(sb.endpoint, "s3"), client(sb.endpoint, "ec2")
        s3.create_bucket(Bucket="bench")
        image = random.Random(0).randbytes(1 << 20)
        part = "bench/disk.raw.part0"
        s3.put_object(Bucket="bench", Key=part, Body=image)

        def url(method: str, key: str) -> str:
            return str(s3.generate_presigned_url(method, Params={"Bucket": "bench", "Key": key}))

        from tui.core.manifest import Manifest, ManifestPart

        manifest = Manifest(
            file_format="RAW",
            size=len(image),
            volume_size=1,
            parts=[
                ManifestPart(
                    0, 0, len(image) - 1, part, url("head_object", part), url("get_object", part)
                )
            ],
            self_destruct_url=url("delete_object", "bench/disk.rawmanifest.xml"),
        )
        s3.put_object(Bucket="bench", Key="bench/disk.rawmanifest.xml", Body=manifest.to_xml())
        manifest_url = url("get_object", "bench/disk.rawmanifest.xml")
        for _ in range(3):
            ec2.import_instance(
                Platform="Windows",
                DiskImages=[
                    {
                        "Image": {
                            "Format": "RAW",
                            "Bytes": len(image),
                            "ImportManifestUrl": manifest_url,
                        },
                        "Volume": {"Size": 1},
                    }
                ],
            )
        deadline = time.monotonic() + 30
        while any(
            t["State"] != "completed" for t in ec2.describe_conversion_tasks()["ConversionTasks"]
        ):
            assert time.monotonic() < deadline, "imports did not complete"
            time.sleep(0.05)

        def median_ms(call: Any) -> float:
            for _ in range(5):  # warm connections and caches
                call()
            samples = []
            for _ in range(calls):
                t = time.perf_counter()
                call()
                samples.append((time.perf_counter() - t) * 1000)
            return statistics.median(samples)

        ours = median_ms(ec2.describe_conversion_tasks)
        peer = median_ms(ec2.describe_instances)
    finally:
        sb.stop()
    return [_row("DescribeConversionTasks round trip (median)", ours, peer, 10.0, "ms")]


def run(quick: bool = False) -> list[dict[str, Any]]:
    return _startup_rows(1 if quick else 5) + _round_trip_rows(30 if quick else 300)


def main() -> None:
    quick = "--quick" in sys.argv[1:]
    rows = run(quick)
    for r in rows:
        print(
            f"{r['name']:<48} ours {r['ours']:>8} {r['unit']:<2}"
            f"  moto {r['peer']:>8} {r['unit']:<2}  ratio {r['ratio']}"
            f"  target <= {r['target']} {r['unit']}"
        )
    if "--json" in sys.argv[1:]:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
