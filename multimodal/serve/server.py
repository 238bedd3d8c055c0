"""Run the API app with uvicorn: blocking for ``medany serve``, in a thread for tests and benchmarks."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from ..errors import require
from .errors import ServeConfigError
from .settings import ServeSettings


@dataclass
class RunningServer:
    """A server started with ``block=False``: its base URL and how to stop it."""

    url: str
    server: object
    thread: threading.Thread | None = None

    def close(self, wait_s: float = 10.0) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(wait_s)


def header_deadline_protocol(timeout_s: float):
    """uvicorn's h11 protocol, closing a connection whose request headers take longer than ``timeout_s``.

    uvicorn bounds the idle time between requests but not a request head that
    trickles in a byte at a time (slowloris); each such connection would stay open
    for good. The timer starts when the connection opens and again after each
    response, and stops when a request's headers are complete.
    """
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderDeadlineProtocol(H11Protocol):
        _header_timer = None
        _cycle_at_arm = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def _arm(self) -> None:
            self._cycle_at_arm = self.cycle
            self._header_timer = self.loop.call_later(timeout_s, self._too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _too_slow(self) -> None:
            self._header_timer = None
            if self.cycle is self._cycle_at_arm and not self.transport.is_closing():
                self.transport.close()  # no complete request head arrived in time

        def handle_events(self) -> None:
            super().handle_events()
            if self.cycle is not self._cycle_at_arm:
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._disarm()
                self._arm()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderDeadlineProtocol


def launch(app, settings: ServeSettings, *, block: bool = True, log_level: str = "warning",
           start_timeout_s: float = 30.0) -> RunningServer:
    """Serve ``app`` on ``settings.host``/``port`` (validated first); port 0 picks a free port.

    With ``block=True`` this returns when the server stops (Ctrl+C); otherwise
    it returns once the server accepts connections.
    """
    uvicorn = require("uvicorn", "all")
    settings.validate()
    config = uvicorn.Config(app, host=settings.host, port=int(settings.port), log_level=log_level,
                            access_log=False, server_header=False, lifespan="on", timeout_graceful_shutdown=5,
                            http=header_deadline_protocol(settings.header_timeout_s))
    server = uvicorn.Server(config)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    if block:
        server.run()
        return RunningServer(f"http://{host}:{settings.port}", server)
    thread = threading.Thread(target=server.run, name="medany-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise ServeConfigError(f"The server could not start on {settings.host}:{settings.port} "
                                   "(is the port in use?).")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return RunningServer(f"http://{host}:{port}", server, thread)
