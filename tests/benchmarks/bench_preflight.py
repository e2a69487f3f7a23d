"""The preflight on a valid profile against the sandbox (issue 14).

    python -m tests.benchmarks.bench_preflight

Two figures: `ec2-import-wizard check PROFILE --json` as a user runs it (a process start
included; the median of 5, the README's figure), and the checks themselves in-process, side by
side (ours) against the same checks one after another (the peer).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import tomli_w


def _median_ms(fn: Any, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def run(quick: bool = True) -> list[dict[str, Any]]:
    from tests.helpers.aws import CREDENTIALS, client, spawn_sandbox
    from tests.helpers.disks import make_source_raw, qemu_convert
    from tui.core.aws import Target
    from tui.core.journal import new_run_id
    from tui.core.plan import plan_import
    from tui.core.preflight import run_checks
    from tui.core.profiles import load_profile

    repeat = 5 if quick else 11
    sandbox = spawn_sandbox()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-preflight-") as tmp:
            root = Path(tmp)
            client(sandbox.endpoint, "s3").create_bucket(Bucket="bench-preflight")
            image = qemu_convert(
                make_source_raw(root / "disk.raw"),
                root / "disk.vmdk",
                "vmdk",
                "-o",
                "subformat=streamOptimized",
            )
            profile = root / "bench.toml"
            profile.write_text(
                tomli_w.dumps(
                    {
                        "name": "bench",
                        "aws": {"region": "us-east-1"},
                        "source": {"path": str(image), "bucket": "bench-preflight"},
                        "request": {
                            "Platform": "Windows",
                            "LaunchSpecification": {
                                "Architecture": "x86_64",
                                "InstanceType": "m5.large",
                                "Placement": {"AvailabilityZone": "us-east-1a"},
                            },
                        },
                    }
                )
            )
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
                "EC2_IMPORT_WIZARD_HOME": str(root / "home"),
                "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
                "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
                "AWS_CONFIG_FILE": str(root / "none"),
                "AWS_SHARED_CREDENTIALS_FILE": str(root / "none"),
            }
            cmd = [sys.executable, "-m", "tui", "--endpoint-url", sandbox.endpoint, "check"]

            def check() -> None:
                done = subprocess.run([*cmd, str(profile), "--json"], env=env, capture_output=True)
                assert done.returncode == 0 and json.loads(done.stdout)["ok"], done.stderr

            check()  # moto builds its EC2 backend on the first describe
            cli_ms = _median_ms(check, repeat)

            os.environ.update(
                AWS_ACCESS_KEY_ID=env["AWS_ACCESS_KEY_ID"],
                AWS_SECRET_ACCESS_KEY=env["AWS_SECRET_ACCESS_KEY"],
            )
            plan = plan_import(load_profile(profile), profile)
            target = Target(region="us-east-1", endpoint_url=sandbox.endpoint)

            def checks(workers: int | None) -> None:
                assert run_checks(plan, target, run_id=new_run_id(), workers=workers).ok

            checks(None)
            ours = _median_ms(lambda: checks(None), repeat)
            peer = _median_ms(lambda: checks(1), repeat)
    finally:
        sandbox.stop()
    return [
        {
            "name": "`check` on a valid profile against the sandbox (process start included)",
            "ours": round(cli_ms, 1),
            "peer": None,
            "ratio": None,
            "target": "<= 5000 ms",
            "unit": "ms",
        },
        {
            "name": "preflight checks side by side (vs one after another)",
            "ours": round(ours, 1),
            "peer": round(peer, 1),
            "ratio": round(ours / peer, 3),
            "target": "<= 0.7x",
            "unit": "ms",
        },
    ]


def main() -> int:
    for row in run(quick="--full" not in sys.argv[1:]):
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
