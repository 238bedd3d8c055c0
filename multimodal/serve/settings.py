"""Settings of the OpenAI-compatible API server, safe by default for a shared machine.

Like the web demo (:mod:`demos.settings`), the server listens on localhost
unless told otherwise and refuses any other address without an API key: an
unauthenticated model endpoint on a hospital network would let anyone on it
upload studies. Request bodies, the waiting queue and the time a request may
take are all bounded, and local files are off unless folders are named.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from multimodal.net import is_loopback

from ..io.limits import DEFAULT_LIMITS, InputLimits, MiB
from .errors import ServeConfigError

API_KEYS_ENV = "MEDANY_API_KEYS"
"""Environment variable with comma-separated API keys (keeps keys out of ``ps`` listings)."""


def api_keys_from_env(environ=os.environ) -> tuple[str, ...]:
    """The keys in :data:`API_KEYS_ENV`, empty entries dropped."""
    return tuple(k.strip() for k in environ.get(API_KEYS_ENV, "").split(",") if k.strip())


@dataclass
class ServeSettings:
    """How ``medany serve`` runs.

    Attributes:
        host: address to listen on; ``127.0.0.1`` (this machine only) by default.
        port: TCP port (0 picks a free one).
        api_keys: accepted bearer keys (``Authorization: Bearer KEY``); mandatory
            for a non-loopback ``host``, optional otherwise. Empty: no auth.
        model_name: the model id clients send and ``/v1/models`` lists.
        max_request_bytes: largest request body (JSON including base64 media);
            larger bodies get 413 before they are read. Each decoded medium is
            also capped at this size.
        max_media_items: most images plus recordings in one request.
        max_tokens: largest ``max_tokens`` a client may ask for.
        queue_size: most requests waiting behind the one being answered; when
            full, new requests get 429 with ``Retry-After``.
        request_timeout_s: time from arrival to the last token; a request that
            takes longer (waiting included) is stopped and answered 504.
        max_messages: most messages in one request (413 beyond).
        max_audio_s_per_request: most seconds of audio all recordings of one request
            may last together (each is also bounded by the loaders' own limit).
        allowed_hosts: ``Host`` header names accepted besides the bound address
            (``localhost`` and the loopback addresses when bound to loopback); a
            page on another site that rebinds its DNS to this machine gets 421.
            Bound to ``0.0.0.0`` with no names given, any Host is accepted.
        header_timeout_s: a client must send its request headers within this time.
        body_timeout_s: longest pause while the request body arrives (408 after it).
        allow_local_files: accept ``file://`` URLs and absolute paths in
            ``image_url`` parts, but only inside ``allowed_dirs``.
        allowed_dirs: folders local files may come from (symlinks resolved first).
        audit_log: file that receives one JSON line per chat request; ``None``
            sends the lines to the ``medany.serve.audit`` logger.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    api_keys: tuple[str, ...] = field(default=(), metadata={"cli": "--api-key"})
    model_name: str = "medany"
    max_request_bytes: int = field(default=64 * MiB, metadata={
        "cli": "--max-request-mb", "unit": MiB, "help": "largest request body (JSON with base64 media), in MiB"})
    max_media_items: int = 8
    max_tokens: int = 1024
    queue_size: int = 16
    request_timeout_s: float = field(default=120.0, metadata={"cli": "--timeout"})
    max_messages: int = 64
    max_audio_s_per_request: float = 15 * 60.0
    allowed_hosts: tuple[str, ...] = field(default=(), metadata={"cli": "--allowed-host"})
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    allow_local_files: bool = False
    allowed_dirs: tuple[str, ...] = field(default=(), metadata={
        "cli": "--allow-local-files", "help": "accept file:// image URLs inside this folder; off by default"})
    audit_log: str | None = None

    def validate(self) -> "ServeSettings":
        """Raise :class:`ServeConfigError` for unsafe or impossible settings; returns ``self``."""
        self.api_keys = tuple(self.api_keys)
        self.allowed_dirs = tuple(self.allowed_dirs)
        if not is_loopback(self.host) and not self.api_keys:
            raise ServeConfigError(
                f"Refusing to serve MedAny on {self.host}, which other machines can reach, without an API "
                f"key. Add --api-key KEY (or set {API_KEYS_ENV}), or use --host 127.0.0.1."
            )
        if any(not k or k != k.strip() or len(k) < 8 for k in self.api_keys):
            raise ServeConfigError("API keys must be at least 8 characters, without surrounding spaces.")
        if not 0 <= int(self.port) <= 65535:
            raise ServeConfigError("The port must be between 0 and 65535.")
        if not self.model_name or not self.model_name.strip():
            raise ServeConfigError("The model name must not be empty.")
        if min(self.max_request_bytes, self.max_media_items, self.max_tokens, self.queue_size) <= 0:
            raise ServeConfigError("max_request_bytes, max_media_items, max_tokens and queue_size must be positive.")
        if not min(self.request_timeout_s, self.header_timeout_s, self.body_timeout_s,
                   self.max_audio_s_per_request) > 0 or self.max_messages <= 0:
            raise ServeConfigError("max_messages, max_audio_s_per_request and the timeouts must be positive.")
        self.allowed_hosts = tuple(h.strip().lower() for h in self.allowed_hosts if h.strip())
        if self.allow_local_files:
            if not self.allowed_dirs:
                raise ServeConfigError("Local files need at least one allowed folder (--allow-local-files DIR).")
            missing = [d for d in self.allowed_dirs if not Path(d).is_dir()]
            if missing:
                raise ServeConfigError(f"Allowed folder(s) not found: {', '.join(missing)}.")
        return self

    def input_limits(self) -> InputLimits:
        """The loaders' budgets, with each medium capped at ``max_request_bytes``."""
        return DEFAULT_LIMITS.capped(self.max_request_bytes)

    def host_allowed(self, header: str | None) -> bool:
        """Whether a request's ``Host`` header names this server (see ``allowed_hosts``)."""
        name = _host_name(header or "")
        if name in self.allowed_hosts:
            return True
        bound = self.host.strip("[]").lower()
        if bound in ("0.0.0.0", "::", ""):
            return not self.allowed_hosts
        if is_loopback(bound):
            return name in ("localhost", "127.0.0.1", "::1", bound)
        return name == bound

    def resolved_dirs(self) -> tuple[Path, ...]:
        """``allowed_dirs`` with symlinks and ``..`` resolved (empty unless local files are on)."""
        if not self.allow_local_files:
            return ()
        return tuple(Path(d).resolve() for d in self.allowed_dirs)


def _host_name(header: str) -> str:
    """``"Example.org:8000"`` -> ``"example.org"``; ``"[::1]:8000"`` -> ``"::1"``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header
