"""The image identity resume checks: what the sampled fingerprint reads, and what it notices."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

from tui.core.identity import BLOCK, identify, sample_offsets


def test_samples_head_tail_and_eight_interior_blocks_at_any_size() -> None:
    assert sample_offsets(3 * BLOCK + 5) == [0, BLOCK, 2 * BLOCK, 3 * BLOCK]  # small: all of it
    big = 4 << 30
    offsets = sample_offsets(big)
    assert len(offsets) == 10 and offsets[0] == 0 and offsets[-1] == big - BLOCK
    assert offsets == sorted(set(offsets))


def test_a_4_gib_sparse_image_is_identified_in_well_under_a_second(tmp_path: Path) -> None:
    image = tmp_path / "sparse.raw"
    with image.open("wb") as fh:
        fh.truncate(4 << 30)
    started = time.perf_counter()
    ident = identify(image)
    assert time.perf_counter() - started < 1.0  # generous: ten 64 KiB reads
    assert ident.size == 4 << 30 and ident.inode == image.stat().st_ino


def test_what_tells_another_image_apart(tmp_path: Path) -> None:
    image = tmp_path / "disk.raw"
    image.write_bytes(os.urandom(2 << 20))
    was = identify(image)
    assert was.differences(identify(image)) == []
    os.utime(image, ns=(0, was.mtime_ns + 10**9))
    touched = identify(image)
    assert touched.mtime_ns != was.mtime_ns and was.differences(touched) == []
    with image.open("r+b") as fh:
        fh.seek((2 << 20) - 10)
        fh.write(b"0123456789")  # the last block is sampled
    assert was.differences(identify(image)) == ["content (the sampled blocks differ)"]
    assert "inode" in was.differences(replace(was, inode=was.inode + 1))[0]
