"""The TCP fault proxy itself (tests/helpers/netproxy.py), over real sockets to a real echo
server: delay, stall and unstall, reset, refuse, bandwidth cap and its counters. Time bounds
here are loose on purpose (a shared, noisy machine): each checks a property the proxy would
miss by a wide margin if it were broken (e.g. no delay at all, or delays adding up)."""

from __future__ import annotations

import os
import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from tests.helpers.netproxy import NetProxy


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture(scope="module")
def echo() -> Iterator[tuple[str, int]]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield ("127.0.0.1", server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def proxy(echo: tuple[str, int]) -> Iterator[NetProxy]:
    with NetProxy(echo, lifetime=120) as p:
        yield p


def _connect(proxy: NetProxy, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection((proxy.host, proxy.port), timeout=timeout)


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(min(65536, n - len(out)))
        if not chunk:
            break
        out += chunk
    return bytes(out)


def test_forwards_bytes_both_ways_and_counts_them(proxy: NetProxy) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB, so it crosses many chunks
    with _connect(proxy) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        assert _recv_exactly(sock, len(payload)) == payload
        sender.join()
    stats = proxy.stats()
    assert (stats.connections, stats.bytes_up, stats.bytes_down) == (1, len(payload), len(payload))
    assert (stats.resets, stats.refused) == (0, 0)


def test_an_echo_round_trip_takes_both_one_way_delays(proxy: NetProxy) -> None:
    proxy.delay(up=0.15, down=0.1)
    with _connect(proxy) as sock:
        began = time.monotonic()
        sock.sendall(b"ping")
        assert _recv_exactly(sock, 4) == b"ping"
        rtt = time.monotonic() - began
    assert 0.25 <= rtt < 3.0, rtt


def test_delay_is_per_chunk_from_its_arrival_not_added_up(proxy: NetProxy) -> None:
    # 60 small writes 10 ms apart: a proxy that slept d per chunk in turn would need about
    # 60 x 0.1 s; one that delays from arrival needs about 0.2 s + 0.6 s of sending.
    proxy.delay(up=0.1, down=0.1)
    with _connect(proxy) as sock:
        began = time.monotonic()

        def send() -> None:
            for i in range(60):
                sock.sendall(b"%02d" % i)
                time.sleep(0.01)

        sender = threading.Thread(target=send)
        sender.start()
        got = _recv_exactly(sock, 120)
        elapsed = time.monotonic() - began
        sender.join()
    assert got == b"".join(b"%02d" % i for i in range(60))  # in order
    assert 0.8 <= elapsed < 3.5, elapsed


def test_stall_freezes_every_connection_and_unstall_delivers_every_byte(proxy: NetProxy) -> None:
    with _connect(proxy) as before:
        before.sendall(b"warm")
        assert _recv_exactly(before, 4) == b"warm"
        proxy.stall()
        payload = bytes(range(256)) * 1024
        before.sendall(payload)
        with _connect(proxy) as during:  # a new connection: accepted, then nothing flows
            during.sendall(b"new")
            for sock in (before, during):
                sock.settimeout(1.0)
                with pytest.raises(TimeoutError):
                    sock.recv(1)
            assert proxy.stats().active == 2  # both still open
            proxy.unstall()
            for sock in (before, during):
                sock.settimeout(10.0)
            assert _recv_exactly(before, len(payload)) == payload
            assert _recv_exactly(during, 3) == b"new"
    assert proxy.stats().stalls == 1


def test_reset_gives_the_client_econnreset(proxy: NetProxy) -> None:
    proxy.reset(1.0)
    with _connect(proxy) as sock:
        sock.sendall(b"hello")
        with pytest.raises(ConnectionResetError):
            sock.recv(1)  # the request never gets an answer
    assert proxy.stats().resets == 1 and proxy.stats().bytes_up == 0


def test_reset_mid_transfer_after_n_bytes(proxy: NetProxy) -> None:
    proxy.reset(1.0, after_bytes=100_000)
    got = bytearray()
    with _connect(proxy) as sock, pytest.raises((ConnectionResetError, BrokenPipeError)):
        sock.sendall(b"x" * 400_000)
        while chunk := sock.recv(65536):
            got += chunk
    stats = proxy.stats()
    assert stats.resets == 1
    assert stats.bytes_up + stats.bytes_down == 100_000  # exactly up to the reset point
    assert len(got) < 100_000


def test_reset_fraction_is_seeded_and_schedule_is_followed(proxy: NetProxy) -> None:
    def outcomes(n: int) -> list[bool]:
        seen = []
        for _ in range(n):
            with _connect(proxy) as sock:
                sock.sendall(b"a")
                try:
                    seen.append(_recv_exactly(sock, 1) != b"a")
                except ConnectionResetError:
                    seen.append(True)
        return seen

    proxy.reset(0.5, seed=7)
    first = outcomes(12)
    proxy.reset(0.5, seed=7)
    assert outcomes(12) == first  # the same seed picks the same connections
    assert 0 < sum(first) < 12
    proxy.reset(schedule=[False, True, True])
    assert outcomes(5) == [False, True, True, False, False]  # then no more


def test_exempt_processes_are_never_reset(proxy: NetProxy) -> None:
    proxy.reset(1.0)
    proxy.exempt({os.getpid()})  # this process opens the connection: forwarded cleanly
    with _connect(proxy) as sock:
        sock.sendall(b"spared")
        assert _recv_exactly(sock, 6) == b"spared"
    proxy.exempt({os.getppid()})  # another process: this one's connection is reset again
    with _connect(proxy) as sock:
        sock.sendall(b"hit")
        with pytest.raises(ConnectionResetError):
            sock.recv(1)
    assert proxy.stats().resets == 1


def test_refuse_accepts_then_closes(proxy: NetProxy) -> None:
    proxy.refuse(1.0)
    with _connect(proxy) as sock:
        assert sock.recv(1) == b""  # closed by the proxy, no upstream reached
    proxy.clear()
    with _connect(proxy) as sock:
        sock.sendall(b"ok")
        assert _recv_exactly(sock, 2) == b"ok"
    stats = proxy.stats()
    assert (stats.connections, stats.refused) == (2, 1)


def test_bandwidth_cap_bounds_throughput(proxy: NetProxy) -> None:
    # 256 KiB each way at 128 KiB/s takes >= 2 s; without a cap it takes milliseconds.
    proxy.bandwidth(128 * 1024)
    payload = b"z" * (256 * 1024)
    with _connect(proxy, timeout=30) as sock:
        began = time.monotonic()
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        assert _recv_exactly(sock, len(payload)) == payload
        elapsed = time.monotonic() - began
        sender.join()
    assert 1.6 <= elapsed < 20, elapsed


def test_a_shared_cap_is_split_between_connections(proxy: NetProxy) -> None:
    # Two connections of 128 KiB under one shared 128 KiB/s: >= 2 s in all (1 s if per connection).
    proxy.bandwidth(128 * 1024, shared=True)
    payload = b"s" * (128 * 1024)
    results: list[bytes] = []

    def one() -> None:
        with _connect(proxy, timeout=30) as sock:
            sock.sendall(payload)
            results.append(_recv_exactly(sock, len(payload)))

    began = time.monotonic()
    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    assert results == [payload, payload]
    assert 1.6 <= elapsed < 20, elapsed


def test_the_lifetime_bounds_the_proxy(echo: tuple[str, int]) -> None:
    with NetProxy(echo, lifetime=0.5) as p:
        sock = _connect(p)
        time.sleep(1.0)
        assert sock.recv(1) == b""  # its connection was closed with it
        sock.close()
        with pytest.raises(OSError):
            _connect(p, timeout=2).close()
