"""Stopping long work in the middle: a request's deadline reaches transcription and prefill, not only decoding.

The code that runs a request wraps it in :func:`stoppable` with its
``should_stop``; long loops deep inside (Whisper's decoder, llama.cpp's prefill
batches) call :func:`checkpoint`, which raises :class:`Cancelled` once
``should_stop()`` is true. The check lives in a thread-local, so each worker
thread sees only its own request's deadline, and code run outside a request
never stops.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator

_local = threading.local()


class Cancelled(Exception):
    """The request was stopped (its deadline passed, or its client left) before the work finished."""


@contextmanager
def stoppable(should_stop: Callable[[], bool] | None) -> Iterator[None]:
    """Within this block, :func:`checkpoint` raises :class:`Cancelled` once ``should_stop()`` is true."""
    previous = getattr(_local, "should_stop", None)
    _local.should_stop = should_stop
    try:
        yield
    finally:
        _local.should_stop = previous


def checkpoint() -> None:
    """Raise :class:`Cancelled` if the current request should stop (cheap: one call)."""
    check = getattr(_local, "should_stop", None)
    if check is not None and check():
        raise Cancelled("The request was stopped before it finished.")


def stop_requested() -> bool:
    """Whether the current request should stop (for loops that end quietly instead of raising)."""
    check = getattr(_local, "should_stop", None)
    return bool(check is not None and check())
