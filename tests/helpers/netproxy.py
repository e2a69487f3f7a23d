"""A TCP-level fault and delay proxy for tests and benchmarks: raw bytes, no HTTP parsing.

It listens on 127.0.0.1 only (a free port) and forwards every connection to one upstream
host:port, running an asyncio loop in a daemon thread of its own. Everything is switchable at
run time from the test's thread; each setter returns once the proxy's loop has applied it.

    from tests.helpers.netproxy import NetProxy

    with NetProxy(sandbox_url, lifetime=600) as proxy:   # or NetProxy(("127.0.0.1", port))
        proxy.url                      # "http://127.0.0.1:PORT" (the upstream's scheme)
        proxy.host, proxy.port         # where to connect

        proxy.delay(up=0.02, down=0.02)    # one-way delay in seconds, per direction
        proxy.bandwidth(1 << 20)           # bytes/s per direction and connection; None: no cap
        proxy.bandwidth(1 << 20, shared=True)  # one cap per direction for all connections

        proxy.reset(0.3, seed=1)           # RST (SO_LINGER 0) on 30% of NEW connections
        proxy.reset(schedule=[False, True])  # or per new connection, in order; then none
        proxy.reset(1.0, after_bytes=300_000)  # mid-transfer: once N bytes went through it
        proxy.reset(0)                     # no more resets
        proxy.reset_all()                  # RST every open connection now
        proxy.refuse(1.0, seed=None, schedule=None)  # accept new connections, close at once

        proxy.stall()                      # freeze: nothing moves either way on any
        proxy.unstall()                    #   connection (they stay open); then resume
        proxy.exempt({sandbox_pid})        # no reset/refuse for these processes' connections
        proxy.clear()                      # no reset, no refuse, unstalled (delay, cap stay)

        proxy.stats()                      # a Stats snapshot: connections, active,
                                           #   bytes_up, bytes_down, resets, refused, stalls

Semantics, stated once:

- "up" is client -> upstream, "down" is upstream -> client. `bytes_*` count bytes forwarded.
- Delay: each chunk is stamped when it arrives and written at stamp + d (in order), so the
  delay is a link's propagation delay, not a per-chunk sleep that adds up: an echo round trip
  takes >= up + down, and a stream keeps its rate. Up to `buffer_bytes` (4 MiB by default) may
  be in flight per direction and connection (a TCP window; throughput <= buffer / delay).
- Bandwidth: a token bucket per direction (per connection, or shared by all), writes cut into
  slices of at most 20 ms' worth, so the rate holds at any chunk size.
- Reset: a connection is chosen for reset when it is accepted (by the seeded random fraction,
  or by the schedule); it is reset when its `after_bytes`-th byte (both directions counted)
  would be forwarded: the bytes before it are delivered, then the client gets an RST
  (ECONNRESET) and the upstream side is aborted. `after_bytes=0`: on its first byte.
- Refuse: the connection is accepted and closed at once (a FIN, no RST), before any upstream
  connection is made. Refuse is decided before reset.
- Exempt: connections opened by the given processes (found through /proc, Linux only) are
  never reset or refused, and do not use up the fraction's draws or the schedule: the
  sandbox reading its parts back through the presigned URLs is EC2 reading S3 inside AWS, not
  the user's link. Delay, bandwidth and stall still apply to them.
- Stall: readers stop reading and writers stop writing on every connection, new ones
  included (the kernel still completes their handshake, as a frozen path looks to a client:
  connect succeeds, nothing answers); the upstream is not dialled until unstall. What was
  already handed to the kernel (at most one chunk per direction) still arrives.
- Lifetime: after `lifetime` seconds the proxy closes everything by itself, so a test that
  forgets it cannot leave it running; `close()` (or leaving the `with`) stops it earlier.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import struct
import threading
from collections.abc import Coroutine, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

CHUNK = 64 * 1024
DEFAULT_BUFFER = 4 * 1024 * 1024  # per direction and connection, like a TCP window


@dataclass(frozen=True)
class Stats:
    connections: int  # accepted, refused ones included
    active: int  # open now
    bytes_up: int  # client -> upstream, forwarded
    bytes_down: int  # upstream -> client, forwarded
    resets: int  # connections closed with an RST
    refused: int  # connections closed at once
    stalls: int  # times stall() froze the network


class _Pacer:
    """A token bucket: each caller reserves its slot, so concurrent users share the rate."""

    def __init__(self, rate: float):
        self.rate = rate
        self.next_free = 0.0

    async def take(self, n: int) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        start = max(now, self.next_free)
        self.next_free = start + n / self.rate
        await asyncio.sleep(self.next_free - now)


class _Choice:
    """Which new connections get a fault: a seeded fraction, or a schedule consumed in order."""

    def __init__(self, fraction: float, seed: int | None, schedule: Iterable[bool] | None):
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must be within 0..1, not {fraction}")
        self.fraction = fraction
        self.rng = random.Random(seed)
        self.schedule: Iterator[bool] | None = iter(schedule) if schedule is not None else None

    def pick(self) -> bool:
        if self.schedule is not None:
            return next(self.schedule, False)
        return self.fraction > 0 and self.rng.random() < self.fraction


_NONE = _Choice(0.0, None, None)


class _Conn:
    def __init__(
        self,
        proxy: NetProxy,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        reset_at: int | None,
    ):
        self.proxy = proxy
        self.creader, self.cwriter = client
        self.reset_at = reset_at
        self.forwarded = 0
        self.uwriter: asyncio.StreamWriter | None = None
        self.closed = False

    def reset(self) -> None:
        """RST to the client (SO_LINGER 0, then close), abort the upstream side."""
        if self.closed:
            return
        self.closed = True
        self.proxy._count(resets=1)
        sock = self.cwriter.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.cwriter.transport.abort()
        if self.uwriter is not None:
            self.uwriter.transport.abort()

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            self.cwriter.transport.abort()
            if self.uwriter is not None:
                self.uwriter.transport.abort()

    async def run(self) -> None:
        p = self.proxy
        await p._flowing.wait()
        try:
            ureader, self.uwriter = await asyncio.open_connection(p.upstream_host, p.upstream_port)
        except OSError:
            self.abort()
            return
        if self.closed:  # reset_all() while we dialled
            self.uwriter.transport.abort()
            return
        await asyncio.gather(
            self._pump(self.creader, self.uwriter, "up"),
            self._pump(ureader, self.cwriter, "down"),
        )
        if not self.closed:
            self.closed = True
            for w in (self.cwriter, self.uwriter):
                w.close()
                with contextlib.suppress(Exception):
                    await w.wait_closed()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str
    ) -> None:
        """A reader task stamps chunks on arrival; this writer sends each at stamp + delay."""
        p = self.proxy
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(
            maxsize=max(1, p.buffer_bytes // CHUNK)
        )

        async def read() -> None:
            try:
                while True:
                    await p._flowing.wait()
                    data = await reader.read(CHUNK)
                    await queue.put((loop.time(), data))
                    if not data:
                        return
            except (OSError, asyncio.IncompleteReadError):
                await queue.put((loop.time(), b""))

        reading = asyncio.create_task(read())
        try:
            while True:
                stamp, data = await queue.get()
                delay = p._delay[direction]
                if delay > 0:
                    await asyncio.sleep(max(0.0, stamp + delay - loop.time()))
                if not data:
                    if not self.closed and writer.can_write_eof():
                        with contextlib.suppress(OSError):
                            writer.write_eof()
                    return
                if not await self._write(writer, data, direction):
                    return
        except (OSError, ConnectionError):
            self.abort()
        finally:
            reading.cancel()

    async def _write(self, writer: asyncio.StreamWriter, data: bytes, direction: str) -> bool:
        """Forward `data`, paced and stall-aware; False once the connection is gone."""
        p = self.proxy
        view = memoryview(data)
        while view:
            await p._flowing.wait()
            if self.closed:
                return False
            pacer = p._pacer(self, direction)
            size = len(view)
            if pacer is not None:
                size = min(size, max(1024, int(pacer.rate / 50)))
            if self.reset_at is not None:
                size = min(size, self.reset_at - self.forwarded)
                if size <= 0:
                    await self._flush_then_reset()
                    return False
            if pacer is not None:
                await pacer.take(size)
                await p._flowing.wait()  # a stall that began while we waited for the bucket
                if self.closed:
                    return False
            # Counted before the write, so a peer that has the bytes sees them counted.
            self.forwarded += size
            p._count(**{f"bytes_{direction}": size})
            writer.write(bytes(view[:size]))
            view = view[size:]
            await writer.drain()
        return True

    async def _flush_then_reset(self) -> None:
        # The bytes before the reset point are delivered first (an RST drops unsent data).
        for w in (self.cwriter, self.uwriter):
            for _ in range(100):
                if w is None or w.transport.get_write_buffer_size() == 0:
                    break
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.02)
        self.reset()


class NetProxy:
    """See the module docstring for the API and its semantics."""

    def __init__(
        self,
        upstream: str | tuple[str, int],
        *,
        lifetime: float = 900.0,
        buffer_bytes: int = DEFAULT_BUFFER,
    ):
        if isinstance(upstream, str):
            parts = urlsplit(upstream)
            if parts.hostname is None or parts.port is None:
                raise ValueError(f"upstream needs a host and a port: {upstream!r}")
            self.scheme = parts.scheme or "http"
            self.upstream_host, self.upstream_port = parts.hostname, parts.port
        else:
            self.scheme = "http"
            self.upstream_host, self.upstream_port = upstream
        self.lifetime = lifetime
        self.buffer_bytes = buffer_bytes
        self.host = "127.0.0.1"
        self.port = 0
        self._delay = {"up": 0.0, "down": 0.0}
        self._rate: float | None = None
        self._shared = False
        self._shared_pacers: dict[str, _Pacer] = {}
        self._conn_pacers: dict[tuple[int, str], _Pacer] = {}
        self._reset = _NONE
        self._reset_after = 0
        self._refuse = _NONE
        self._conns: set[_Conn] = set()
        self._exempt: frozenset[int] = frozenset()
        self._tasks: set[asyncio.Task[None]] = set()
        self._counts = dict.fromkeys(
            ("connections", "bytes_up", "bytes_down", "resets", "refused", "stalls"), 0
        )
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="netproxy")
        self._server: asyncio.Server | None = None
        self._flowing: asyncio.Event
        self._started = False

    # -- life cycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self) -> NetProxy:
        self._thread.start()
        self._started = True
        self._call(self._start())
        return self

    def close(self) -> None:
        if not self._started or not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> NetProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        # Bounded lifetime: a forgotten proxy stops by itself.
        self._loop.call_later(self.lifetime, lambda: asyncio.ensure_future(self._shutdown()))

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns):
            conn.abort()
        self._flowing.set()  # let stalled tasks see their connection is gone
        if self._tasks:  # let them end, so none is destroyed pending when the loop stops
            _, pending = await asyncio.wait(self._tasks, timeout=2)
            for task in pending:
                task.cancel()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def _apply(self, fn: Any) -> None:
        async def apply() -> None:
            fn()

        self._call(apply())

    # -- the switches -------------------------------------------------------------------------

    def delay(self, up: float = 0.0, down: float = 0.0) -> None:
        if up < 0 or down < 0:
            raise ValueError("a delay is >= 0")
        self._apply(lambda: self._delay.update(up=up, down=down))

    def bandwidth(self, bytes_per_s: float | None, *, shared: bool = False) -> None:
        if bytes_per_s is not None and bytes_per_s <= 0:
            raise ValueError("a bandwidth is > 0 (None: no cap)")

        def apply() -> None:
            self._rate, self._shared = bytes_per_s, shared
            self._shared_pacers.clear()
            self._conn_pacers.clear()

        self._apply(apply)

    def reset(
        self,
        fraction: float = 1.0,
        *,
        after_bytes: int = 0,
        seed: int | None = None,
        schedule: Iterable[bool] | None = None,
    ) -> None:
        choice = _Choice(fraction, seed, schedule)

        def apply() -> None:
            self._reset, self._reset_after = choice, after_bytes

        self._apply(apply)

    def refuse(
        self,
        fraction: float = 1.0,
        *,
        seed: int | None = None,
        schedule: Iterable[bool] | None = None,
    ) -> None:
        choice = _Choice(fraction, seed, schedule)
        self._apply(lambda: setattr(self, "_refuse", choice))

    def exempt(self, pids: Iterable[int]) -> None:
        chosen = frozenset(pids)
        self._apply(lambda: setattr(self, "_exempt", chosen))

    def reset_all(self) -> None:
        def apply() -> None:
            for conn in list(self._conns):
                conn.reset()

        self._apply(apply)

    def stall(self) -> None:
        def apply() -> None:
            if self._flowing.is_set():
                self._count(stalls=1)
            self._flowing.clear()

        self._apply(apply)

    def unstall(self) -> None:
        self._apply(self._flowing.set)

    def clear(self) -> None:
        def apply() -> None:
            self._reset = self._refuse = _NONE
            self._flowing.set()

        self._apply(apply)

    def stats(self) -> Stats:
        with self._lock:
            return Stats(active=len(self._conns), **self._counts)

    # -- the loop's side ----------------------------------------------------------------------

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for name, n in deltas.items():
                self._counts[name] += n

    def _pacer(self, conn: _Conn, direction: str) -> _Pacer | None:
        if self._rate is None:
            return None
        if self._shared:
            return self._shared_pacers.setdefault(direction, _Pacer(self._rate))
        return self._conn_pacers.setdefault((id(conn), direction), _Pacer(self._rate))

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._count(connections=1)
        eligible = not self._exempt or not _opened_by(
            writer.get_extra_info("peername"), self._exempt
        )
        if eligible and self._refuse.pick():
            self._count(refused=1)
            writer.close()
            return
        reset_at = self._reset_after if eligible and self._reset.pick() else None
        conn = _Conn(self, (reader, writer), reset_at)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        with self._lock:
            self._conns.add(conn)
        try:
            await conn.run()
        except Exception:
            conn.abort()
        finally:
            with self._lock:
                self._conns.discard(conn)
            for key in [k for k in self._conn_pacers if k[0] == id(conn)]:
                del self._conn_pacers[key]


def _opened_by(peer: Any, pids: frozenset[int]) -> bool:
    """Whether the client end of a loopback TCP connection belongs to one of `pids`: its socket
    inode from /proc/net/tcp, looked for among those processes' file descriptors."""
    if not isinstance(peer, tuple) or len(peer) < 2:
        return False
    host, port = peer[0], peer[1]
    want = f"{socket.inet_aton(host)[::-1].hex().upper()}:{port:04X}"  # as /proc/net/tcp has it
    inode = None
    with contextlib.suppress(OSError), open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[1] == want:
                inode = fields[9]
                break
    if inode is None:
        return False
    target = f"socket:[{inode}]"
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                        return True
    return False
