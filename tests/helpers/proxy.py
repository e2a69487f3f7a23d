"""An HTTP proxy for tests: forwards to a real endpoint (the sandbox), records every answer,
and can answer instead of it to inject faults."""

from __future__ import annotations

import http.client
import http.server
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit


class FaultyProxy:
    """Forwards to the real endpoint; `fault(method, path, n)` may answer instead, where n
    counts the requests seen for that method and path. `log` records (method, path, status) of
    every answer, so a test can count what the server really accepted."""

    def __init__(
        self,
        upstream: str,
        fault: Callable[[str, str, int], tuple[int, dict[str, str], bytes] | None] = (
            lambda method, path, n: None
        ),
    ):
        target = urlsplit(upstream)
        host = target.hostname or "127.0.0.1"
        self.counts: dict[tuple[str, str], int] = {}
        self.log: list[tuple[str, str, int]] = []
        self.faults = 0
        lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                with lock:
                    n = outer.counts.get((self.command, path), 0) + 1
                    outer.counts[(self.command, path)] = n
                answer = fault(self.command, path, n)
                if answer is not None:
                    with lock:
                        outer.faults += 1
                    status, headers, payload = answer
                else:
                    conn = http.client.HTTPConnection(host, target.port, timeout=30)
                    conn.request(self.command, self.path, body=body, headers=dict(self.headers))
                    resp = conn.getresponse()
                    payload = resp.read()
                    status = resp.status
                    headers = {
                        k: v
                        for k, v in resp.getheaders()
                        if k.lower() not in ("transfer-encoding", "connection")
                    }
                    conn.close()
                with lock:
                    outer.log.append((self.command, path, status))
                self.send_response(status)
                if self.command != "HEAD":  # a HEAD keeps the object's length
                    headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
                    headers["Content-Length"] = str(len(payload))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class HoldingProxy(FaultyProxy):
    """A recording proxy that can hold part PUTs: each part PUT whose path `hold(path)` accepts
    waits, its body already received, until `release()`; then it goes on to the server. The
    process behind it is caught mid-upload for as long as a test needs, whatever the machine's
    speed. `held` lists the paths held so far."""

    def __init__(
        self, upstream: str, hold: Callable[[str], bool] | None = None, max_hold: float = 90.0
    ):
        self.held: list[str] = []
        self.longest_hold = 0.0  # seconds: a client whose read timeout is shorter retried
        self._released = threading.Event()
        self._cond = threading.Condition()

        def fault(method: str, path: str, n: int) -> None:
            if method != "PUT" or ".part" not in path or hold is None or not hold(path):
                return None
            with self._cond:
                self.held.append(path)
                self._cond.notify_all()
            began = time.monotonic()
            self._released.wait(max_hold)  # bounded: a forgotten hold cannot hang a test
            with self._cond:
                self.longest_hold = max(self.longest_hold, time.monotonic() - began)
            return None

        super().__init__(upstream, fault)

    def wait_held(self, count: int = 1, timeout: float = 60.0) -> bool:
        """True once `count` PUTs are held; False when `timeout` seconds pass first."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.held) >= count, timeout)

    def release(self) -> None:
        self._released.set()

    def requests(self) -> list[tuple[str, str, int]]:
        """Every request answered through this proxy (a copy)."""
        return list(self.log)

    def close(self) -> None:
        self.release()
        super().close()
