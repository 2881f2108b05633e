"""Adaptive batching of model calls across concurrent requests.

Each request (``/predict``: one sample; ``/predict_batch``: many) hands its stacked input
arrays to :meth:`MicroBatcher.run`. One worker feeds the model: while a model call runs,
new requests queue up, and the next call takes everything queued (up to
``max_batch_rows``) as one concatenated batch. Under low load a request is served at once
(no batching window to wait for); under load the batch grows with the queue. This is the
same idea as BentoML's batchable APIs, applied to the stacked feature arrays so requests
are not re-serialised through BentoML's internal proxy.

Small requests (at most ``loop_rows`` rows) take a cheaper path while no batch is on the
threads: they gather on the event loop. The first of them yields to the loop a few times,
so that requests already received are parsed, encoded and join it, then runs the model and
``finish`` for the whole group on the loop itself: no thread hop, which costs more than a
small model call (each hop waits for a core; ~1-2 ms each on a loaded 2-core machine).
A lone request is a group of one; under load the group is whatever arrived meanwhile.

An optional ``finish`` step runs once per model batch on its own thread, in batch order,
before any request of that batch is answered: the service builds the responses there and
writes the batch's prediction-log records with one write. Meanwhile the model thread is
already computing the next batch, so the step costs latency, not model throughput. Rows
count as pending until their request is answered, so a slow ``finish`` also ends in 503s
rather than an unbounded backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

Arrays = dict[str, np.ndarray]
Finish = Callable[[list[Any], list[Arrays]], list[Any]]
Observe = Callable[[str, float, int], None]  # (stage, seconds, requests)
_Job = tuple[Arrays, int, Any, "asyncio.Future[Any]", float]  # ..., enqueued (perf_counter)


class OverloadedError(RuntimeError):
    """More rows are waiting than the batcher accepts; the caller should answer 503."""


class MicroBatcher:
    """Serialises model calls, batching whatever queued while the model was busy.

    Args:
        predict: batch function, inputs -> outputs, all arrays with the batch first.
        max_batch_rows: rows per model call (a request larger than this runs alone).
        max_pending_rows: rows allowed to wait or be in flight; beyond it :meth:`run` raises.
        finish: optional ``finish(contexts, outputs) -> results``, one item per request of a
            model batch (the ``context`` given to :meth:`run` and that request's output
            rows); its results are what :meth:`run` returns. If it raises, every request of
            the batch gets the exception.
        observe: optional ``observe(stage, seconds, requests)`` for the ``queue`` (per
            request) and ``model`` (per batch, counted once per request) timings.
        loop_rows: requests of at most this many rows gather on the event loop while the
            model and finish threads are idle (0: every request takes the threads).
        gather_yields: the most times the first request of a group yields to the loop for
            others to join (it stops early once a yield brings nobody new).
        coming: optional ``coming() -> int``: requests received but not yet handed to
            :meth:`run` (parsing, encoding). Before a model call on the thread, the batcher
            waits for them, at most ``max_wait_s``, while the batch is below
            ``max_batch_rows``: a few larger model calls cost less than many small ones.
        max_wait_s: see ``coming``.
    """

    def __init__(
        self,
        predict: Callable[[Arrays], Arrays],
        max_batch_rows: int,
        max_pending_rows: int,
        finish: Finish | None = None,
        observe: Observe | None = None,
        loop_rows: int = 0,
        gather_yields: int = 8,
        coming: Callable[[], int] | None = None,
        max_wait_s: float = 0.02,
    ) -> None:
        self._coming = coming
        self.max_wait_s = max_wait_s
        self._predict = predict
        self._finish = finish
        self._observe = observe
        self.loop_rows = loop_rows
        self.gather_yields = gather_yields
        self.max_batch_rows = max_batch_rows
        self.max_pending_rows = max_pending_rows
        self._queue: deque[_Job] = deque()
        self._group: deque[_Job] = deque()  # gathering on the event loop
        self._pending_rows = 0
        self._threaded_rows = 0  # rows queued for, or in, the model and finish threads
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        # One thread: the model runs one batch at a time, off the event loop.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        # One thread: finish steps run in batch order (the log keeps that order).
        self._finisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="finish")
        self.batch_sizes: deque[int] = deque(maxlen=1000)

    async def run(self, inputs: Arrays, context: Any = None) -> Any:
        """Return the outputs for ``inputs`` (rows in order), or ``finish``'s result for them.

        Args:
            inputs: this request's stacked input arrays.
            context: handed to ``finish`` with this request's outputs.

        Raises:
            OverloadedError: too many rows already waiting.
        """
        rows = int(next(iter(inputs.values())).shape[0])
        if self._pending_rows + rows > self.max_pending_rows:
            raise OverloadedError(f"{self._pending_rows} rows waiting for the model")
        if rows <= self.loop_rows and self._threaded_rows == 0:
            return await self._on_loop(inputs, rows, context)
        if self._worker is None or self._worker.done():
            self._wake = asyncio.Event()
            self._worker = asyncio.get_running_loop().create_task(self._work())
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((inputs, rows, context, future, time.perf_counter()))
        self._pending_rows += rows
        self._threaded_rows += rows
        assert self._wake is not None
        self._wake.set()
        return await future

    def _take(self, queue: deque[_Job]) -> list[_Job]:
        jobs = [queue.popleft()]
        total = jobs[0][1]
        while queue and total + queue[0][1] <= self.max_batch_rows:
            jobs.append(queue.popleft())
            total += jobs[-1][1]
        return jobs

    def _settle(
        self,
        jobs: list[_Job],
        results: list[Any] | None,
        exc: BaseException | None,
        threaded: bool = True,
    ) -> None:
        rows = sum(job[1] for job in jobs)
        self._pending_rows -= rows
        if threaded:
            self._threaded_rows -= rows
        for i, job in enumerate(jobs):
            future = job[3]
            if future.done():
                continue
            if exc is not None:
                future.set_exception(exc)
            else:
                assert results is not None
                future.set_result(results[i])

    def _finished(self, jobs: list[_Job], done: asyncio.Future[list[Any]]) -> None:
        if done.cancelled():
            self._settle(jobs, None, RuntimeError("the batcher was closed"))
        elif done.exception() is not None:
            self._settle(jobs, None, done.exception())
        else:
            self._settle(jobs, done.result(), None)

    async def _work(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            while self._group:  # a group gathering on the loop runs its model call first
                await asyncio.sleep(0)
            await self._wait_for_coming()
            jobs = self._take(self._queue)
            sizes = [job[1] for job in jobs]
            started = time.perf_counter()
            self.batch_sizes.append(sum(sizes))
            try:
                batch = _concat(jobs)
                out, model_s = await loop.run_in_executor(self._executor, self._timed, batch)
            except Exception as exc:  # noqa: BLE001 - every waiting request gets the error
                self._settle(jobs, None, exc)
                continue
            self._observed(jobs, started, model_s)
            parts = _split(out, sizes)
            if self._finish is None:
                self._settle(jobs, parts, None)
                continue
            contexts = [job[2] for job in jobs]
            try:
                done = loop.run_in_executor(self._finisher, self._finish, contexts, parts)
            except RuntimeError as exc:  # the finisher was shut down
                self._settle(jobs, None, exc)
                continue
            # Not awaited: the model takes the next batch while this one finishes.
            done.add_done_callback(lambda f, jobs=jobs: self._finished(jobs, f))

    async def _wait_for_coming(self) -> None:
        if self._coming is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_s
        while (
            self._coming() > 0
            and sum(job[1] for job in self._queue) < self.max_batch_rows
            and loop.time() < deadline
        ):
            await asyncio.sleep(0.001)

    async def _on_loop(self, inputs: Arrays, rows: int, context: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._group.append((inputs, rows, context, future, time.perf_counter()))
        self._pending_rows += rows
        if len(self._group) == 1:  # the first of a group gathers, then serves it all
            try:
                seen = 0
                for _ in range(self.gather_yields):
                    await asyncio.sleep(0)
                    if len(self._group) == seen:
                        break
                    seen = len(self._group)
            finally:  # also when cancelled: the others of the group are served
                self._drain()
        return await future

    def _drain(self) -> None:
        # Synchronous on the loop: nobody joins meanwhile, and the threads are idle (the
        # group formed while they were), so the log order is kept.
        while self._group:
            jobs = self._take(self._group)
            sizes = [job[1] for job in jobs]
            started = time.perf_counter()
            self.batch_sizes.append(sum(sizes))
            try:
                out, model_s = self._timed(_concat(jobs))
                self._observed(jobs, started, model_s)
                parts = _split(out, sizes)
                results = (
                    parts if self._finish is None else self._finish([job[2] for job in jobs], parts)
                )
            except Exception as exc:  # noqa: BLE001 - every request of the group gets it
                self._settle(jobs, None, exc, threaded=False)
                continue
            self._settle(jobs, results, None, threaded=False)

    def _observed(self, jobs: list[_Job], started: float, model_s: float) -> None:
        if self._observe is not None:
            for job in jobs:
                self._observe("queue", started - job[4], 1)
            self._observe("model", model_s, len(jobs))

    def _timed(self, batch: Arrays) -> tuple[Arrays, float]:
        start = time.perf_counter()
        out = self._predict(batch)
        return out, time.perf_counter() - start

    def close(self) -> None:
        """Stop the worker and the model thread; let a running ``finish`` step complete.

        Safe from any thread (a replaced model's batcher is closed by a retiring thread).
        """
        worker = self._worker
        if worker is not None and not worker.done():
            loop = worker.get_loop()
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                worker.cancel()
            else:
                with contextlib.suppress(RuntimeError):  # that loop is already closed
                    loop.call_soon_threadsafe(worker.cancel)
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._finisher.shutdown(wait=True, cancel_futures=True)


def _concat(jobs: list[_Job]) -> Arrays:
    if len(jobs) == 1:
        return jobs[0][0]
    return {k: np.concatenate([j[0][k] for j in jobs]) for k in jobs[0][0]}


def _split(out: Arrays, sizes: list[int]) -> list[Arrays]:
    if len(sizes) == 1:
        return [out]
    stops = np.cumsum(sizes).tolist()
    return [
        {k: v[a:b] for k, v in out.items()} for a, b in zip([0, *stops[:-1]], stops, strict=True)
    ]
