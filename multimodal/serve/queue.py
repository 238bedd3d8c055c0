"""A bounded first-come-first-served queue in front of the one model.

One worker thread owns the model and answers jobs strictly in arrival order;
each job streams its pieces back to the event loop of the request that
submitted it through its own channel, so answers can never mix. When
``size`` jobs are already waiting, :meth:`WorkQueue.submit` refuses at once
(429 with ``Retry-After``: the estimated time to drain the queue) instead of
letting work pile up; a closed queue answers 503. Every job has a deadline
(arrival + timeout): a job still waiting at its deadline is skipped, a
running one is asked to stop (``should_stop``) and the request gets 504.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import AsyncIterator, Callable, Iterable

from ..cancel import Cancelled
from .errors import ApiError

Work = Callable[[Callable[[], bool]], Iterable[str]]
"""``work(should_stop)`` runs in the worker thread and yields text pieces; it may return a result."""


def timeout_error(timeout_s: float) -> ApiError:
    return ApiError(504, f"The request did not finish within {timeout_s:g} s.", code="timeout")


@dataclass
class Job:
    """One submitted request: its work, deadline and the channel its events come back on."""

    work: Work
    deadline: float
    loop: asyncio.AbstractEventLoop
    number: int
    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    result: object = None

    def should_stop(self) -> bool:
        return self.cancelled.is_set() or time.monotonic() >= self.deadline

    def cancel(self) -> None:
        self.cancelled.set()

    def emit(self, kind: str, value=None) -> None:
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, value))
        except RuntimeError:  # the request's event loop is gone: nobody is listening
            pass


class WorkQueue:
    """Jobs run one at a time, in arrival order, in a worker thread; at most ``size`` wait.

    ``timeout_s`` bounds each job from submission to its last piece.
    """

    def __init__(self, size: int, timeout_s: float):
        self.size = size
        self.timeout_s = timeout_s
        self._jobs: queue.Queue = queue.Queue(maxsize=size)
        self._numbers = itertools.count(1)
        self._open = False
        self._thread: threading.Thread | None = None
        self._service_s = 1.0  # running mean of how long a job takes, for Retry-After
        self.running: Job | None = None

    # -- lifecycle --------------------------------------------------------

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="medany-serve-worker", daemon=True)
            self._thread.start()
        self._open = True

    def close(self, wait_s: float = 5.0) -> None:
        """Refuse new jobs (503), cancel the running one and stop the worker after the waiting ones."""
        self._open = False
        if self.running is not None:
            self.running.cancel()
        if self._thread is not None:
            try:
                self._jobs.put(None, timeout=wait_s)
            except queue.Full:
                pass
            self._thread.join(wait_s)
            self._thread = None

    @property
    def accepting(self) -> bool:
        """Whether new jobs are taken: started, not closed, and the worker is alive."""
        return self._open and self._thread is not None and self._thread.is_alive()

    @property
    def waiting(self) -> int:
        return self._jobs.qsize()

    def retry_after_s(self) -> int:
        """Seconds until the queue has likely drained: the mean job time times the jobs ahead."""
        return max(1, math.ceil(self._service_s * (self.waiting + 1)))

    # -- submitting and consuming ------------------------------------------

    def check_open(self) -> None:
        """Raise 503/429 now if a job submitted at this moment would be refused."""
        if not self.accepting:
            raise ApiError(503, "The server is not accepting requests right now.", code="unavailable",
                           headers={"Retry-After": str(self.retry_after_s())})
        if self._jobs.full():
            raise self._full()

    def submit(self, work: Work, arrived: float | None = None) -> Job:
        """Queue ``work``; raises :class:`ApiError` 429 (full) or 503 (closed) with ``Retry-After``."""
        self.check_open()
        arrived = time.monotonic() if arrived is None else arrived
        job = Job(work, arrived + self.timeout_s, asyncio.get_running_loop(), next(self._numbers))
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            raise self._full() from None
        return job

    async def events(self, job: Job) -> AsyncIterator[tuple[str, object]]:
        """``("piece", text)`` events of ``job`` until ``("done", result)``; raises its error or 504.

        Leaving the loop early (client gone, timeout) cancels the job.
        """
        finished = False
        try:
            while True:
                remaining = job.deadline - time.monotonic()
                if remaining <= 0:
                    raise timeout_error(self.timeout_s)
                try:
                    kind, value = await asyncio.wait_for(job.events.get(), remaining)
                except asyncio.TimeoutError:
                    raise timeout_error(self.timeout_s) from None
                if kind == "error":
                    finished = True
                    raise value
                yield kind, value
                if kind == "done":
                    finished = True
                    return
        finally:
            if not finished:
                job.cancel()

    # -- the worker -------------------------------------------------------

    def _full(self) -> ApiError:
        return ApiError(429, f"The server is busy ({self.size} requests waiting); retry later.", code="queue_full",
                        headers={"Retry-After": str(self.retry_after_s())})

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if job.should_stop():  # timed out while waiting, or its client left
                job.emit("error", timeout_error(self.timeout_s))
                continue
            self.running = job
            t0 = time.monotonic()
            try:
                self._answer(job)
            finally:
                self.running = None
                job.work = None  # the request's media go with it
                self._service_s = 0.8 * self._service_s + 0.2 * (time.monotonic() - t0)

    def _answer(self, job: Job) -> None:
        pieces = None
        try:
            pieces = iter(job.work(job.should_stop))
            while True:
                if job.should_stop():
                    job.emit("error", timeout_error(self.timeout_s))
                    return
                try:
                    piece = next(pieces)
                except StopIteration as stop:
                    job.result = stop.value
                    job.emit("done", stop.value)
                    return
                job.emit("piece", piece)
        except Cancelled:  # the deadline (or the client leaving) stopped transcription or prefill
            job.emit("error", timeout_error(self.timeout_s))
        except Exception as exc:  # reported to the request; the worker keeps serving
            job.emit("error", exc)
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                try:
                    close()  # stops a generator that was abandoned (timeout, client gone)
                except Exception:
                    pass
