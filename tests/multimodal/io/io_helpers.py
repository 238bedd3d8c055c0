"""Shared helpers for the input-pipeline tests (imported by name; not a conftest, to avoid clashes)."""

from __future__ import annotations

import io
import time
import tracemalloc

import numpy as np
import pytest

MAX_SECONDS = 2.0
MAX_PEAK_BYTES = 64 * 1024 * 1024


def sample_bytes(name: str) -> bytes:
    """Bytes of a DICOM shipped with pydicom / pydicom-data (skips if absent)."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"sample {name} not installed")
    with open(path, "rb") as fh:
        return fh.read()


def assert_fails_fast(exc_type, fn, *args, **kwargs):
    """``fn`` raises exactly-typed ``exc_type`` within 2 s and 64 MiB of new allocations."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(exc_type) as info:
            fn(*args, **kwargs)
    finally:
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < MAX_SECONDS, f"took {elapsed:.2f} s"
    assert peak < MAX_PEAK_BYTES, f"peak {peak / 2**20:.0f} MiB"
    assert str(info.value)  # a human message, never empty
    return info.value


def encode(fmt: str, codec: str, rate: int = 44100, channels: int = 2, seconds: float = 1.0,
           amp: float = 0.5, freq: float = 440.0) -> bytes:
    """A sine tone encoded in-process with PyAV."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout="stereo" if channels == 2 else "mono")
        t = np.arange(int(rate * seconds)) / rate
        tone = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([tone] * channels), format="fltp", layout=stream.layout.name)
        frame.sample_rate = rate
        rs = av.AudioResampler(format=stream.format.name, layout=stream.layout.name, rate=rate,
                               frame_size=stream.codec_context.frame_size or None)
        for f in list(rs.resample(frame)) + list(rs.resample(None)):
            for p in stream.encode(f):
                out.mux(p)
        for p in stream.encode(None):
            out.mux(p)
    return buf.getvalue()
