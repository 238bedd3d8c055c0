"""Shared helpers for the API server tests (imported by name, like tests.multimodal.io.io_helpers).

The tiny random LLM only emits whitespace, so tests that need readable
content swap the backend's token stream for a scripted one (tests/scripted.py); everything before
it (HTTP, validation, media decoding, tools, prompt building, the queue) is
the real code path.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
import re
import socket
import struct
import wave
from contextlib import contextmanager

TINY = dict(llm="tiny-random", vision="tiny_vit", speech="tiny_whisper", max_new_tokens=8, knowledge="none")
NONCE = re.compile(r"nonce-[0-9a-f]{16}")
MiB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running(assistant, **settings):
    """A live server for ``assistant`` on a free loopback port; yields the RunningServer (``.url``)."""
    from multimodal.serve import ServeSettings, build_app, launch

    s = ServeSettings(port=free_port(), **settings)
    app = build_app(assistant, s)
    server = launch(app, s, block=False)
    server.app = app
    try:
        yield server
    finally:
        server.close()


def scripted(assistant, script, **delays):
    """A new Assistant sharing ``assistant``'s loaded models, answering with ``script`` (:mod:`tests.scripted`)."""
    from tests.scripted import scripted as with_script

    return with_script(assistant, script, **delays)


def echo_nonce(prompt: str):
    """Answer ``"echo <nonce> done"`` in several pieces, for the nonce found in the prompt."""
    found = NONCE.findall(prompt)
    nonce = found[-1] if found else "none"
    return ["echo ", nonce[:10], nonce[10:], " done"]


def words(n: int = 20):
    return lambda prompt: [f"w{i} " for i in range(n)]


# -- media -------------------------------------------------------------------


def png_bytes(size: int = 32) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), (180, 40, 40)).save(buf, "PNG")
    return buf.getvalue()


def huge_png_header(side: int = 12000) -> bytes:
    """A tiny PNG file whose header declares ``side x side`` pixels (above the 100 Mpx limit)."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


def dicom_bytes(name: str = "CT_small.dcm") -> bytes:
    from pydicom.data import get_testdata_file

    with open(get_testdata_file(name), "rb") as fh:
        return fh.read()


def wav_bytes(seconds: float = 0.5, rate: int = 16000, freq: float = 440.0) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(12000 * math.sin(2 * math.pi * freq * i / rate)))
                               for i in range(int(rate * seconds))))
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{b64(data)}"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def image_part(data: bytes, mime: str = "image/png") -> dict:
    return {"type": "image_url", "image_url": {"url": data_url(data, mime)}}


def audio_part(data: bytes, fmt: str = "wav") -> dict:
    return {"type": "input_audio", "input_audio": {"data": b64(data), "format": fmt}}


def audit_lines(server) -> list[dict]:
    """The JSON lines a server fixture's audit file holds so far."""
    import json

    path = server.audit_path
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def chat_body(content="Hello", model: str = "medany", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 4, **extra}
