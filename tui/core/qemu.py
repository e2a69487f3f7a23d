"""qemu-img, the field's standard disk converter: `info` for the formats we do not parse
ourselves, and `convert` to a stream-optimized VMDK with its progress read as it goes.

Nothing else in the core runs qemu-img. A missing binary is an InputError naming the Debian
package, raised before anything is sent.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tui.core.errors import InputError, Interrupted

PACKAGE = "qemu-utils"  # the Debian/Ubuntu package that carries qemu-img
INFO_TIMEOUT_S = 60.0
_PROGRESS_RE = re.compile(rb"\((\d+(?:\.\d+)?)/100%\)")


class QemuImgMissing(InputError):
    pass


class QemuImgFailed(InputError):
    """qemu-img refused the image (damaged, truncated, a missing file): its own words."""


def qemu_img() -> str:
    exe = shutil.which("qemu-img")
    if exe is None:
        raise QemuImgMissing(
            f"qemu-img is not installed; it converts this image: install it "
            f"(`apt-get install {PACKAGE}` on Debian or Ubuntu, `dnf install qemu-img`, "
            "`brew install qemu`)",
            field="qemu-img",
        )
    return exe


def available() -> bool:
    return shutil.which("qemu-img") is not None


def _why(stderr: str) -> str:
    """qemu-img's last line without its repeated "Could not open 'x': " lead."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    text = lines[-1] if lines else "failed"
    text = re.sub(r"^qemu-img: ", "", text)
    parts = re.split(r"Could not open '[^']*': ", text)
    return parts[-1] if parts[-1] else text


def info(spec: str, fmt: str | None = None) -> dict[str, Any]:
    """`qemu-img info --output=json` of `spec` (a path, or a `json:` spec). Raises QemuImgFailed
    with qemu-img's reason when it cannot open the image."""
    cmd = [qemu_img(), "info", "--output=json"]
    if fmt:
        cmd += ["-f", fmt]
    cmd.append(spec)
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=INFO_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise QemuImgFailed("qemu-img info took over a minute: is the file readable?") from None
    if done.returncode != 0:
        raise QemuImgFailed(_why(done.stderr))
    data: dict[str, Any] = json.loads(done.stdout)
    return data


@dataclass(frozen=True)
class ConvertProgress:
    percent: float
    bytes_done: int  # of the virtual size: what qemu-img has walked through
    bytes_total: int
    bytes_per_s: float
    eta_s: float | None


def convert_to_stream_vmdk(
    source: Sequence[str],
    dest: str,
    virtual_bytes: int,
    *,
    on_progress: Callable[[ConvertProgress], None] | None = None,
    cancel: threading.Event | None = None,
    interval: float = 0.25,
) -> None:
    """Run `qemu-img convert -p [-f FMT] SOURCE -O vmdk -o subformat=streamOptimized DEST`.

    `source` is the input arguments (e.g. ["-f", "vhdx", "disk.vhdx"]). Progress is read from
    qemu-img's own `-p` output and passed on at most every `interval` seconds. `cancel` kills
    qemu-img (Interrupted); a failure is QemuImgFailed with qemu-img's reason. DEST is left
    half-written on failure: the caller writes to a temporary name and renames.
    """
    cmd = [qemu_img(), "convert", "-p", *source, "-O", "vmdk", "-o", "subformat=streamOptimized"]
    cmd.append(dest)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    assert proc.stdout is not None and proc.stderr is not None
    stop = cancel or threading.Event()
    killed = threading.Event()

    def watch_cancel() -> None:
        while proc.poll() is None:
            if stop.wait(0.1):
                killed.set()
                proc.kill()
                return

    watcher = threading.Thread(target=watch_cancel, name="qemu-img-cancel", daemon=True)
    watcher.start()
    errors: list[bytes] = []
    reader = threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    started = time.monotonic()
    told = 0.0
    pending = b""
    fd = proc.stdout.fileno()
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        pending += chunk
        found = list(_PROGRESS_RE.finditer(pending))
        if not found:
            pending = pending[-64:]
            continue
        percent = float(found[-1].group(1))
        pending = pending[found[-1].end() :]
        now = time.monotonic()
        if on_progress is not None and (now - told >= interval or percent >= 100.0):
            told = now
            on_progress(_progress(percent, virtual_bytes, now - started))
    proc.wait()
    reader.join()
    # The watcher ends within its 0.1 s poll on its own (a daemon): not waited for.
    if killed.is_set():
        raise Interrupted("interrupted while converting the image")
    if proc.returncode != 0:
        message = _why(b"".join(errors).decode("utf-8", "replace"))
        raise QemuImgFailed(f"qemu-img convert failed: {message}")


def _progress(percent: float, total: int, elapsed: float) -> ConvertProgress:
    done = int(total * percent / 100.0)
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = (total - done) / rate if rate > 0 else None
    return ConvertProgress(percent, done, total, rate, eta)
