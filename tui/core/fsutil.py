"""Atomic, private file writes: nothing is ever half-written, nothing readable by others."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from tui.core.paths import make_private_dir


def atomic_write(path: Path, data: str | bytes, mode: int = 0o600) -> None:
    """Write to a temp file beside `path`, fsync, rename over it, fsync the folder."""
    make_private_dir(path.parent)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
