"""Server settings of the web demo, safe by default for a shared machine.

The demo listens on localhost unless told otherwise, and refuses to listen on
any other address without a login: a MedAny server on a hospital network
would otherwise hand anyone on that network an upload form and the model.
Uploads are bounded (``max_file_size``), the request queue is bounded (a full
queue answers "busy" instead of piling up work), and Gradio's telemetry is off.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from multimodal.errors import MedAnyError
from multimodal.io.limits import DEFAULT_LIMITS, InputLimits, MiB
from multimodal.net import is_loopback


class DemoConfigError(MedAnyError, ValueError):
    """The demo settings are unsafe or inconsistent; the message says how to fix them."""


def parse_auth(text: str) -> tuple[str, str]:
    """``"USER:PASS"`` -> ``("USER", "PASS")``; both parts must be non-empty."""
    user, sep, password = (text or "").partition(":")
    if not sep or not user.strip() or not password:
        raise DemoConfigError("Authentication must be given as USER:PASS (both non-empty).")
    return user.strip(), password


@dataclass
class DemoSettings:
    """How the Gradio server runs.

    Attributes:
        host: address to listen on; ``127.0.0.1`` (this machine only) by default.
        port: TCP port.
        max_file_size: largest upload in bytes, enforced by Gradio before the
            file reaches MedAny and again by the loaders.
        queue_size: most requests waiting at once; beyond it users see "busy".
        concurrency: requests that run the models at the same time (one CPU
            model instance: 1).
        auth: ``(user, password)`` required to open the page; mandatory for a
            non-loopback ``host``.
        analytics: Gradio telemetry and version checks (off: no outbound calls).
        quiet: do not print the Gradio banner.
    """

    host: str = "127.0.0.1"
    port: int = 7860
    max_file_size: int = field(default=256 * MiB, metadata={
        "cli": "--max-file-mb", "unit": MiB, "help": "largest upload, in MiB"})
    queue_size: int = 16
    concurrency: int = 1
    auth: tuple[str, str] | None = field(default=None, metadata={
        "cli": "--share-auth", "parse": lambda text: parse_auth(text),
        "help": "USER:PASS required to open the page (or MEDANY_DEMO_AUTH); needed off loopback"})
    analytics: bool = False
    quiet: bool = True

    def validate(self) -> "DemoSettings":
        """Raise :class:`DemoConfigError` for unsafe or impossible settings; returns ``self``."""
        if not is_loopback(self.host) and not self.auth:
            raise DemoConfigError(
                f"Refusing to serve MedAny on {self.host}, which other machines can reach, without a "
                "login. Add --share-auth USER:PASS (or set MEDANY_DEMO_AUTH), or use --host 127.0.0.1."
            )
        if self.auth is not None:
            user, password = self.auth
            if not user or not password:
                raise DemoConfigError("Authentication needs a non-empty user and password.")
        if not 0 <= int(self.port) <= 65535:
            raise DemoConfigError("The port must be between 0 and 65535.")
        if self.max_file_size <= 0 or self.queue_size <= 0 or self.concurrency <= 0:
            raise DemoConfigError("max_file_size, queue_size and concurrency must be positive.")
        return self

    def input_limits(self) -> InputLimits:
        """The loaders' budgets, with the upload size capped at ``max_file_size``."""
        return DEFAULT_LIMITS.capped(self.max_file_size)

    def apply_environment(self) -> None:
        """Switch Gradio's telemetry off process-wide (it reads this before any Blocks exists)."""
        if not self.analytics:
            os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

    def launch_kwargs(self) -> dict:
        """Keyword arguments for ``gr.Blocks.launch`` (validated first)."""
        self.validate()
        return {
            "server_name": self.host,
            "server_port": int(self.port),
            "auth": self.auth,
            "auth_message": "MedAny research demo: sign in with the credentials you were given.",
            "max_file_size": int(self.max_file_size),
            "share": False,  # never open a public tunnel
            "show_error": False,  # only our own gr.Error messages reach the page
            "quiet": self.quiet,
            "ssr_mode": False,  # no Node server: one process, one port
            "enable_monitoring": False,
            "mcp_server": False,
            "pwa": False,
            "inbrowser": False,
        }
