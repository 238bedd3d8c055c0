"""The work queue on its own: arrival order, the bound, deadlines, cancellation, failures."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from multimodal.serve.errors import ApiError
from multimodal.serve.queue import WorkQueue


def job_work(name, log, gate=None, pieces=1, fail=False):
    def work(should_stop):
        if gate is not None:
            gate.wait(5)
        log.append(name)
        for i in range(pieces):
            if should_stop():
                log.append(f"{name} stopped")
                return None
            time.sleep(0.01)
            yield f"{name}.{i}"
        if fail:
            raise RuntimeError("boom")
        return f"{name} done"

    return work


async def collect(q, job):
    return [event async for event in q.events(job)]


async def until(predicate, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.005)


def test_jobs_run_in_arrival_order_and_the_bound_is_enforced():
    async def main():
        q = WorkQueue(size=3, timeout_s=10)
        q.start()
        log, gate = [], threading.Event()
        jobs = [q.submit(job_work("a", log, gate))]
        await until(lambda: q.running is not None)
        jobs += [q.submit(job_work(name, log, pieces=2)) for name in "bcd"]
        with pytest.raises(ApiError) as info:
            q.submit(job_work("e", log))
        assert info.value.status == 429 and int(info.value.headers["Retry-After"]) >= 1
        gate.set()
        results = await asyncio.gather(*(collect(q, j) for j in reversed(jobs)))  # consumers in any order
        q.close()
        return log, results[::-1]

    log, results = asyncio.run(main())
    assert log == ["a", "b", "c", "d"]
    assert results[0] == [("piece", "a.0"), ("done", "a done")]
    assert results[2] == [("piece", "c.0"), ("piece", "c.1"), ("done", "c done")]


def test_a_job_past_its_deadline_is_skipped_and_the_running_one_stopped():
    async def main():
        q = WorkQueue(size=2, timeout_s=0.3)
        q.start()
        log = []
        first = q.submit(job_work("slow", log, pieces=100))
        second = q.submit(job_work("late", log))
        for job in (first, second):
            with pytest.raises(ApiError) as info:
                await collect(q, job)
            assert info.value.status == 504
        await until(lambda: q.running is None and q.waiting == 0)
        after = await collect(q, q.submit(job_work("next", log)))
        q.close()
        return log, after

    log, after = asyncio.run(main())
    assert log[0] == "slow" and "late" not in log  # the late job's work never ran
    assert after[-1] == ("done", "next done")


def test_a_consumer_that_leaves_cancels_its_job():
    async def main():
        q = WorkQueue(size=2, timeout_s=10)
        q.start()
        log = []
        job = q.submit(job_work("x", log, pieces=1000))
        events = q.events(job)
        assert await anext(events) == ("piece", "x.0")
        await events.aclose()
        await until(lambda: "x stopped" in log or q.running is None)
        q.close()
        return job

    assert asyncio.run(main()).cancelled.is_set()


def test_a_failing_job_reports_its_error_and_the_worker_goes_on():
    async def main():
        q = WorkQueue(size=2, timeout_s=10)
        q.start()
        log = []
        bad = q.submit(job_work("bad", log, fail=True))
        good = q.submit(job_work("good", log))
        with pytest.raises(RuntimeError, match="boom"):
            await collect(q, bad)
        out = await collect(q, good)
        q.close()
        return out

    assert asyncio.run(main())[-1] == ("done", "good done")


def test_a_closed_queue_answers_503():
    async def main():
        q = WorkQueue(size=2, timeout_s=10)
        with pytest.raises(ApiError) as info:
            q.submit(job_work("x", []))
        return info.value

    err = asyncio.run(main())
    assert err.status == 503 and err.headers["Retry-After"]
