"""One JSON line per chat request: what ran, on which inputs, with what outcome. No patient data.

A line holds the time, the request id, the served model name, the LLM and
encoder names, the sha256 of each installed projector, the sha256 and size of
each input medium, the HTTP status (and error code), token counts and the
latency. It never holds the question, the answer, a transcript, DICOM
metadata or a file name: the hashes let an auditor match a request to a study
they already hold without the log revealing anything about it.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timezone

log = logging.getLogger("medany.serve.audit")


def stack_identity(info: dict, model_name: str) -> dict:
    """The model part of every line: served name, LLM and encoder names, projector sha256s."""
    llm = info.get("llm")
    ident = {"model": model_name, "llm": getattr(llm, "name", None) if llm is not None else None, "encoders": {},
             "projectors": {}}
    for kind in ("image", "audio"):
        entry = info.get(kind) or {}
        if entry.get("name"):
            ident["encoders"][kind] = entry["name"]
        projector = entry.get("projector") or {}
        if projector:
            ident["projectors"][kind] = projector.get("sha256")
    return ident


def log_to_stderr() -> None:
    """Show the audit logger's lines on stderr (``medany serve`` without ``--audit-log``)."""
    import sys

    if not any(getattr(h, "medany_audit", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.medany_audit = True
        log.addHandler(handler)
    log.setLevel(logging.INFO)


class AuditLog:
    """Appends audit lines to ``path`` (thread-safe), or to the ``medany.serve.audit`` logger."""

    def __init__(self, identity: dict, path: str | None = None):
        self.identity = identity
        self.path = path
        self._lock = threading.Lock()

    def record(self, *, request_id: str, status: int, latency_s: float, inputs=(), stream: bool = False,
               code: str | None = None, prompt_tokens: int | None = None,
               completion_tokens: int | None = None, endpoint: str = "chat.completions") -> dict:
        """Write one line; ``inputs`` are objects with ``kind``, ``sha256`` and ``size`` (``MediaDigest``)."""
        line = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "request_id": request_id,
            "endpoint": endpoint,
            **self.identity,
            "inputs": [{"kind": m.kind, "sha256": m.sha256, "bytes": m.size} for m in inputs],
            "stream": bool(stream),
            "status": int(status),
            "code": code,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "latency_s": round(float(latency_s), 4),
        }
        text = json.dumps(line, separators=(",", ":"))
        if self.path is None:
            log.info("%s", text)
        else:
            with self._lock, open(self.path, "a", encoding="utf-8") as fh:
                fh.write(text + "\n")
        return line
