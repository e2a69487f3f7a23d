"""One upload in this fresh process, for bench_wan: `python wan_child.py RESULT KIND ARGS...`.

Run as a script by whichever interpreter has the tool (the project's venv, or the awscli
cache venv), so it imports nothing of the project itself. It writes {"rc", "rss_kib",
"rchar"} to RESULT as it exits: the peak RSS (VmHWM) must be read by the process itself, since
wait4's ru_maxrss carries the parent's peak over fork and exec. Wall time and CPU (user+sys)
come from the parent's wait4 on this process.

KIND and ARGS:
    aws ARGS...                          `aws ARGS...` in-process (awscli's own main)
    ours ARGS...                         `python -m tui ARGS...` in-process
    upload_file ENDPOINT IMAGE BUCKET    boto3 upload_file, default TransferConfig
    ceiling ENDPOINT IMAGE BUCKET        16 threads of put_object, 10 MiB objects
"""

from __future__ import annotations

import json
import os
import runpy
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

PART = 10 << 20
CEILING_THREADS = 16


def _proc(field: str, path: str = "/proc/self/status") -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def _client(endpoint: str, pool: int = 10) -> Any:
    import boto3
    from botocore.config import Config

    # Region and credentials from the environment, as a user's would be.
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            max_pool_connections=pool,
        ),
    )


def _upload_file(endpoint: str, image: str, bucket: str) -> int:
    _client(endpoint).upload_file(image, bucket, "peer/" + os.path.basename(image))
    return 0


def _ceiling(endpoint: str, image: str, bucket: str) -> int:
    s3 = _client(endpoint, pool=CEILING_THREADS)
    size = os.path.getsize(image)
    fd = os.open(image, os.O_RDONLY)

    def put(offset: int) -> None:
        body = os.pread(fd, PART, offset)
        s3.put_object(Bucket=bucket, Key=f"ceiling/part{offset // PART}", Body=body)

    with ThreadPoolExecutor(CEILING_THREADS) as pool:
        list(pool.map(put, range(0, size, PART)))
    os.close(fd)
    return 0


def _run_main(kind: str, args: list[str]) -> int:
    if kind == "aws":
        from awscli.clidriver import main

        sys.argv = ["aws", *args]
        return int(main() or 0)
    sys.argv = ["ec2-import-wizard", *args]
    try:
        runpy.run_module("tui", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def main() -> None:
    result, kind, *args = sys.argv[1:]
    if kind == "upload_file":
        rc = _upload_file(*args)
    elif kind == "ceiling":
        rc = _ceiling(*args)
    else:
        rc = _run_main(kind, args)
    Path(result).write_text(
        json.dumps(
            {"rc": rc, "rss_kib": _proc("VmHWM:"), "rchar": _proc("rchar:", "/proc/self/io")}
        )
    )
    sys.exit(rc)


if __name__ == "__main__":
    main()
