"""HTTP/1.1 persistent connections for the sandbox's werkzeug server, as S3 keeps them.

werkzeug's development server answers `Connection: close` to every request (its `run_wsgi`
says so, because http.server cannot find the next request line after a body the app left
unread). A client of the sandbox then pays a TCP handshake per request, which S3 never makes it
pay, so a figure measured against the sandbox (or through a delay proxy in front of it) would
favour whoever opens fewer connections. `KeepAlive.run_wsgi` replaces werkzeug's: the app reads
the body through a stream bounded by Content-Length (or de-chunked), whatever it leaves unread
is consumed after the answer, and the answer is framed (Content-Length or chunked, no body for
HEAD, 1xx, 204, 304) so the connection can carry the next request.

A kept-alive connection idle for `IDLE_TIMEOUT_S` is closed (S3 closes idle ones too), and
`close_idle()` closes those idle now, for a server that stops: otherwise a client's pool could
keep talking to a sandbox that was stopped.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from typing import IO, Any, cast

from werkzeug.serving import DechunkedInput, WSGIRequestHandler
from werkzeug.wsgi import LimitedStream

log = logging.getLogger("tui.sandbox")

IDLE_TIMEOUT_S = 20.0  # between requests only; a request in progress has no server timeout

_NO_BODY = {204, 304}

_idle_lock = threading.Lock()  # guards each server's `keepalive_idle` set


def _idle(server: Any) -> set[socket.socket]:
    """The connections of `server` waiting for their next request (`close_idle` shuts them)."""
    idle: set[socket.socket] = server.__dict__.setdefault("keepalive_idle", set())
    return idle


def close_idle(server: Any) -> None:
    """Shut every connection of `server` that waits between requests (a stopping server);
    busy ones close after their answer, since the server's `stopping` flag is set first."""
    server.stopping = True
    with _idle_lock:
        conns = list(_idle(server))
    for conn in conns:
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)


class KeepAlive(WSGIRequestHandler):
    """Mixed in before werkzeug's (or moto's) request handler; see the module docstring."""

    protocol_version = "HTTP/1.1"
    idle_timeout = IDLE_TIMEOUT_S
    # TCP_NODELAY: an answer is written as headers then body; on a kept-alive connection
    # Nagle holds the body until the client's delayed ACK, 40 ms a request.
    disable_nagle_algorithm = True

    def handle(self) -> None:
        self.close_connection = True
        self.handle_one_request()
        while not self.close_connection and self._next_request_arrives():
            self.handle_one_request()

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client went away: nothing to answer
        if getattr(self.server, "stopping", False):
            self.close_connection = True

    def _next_request_arrives(self) -> bool:
        """Wait (at most the idle timeout) for the next request's first byte."""
        with _idle_lock:
            _idle(self.server).add(self.connection)
        try:
            if getattr(self.server, "stopping", False):
                return False
            self.connection.settimeout(self.idle_timeout)
            try:
                # Returns at once with a pipelined request already buffered.
                return bool(self.rfile.peek(1))  # type: ignore[attr-defined]
            except OSError:  # idle too long, or shut by close_idle
                return False
            finally:
                with contextlib.suppress(OSError):
                    self.connection.settimeout(None)
        finally:
            with _idle_lock:
                _idle(self.server).discard(self.connection)

    def log_error(self, format: str, *args: Any) -> None:
        # http.server logs a timed-out or malformed request line here; not for the terminal.
        log.debug("sandbox http: " + format, *args)

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.environ = environ = self.make_environ()
        body = environ["wsgi.input"]
        if not isinstance(body, DechunkedInput):
            try:
                length = max(0, int(environ.get("CONTENT_LENGTH") or 0))
            except ValueError:
                length = 0
                self.close_connection = True  # cannot tell where the next request starts
            body = LimitedStream(cast(IO[bytes], self.rfile), length)
            environ["wsgi.input"] = body
            environ["wsgi.input_terminated"] = True
        head = environ["REQUEST_METHOD"] == "HEAD"
        state: dict[str, Any] = {"status": None, "headers": None, "sent": False, "chunked": False}

        def write(data: bytes) -> None:
            if not state["sent"]:
                state["sent"] = True
                code_str, _, msg = state["status"].partition(" ")
                code = int(code_str)
                state["code"] = code
                self.send_response(code, msg)
                keys = set()
                for key, value in state["headers"]:
                    if key.lower() == "connection":
                        continue  # ours to say
                    self.send_header(key, value)
                    keys.add(key.lower())
                state["bodyless"] = head or code < 200 or code in _NO_BODY
                if "content-length" not in keys and not state["bodyless"]:
                    if self.request_version >= "HTTP/1.1":
                        state["chunked"] = True
                        self.send_header("Transfer-Encoding", "chunked")
                    else:
                        self.close_connection = True  # the body ends where the connection does
                if self.close_connection or getattr(self.server, "stopping", False):
                    self.send_header("Connection", "close")
                self.end_headers()
            if data and not state["bodyless"]:
                if state["chunked"]:
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                else:
                    self.wfile.write(data)
            self.wfile.flush()

        def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            if exc_info:
                try:
                    if state["sent"]:
                        raise exc_info[1].with_traceback(exc_info[2])
                finally:
                    exc_info = None
            elif state["headers"] is not None:
                raise AssertionError("Headers already set")
            state["status"], state["headers"] = status, headers
            return write

        def execute(app: Any) -> None:
            result = app(environ, start_response)
            try:
                for data in result:
                    write(data)
                if not state["sent"]:
                    write(b"")
                if state["chunked"]:
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
            finally:
                if hasattr(result, "close"):
                    result.close()

        try:
            execute(self.server.app)
            # What the app left unread (an error answered before the body) goes, so the next
            # request line is where the next read starts.
            while body.read(1 << 20):
                pass
        except self.connection_dropped_errors as exc:
            self.close_connection = True
            self.connection_dropped(exc, environ)
        except Exception as exc:
            self.close_connection = True
            if self.server.passthrough_errors:
                raise
            if not state["sent"]:
                from werkzeug.exceptions import InternalServerError

                state["status"] = state["headers"] = None
                with contextlib.suppress(Exception):
                    execute(InternalServerError())
            from werkzeug.debug.tbtools import DebugTraceback

            # As werkzeug's own run_wsgi reports it.
            text = DebugTraceback(exc).render_traceback_text()
            self.server.log("error", f"Error on request:\n{text}")
