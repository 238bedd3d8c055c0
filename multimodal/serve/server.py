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


def launch(app, settings: ServeSettings, *, block: bool = True, log_level: str = "warning",
           start_timeout_s: float = 30.0) -> RunningServer:
    """Serve ``app`` on ``settings.host``/``port`` (validated first); port 0 picks a free port.

    With ``block=True`` this returns when the server stops (Ctrl+C); otherwise
    it returns once the server accepts connections.
    """
    uvicorn = require("uvicorn", "all")
    settings.validate()
    config = uvicorn.Config(app, host=settings.host, port=int(settings.port), log_level=log_level,
                            access_log=False, server_header=False, lifespan="on", timeout_graceful_shutdown=5)
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
