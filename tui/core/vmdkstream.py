"""Walk a stream-optimized VMDK as its bytes arrive and inflate every grain, the way EC2 reads an
uploaded image: a grain that does not inflate to its grain size is the error EC2 gives,
"Uncompressed data has invalid length". The sandbox feeds it the parts it downloads.

The layout (VMware "Virtual Disk Format 5.0", stream-optimized): the header sector, metadata up
to `overhead` sectors, then sector-aligned markers. A grain marker is the grain's LBA (8 bytes),
the deflated size (4 bytes, non-zero) and the deflated bytes; a metadata marker has size 0 and
a type (0 end of stream, 1 grain table, 2 grain directory, 3 footer) and is followed by its
LBA-count sectors of metadata.
"""

from __future__ import annotations

import struct
import zlib

SECTOR = 512
MARKER_EOS = 0
MAX_GRAIN_SECTORS = 2048  # 1 MiB grains at most; the format's default is 128 sectors (64 KiB)


class StreamVmdkChecker:
    """Feed it the image in order (`feed`), then `finish()`: None, or the reason it is broken."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0  # the offset in the image of _buf[0]
        self._next: int | None = None  # offset of the next marker (None: header not read yet)
        self.grain_bytes = 0
        self.capacity = 0
        self.grains = 0
        self.error: str | None = None
        self.ended = False

    def feed(self, chunk: bytes) -> None:
        if self.error is not None or self.ended:
            return
        self._buf += chunk
        self._walk()

    def _take(self, offset: int, n: int) -> bytes | None:
        start = offset - self._pos
        if start < 0 or len(self._buf) < start + n:
            return None
        return bytes(self._buf[start : start + n])

    def _drop_before(self, offset: int) -> None:
        n = min(offset - self._pos, len(self._buf))
        if n > 0:
            del self._buf[:n]
            self._pos += n

    def _walk(self) -> None:
        if self._next is None:
            header = self._take(0, SECTOR)
            if header is None:
                return
            if header[:4] != b"KDMV":
                self.error = "not a VMDK (no KDMV magic)"
                return
            capacity, grain = struct.unpack_from("<QQ", header, 12)
            (overhead,) = struct.unpack_from("<Q", header, 64)
            if not 1 <= grain <= MAX_GRAIN_SECTORS:
                self.error = f"grain size {grain} sectors is not a stream-optimized VMDK's"
                return
            self.capacity, self.grain_bytes = capacity * SECTOR, grain * SECTOR
            self._next = overhead * SECTOR
        while self.error is None and not self.ended:
            at = self._next
            self._drop_before(at)
            marker = self._take(at, 16)
            if marker is None:
                return
            lba, size = struct.unpack_from("<QI", marker)
            if size == 0:
                (kind,) = struct.unpack_from("<I", marker, 12)
                if kind == MARKER_EOS:
                    self.ended = True
                    return
                self._next = at + SECTOR + lba * SECTOR  # the marker sector, then its metadata
                continue
            data = self._take(at + 12, size)
            if data is None:
                if size > 4 * self.grain_bytes + SECTOR:
                    self.error = f"grain marker at byte {at} claims {size} deflated bytes"
                return
            self._grain(at, lba, data)
            self._next = at + -(-(12 + size) // SECTOR) * SECTOR

    def _grain(self, at: int, lba: int, data: bytes) -> None:
        offset = lba * SECTOR
        if offset >= self.capacity:
            self.error = f"grain at byte {at} is for sector {lba}, past the disk's capacity"
            return
        expected = min(self.grain_bytes, self.capacity - offset)
        try:
            inflated = zlib.decompressobj().decompress(data, self.grain_bytes + 1)
        except zlib.error:
            inflated = b""
        # qemu-img writes whole grains; a last grain may stop at the capacity.
        if len(inflated) not in (expected, self.grain_bytes):
            self.error = "Uncompressed data has invalid length"
            return
        self.grains += 1

    def finish(self) -> str | None:
        """A stream may stop between markers (`qemu-img create` writes only the header and
        its metadata); one that stops inside a marker or a grain is truncated."""
        if self.error is None and not self.ended:
            if self._next is None:
                self.error = "the stream ends inside its header: truncated"
            elif self._pos + len(self._buf) > self._next:
                self.error = "the stream ends inside a grain or a marker: truncated"
        return self.error
