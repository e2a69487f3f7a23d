"""The conversion step of a run: the probe's plan says "convert", qemu-img makes the
stream-optimized VMDK in the cache folder, the upload sends that file.

A converted image is named after what it was made from (path, size, mtime and inode of every
source file), so an unchanged source is converted once: a second run, or a `resume`, reuses it.
It is written under a temporary name and renamed when qemu-img has finished, so a file with the
final name is always whole. It is removed when the import completes, and by `cleanup`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tui.core import qemu
from tui.core.disk import ProbeResult, probe_image
from tui.core.errors import InputError
from tui.core.paths import cache_dir, make_private_dir
from tui.core.units import human_bytes

SPACE_MARGIN = 16 << 20  # bytes kept free beyond the estimate: the grain tables, the file system


def converted_dir() -> Path:
    return cache_dir() / "converted"


@dataclass(frozen=True)
class Converted:
    path: Path
    bytes: int
    reused: bool
    seconds: float


def source_files(result: ProbeResult) -> list[Path]:
    """Every file the conversion reads: the image (or descriptor, or OVA) and its extents."""
    files = [Path(result.path)]
    files += [Path(e["path"]) for e in result.extents if e.get("path")]
    return files


def cache_path(result: ProbeResult) -> Path:
    """The converted file for this source as it is now (its files' path, size, mtime, inode)."""
    ids = []
    for f in source_files(result):
        st = f.stat()
        ids.append([str(f.resolve()), st.st_size, st.st_mtime_ns, st.st_ino])
    key = hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:32]
    return converted_dir() / f"{key}.vmdk"


def needed_bytes(result: ProbeResult) -> int:
    estimate = result.plan["send_bytes_estimate"] if result.plan else result.file_bytes
    return int(estimate) + SPACE_MARGIN


def check_ready(result: ProbeResult) -> Path:
    """Before anything is sent or recorded: qemu-img is there, and the cache folder has room
    (unless the converted file is there already). Returns the converted file's path."""
    path = cache_path(result)
    if path.is_file():
        return path
    qemu.qemu_img()
    folder = make_private_dir(converted_dir())
    free = shutil.disk_usage(folder).free
    need = needed_bytes(result)
    if free < need:
        raise InputError(
            f"converting {result.path} needs about {need} bytes ({human_bytes(need)}) free in "
            f"{folder}, which has {free} ({human_bytes(free)}): free some space, or set "
            'convert = "never" where the format allows it',
            field="cache",
        )
    return path


def convert(
    result: ProbeResult,
    *,
    on_progress: Callable[[qemu.ConvertProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> Converted:
    """The stream-optimized VMDK of `result`'s source: reused from the cache, or made now."""
    started = time.monotonic()
    path = check_ready(result)
    if path.is_file() and probe_image(path).importable:
        return Converted(path, path.stat().st_size, True, 0.0)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.part")
    try:
        qemu.convert_to_stream_vmdk(
            result.convert_from,
            str(temp),
            result.virtual_bytes,
            on_progress=on_progress,
            cancel=cancel,
        )
        os.chmod(temp, 0o600)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return Converted(path, path.stat().st_size, False, time.monotonic() - started)


def remove(path: str | os.PathLike[str] | None) -> bool:
    """Delete a converted file, only if it lives in the cache folder. True if it was there."""
    if not path:
        return False
    p = Path(path)
    try:
        if p.resolve().parent != converted_dir().resolve():
            return False
        p.unlink()
        return True
    except FileNotFoundError:
        return False
