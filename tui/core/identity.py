"""A disk image's identity: what a run records when it starts, so that `resume` can tell the
same file (perhaps touched) from another one put in its place.

The fingerprint samples the image instead of hashing it: the first and last blocks (where the
VMDK, VHD and RAW headers and footers are) and a few evenly spaced interior blocks, read with
`os.pread`. Ten 64 KiB reads cost the same for a 1 MiB image and a 1 TiB one.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

BLOCK = 64 * 1024
INTERIOR_BLOCKS = 8


@dataclass(frozen=True)
class ImageIdentity:
    size: int
    mtime_ns: int
    inode: int
    device: int
    fingerprint: str  # sha256 hex of the sampled blocks (see `fingerprint`)

    def differences(self, now: ImageIdentity) -> list[str]:
        """What tells `now` apart from this identity as another file (the mtime does not: a
        touched file is the same file, and resume re-checks its parts anyway)."""
        found = []
        if now.size != self.size:
            found.append(f"size {self.size} -> {now.size} bytes")
        if (now.inode, now.device) != (self.inode, self.device):
            found.append(
                f"file (inode {self.device}:{self.inode} -> {now.device}:{now.inode}, "
                "a copy or another file)"
            )
        if now.fingerprint != self.fingerprint:
            found.append("content (the sampled blocks differ)")
        return found


def sample_offsets(size: int) -> list[int]:
    """Where the sampled blocks start: the first, the last, and INTERIOR_BLOCKS between them."""
    if size <= BLOCK * (INTERIOR_BLOCKS + 2):
        return list(range(0, size, BLOCK))  # small enough to read whole
    last = size - BLOCK
    step = last // (INTERIOR_BLOCKS + 1)
    return [0, *(step * i for i in range(1, INTERIOR_BLOCKS + 1)), last]


def fingerprint_fd(fd: int, size: int) -> str:
    digest = hashlib.sha256(size.to_bytes(8, "big"))
    for offset in sample_offsets(size):
        digest.update(os.pread(fd, BLOCK, offset))
    return digest.hexdigest()


def identify(path: Path) -> ImageIdentity:
    """The identity of the file at `path` now. Raises OSError as open/stat/pread do."""
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)  # of the file read, not of whatever the path names a moment later
        size = os.lseek(fd, 0, os.SEEK_END)  # a block device's st_size is 0; its end is not
        return ImageIdentity(
            size=size,
            mtime_ns=st.st_mtime_ns,
            inode=st.st_ino,
            device=st.st_dev,
            fingerprint=fingerprint_fd(fd, size),
        )
    finally:
        os.close(fd)
