"""The sandbox server: werkzeug's threaded server around the middleware and moto's app.

Start-up is split so the endpoint answers almost at once: the socket is bound and served
immediately, moto is imported in a background thread, and connections that arrive meanwhile
wait (in `finish_request`) until it has loaded. moto's EC2 backend, slow to build, is then
pre-warmed in the same thread.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from types import TracebackType
from typing import Any

from tui.core.errors import WizardError
from tui.core.facts import SANDBOX_CREDENTIALS
from tui.sandbox import moto_adapter
from tui.sandbox.engine import Pacing, TaskStore
from tui.sandbox.faults import Faults, parse_faults, seed_from_env
from tui.sandbox.middleware import SandboxMiddleware

log = logging.getLogger("tui.sandbox")


def _loading_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    # The placeholder until moto's app is in, never reached: requests wait for it to be, or
    # for the middleware to refuse them.
    body = b"sandbox: moto has not loaded"
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [body]


class SandboxServer:
    """The embedded endpoint. `start()` returns at once; `wait_ready()` blocks until moto is in."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        rate: float | None = None,
        faults: str | Faults | None = None,
        *,
        seed: int | None = None,
        task_ttl: float | None = None,
        poll_interval: float | None = None,
        credentials: dict[str, str] | None = None,
    ):
        # Before anything is bound: a moto outside the tested range is one clear line now, not
        # a failure later in the background (the rest of the check needs moto imported).
        moto_adapter.check_installed()
        if seed is None:
            seed = seed_from_env()
        if task_ttl is None:
            from tui.sandbox import TASK_TTL_ENV, float_from_env

            # Tests shorten ExpirationTime to see a task expire; the default is AWS's 7 days.
            task_ttl = float_from_env(TASK_TTL_ENV)
        self.faults = faults if isinstance(faults, Faults) else parse_faults(faults, seed=seed)
        pacing: dict[str, Any] = {}
        if task_ttl is not None:
            pacing["ttl"] = timedelta(seconds=task_ttl)
        if poll_interval is not None:
            pacing["poll_s"] = poll_interval
        self.store = TaskStore(Pacing.for_rate(rate, **pacing))
        from tui.sandbox import credentials_from_env

        # Who may sign: the sandbox's own pair, the environment's pairs, the caller's.
        known = {SANDBOX_CREDENTIALS[0]: SANDBOX_CREDENTIALS[1]}
        known.update(credentials_from_env())
        known.update(credentials or {})
        self.middleware = SandboxMiddleware(_loading_app, self.store, self.faults, known)
        self._ready = threading.Event()
        self._served = threading.Event()
        self._lock = threading.Lock()
        self._buckets: list[tuple[str, str]] = []
        self._error: BaseException | None = None
        self._threads: list[threading.Thread] = []
        self._httpd = _make_httpd(host, port, self.middleware, self._ready)
        bound_host, bound_port = self._httpd.server_address[:2]
        self.host = str(bound_host)
        self.port = int(bound_port)

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> SandboxServer:
        for target, name in ((self._serve, "sandbox-http"), (self._load, "sandbox-load")):
            th = threading.Thread(target=target, name=name, daemon=True)
            self._threads.append(th)
            th.start()
        return self

    def _serve(self) -> None:
        self._httpd.serve_forever(poll_interval=0.1)

    def _load(self) -> None:
        try:
            # Each of these checks moto's server side first (UnsupportedMoto if it changed).
            self._httpd.RequestHandlerClass = moto_adapter.request_handler(self._served.set)
            self.middleware.moto_app = moto_adapter.wsgi_app()
            with self._lock:
                for name, region in self._buckets:
                    moto_adapter.ensure_bucket(name, region)
                self._buckets.clear()
        except moto_adapter.UnsupportedMoto as exc:
            self._fail(exc)
        except BaseException as exc:
            log.exception("the sandbox could not load moto")
            self._fail(exc)
        finally:
            self._ready.set()
        if self._error is None:
            # Building moto's EC2 backend takes a second of CPU; let the first request (usually
            # S3) through before competing with it for the GIL.
            self._served.wait(0.3)
            try:
                from tui.sandbox import api

                moto_adapter.prewarm()  # checks moto's EC2 side first
                api.warm()
            except moto_adapter.UnsupportedMoto as exc:
                self._fail(exc)
            except Exception:
                log.exception("sandbox pre-warm failed (first EC2 request will be slower)")

    def _fail(self, exc: BaseException) -> None:
        """Refuse every request from now on, with one line saying why; wait_ready raises it."""
        self._error = exc
        if isinstance(exc, WizardError):
            message = str(exc)  # said by whoever asks: wait_ready raises it, requests get it
        else:
            message = f"the sandbox could not load moto: {exc}"
        self.middleware.refuse(message)

    def wait_ready(self, timeout: float | None = 30.0) -> bool:
        """True once moto has loaded; raises what stopped it: UnsupportedMoto if moto changed
        (its server side is checked before this returns, its EC2 side just after)."""
        ok = self._ready.wait(timeout)
        if isinstance(self._error, WizardError):
            raise self._error
        if self._error is not None:
            raise RuntimeError(f"the sandbox could not load moto: {self._error}")
        return ok

    def ensure_bucket(self, name: str, region: str = "us-east-1") -> None:
        """Create an S3 bucket if missing: now if moto is in, else as soon as it loads (before
        any request is served)."""
        with self._lock:
            if not self._ready.is_set():
                self._buckets.append((name, region))
                return
        moto_adapter.ensure_bucket(name, region)

    def stop(self) -> None:
        from tui.sandbox.keepalive import close_idle

        self._httpd.shutdown()
        # Kept-alive connections would otherwise go on being answered by a stopped sandbox.
        close_idle(self._httpd)
        self.store.stop()
        self._httpd.server_close()

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _make_httpd(host: str, port: int, app: Any, ready: threading.Event) -> Any:
    from werkzeug.serving import ThreadedWSGIServer

    from tui.sandbox.keepalive import KeepAlive

    class EarlyHandler(KeepAlive):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass

    class Server(ThreadedWSGIServer):
        daemon_threads = True

        def finish_request(self, request: Any, client_address: Any) -> None:
            ready.wait()  # moto is loading: hold the connection rather than refuse it
            self.RequestHandlerClass(request, client_address, self)  # type: ignore[arg-type]

        def handle_error(self, request: Any, client_address: Any) -> None:
            # A client that hung up mid-request is not worth a traceback on the terminal.
            log.debug("connection error from %s", client_address, exc_info=True)

    try:
        return Server(host, port, app, handler=EarlyHandler)
    except SystemExit:
        # werkzeug prints why (e.g. port in use) and exits; a library must not exit.
        raise OSError(f"cannot listen on {host}:{port}") from None
