"""Shared helpers for the input-pipeline tests (imported by name; not a conftest, to avoid clashes)."""

from __future__ import annotations

import time
import tracemalloc

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
