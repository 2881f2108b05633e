"""Adaptive batching of model calls across concurrent requests.

Each request (``/predict``: one sample; ``/predict_batch``: many) hands its stacked input
arrays to :meth:`MicroBatcher.run`. One worker feeds the model: while a model call runs,
new requests queue up, and the next call takes everything queued (up to
``max_batch_rows``) as one concatenated batch. Under low load a request is served at once
(no batching window to wait for); under load the batch grows with the queue. This is the
same idea as BentoML's batchable APIs, applied to the stacked feature arrays so requests
are not re-serialised through BentoML's internal proxy.

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
        alone: optional ``alone() -> bool``: no other request is being served right now. A
            request of at most ``inline_rows`` rows that arrives then, with nothing pending,
            runs the model and ``finish`` on the caller's thread: no thread hop, which costs
            more than a small model call (each hop waits for a core; ~1-2 ms each on a
            loaded 2-core machine). Under concurrency requests take the batching path.
        inline_rows: see ``alone`` (0: never inline).
    """

    def __init__(
        self,
        predict: Callable[[Arrays], Arrays],
        max_batch_rows: int,
        max_pending_rows: int,
        finish: Finish | None = None,
        observe: Observe | None = None,
        alone: Callable[[], bool] | None = None,
        inline_rows: int = 1,
    ) -> None:
        self._predict = predict
        self._finish = finish
        self._observe = observe
        self._alone = alone
        self.inline_rows = inline_rows
        self.max_batch_rows = max_batch_rows
        self.max_pending_rows = max_pending_rows
        self._queue: deque[_Job] = deque()
        self._pending_rows = 0
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
        if self._pending_rows == 0 and rows <= self.inline_rows and self._alone and self._alone():
            return self._inline(inputs, context)
        if self._worker is None or self._worker.done():
            self._wake = asyncio.Event()
            self._worker = asyncio.get_running_loop().create_task(self._work())
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((inputs, rows, context, future, time.perf_counter()))
        self._pending_rows += rows
        assert self._wake is not None
        self._wake.set()
        return await future

    def _take(self) -> list[_Job]:
        jobs = [self._queue.popleft()]
        total = jobs[0][1]
        while self._queue and total + self._queue[0][1] <= self.max_batch_rows:
            jobs.append(self._queue.popleft())
            total += jobs[-1][1]
        return jobs

    def _settle(
        self, jobs: list[_Job], results: list[Any] | None, exc: BaseException | None
    ) -> None:
        self._pending_rows -= sum(job[1] for job in jobs)
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
            jobs = self._take()
            sizes = [job[1] for job in jobs]
            started = time.perf_counter()
            self.batch_sizes.append(sum(sizes))
            try:
                batch = (
                    jobs[0][0]
                    if len(jobs) == 1
                    else {k: np.concatenate([j[0][k] for j in jobs]) for k in jobs[0][0]}
                )
                out, model_s = await loop.run_in_executor(self._executor, self._timed, batch)
            except Exception as exc:  # noqa: BLE001 - every waiting request gets the error
                self._settle(jobs, None, exc)
                continue
            if self._observe is not None:
                for job in jobs:
                    self._observe("queue", started - job[4], 1)
                self._observe("model", model_s, len(jobs))
            stops = np.cumsum(sizes).tolist()
            parts = [
                {k: v[a:b] for k, v in out.items()}
                for a, b in zip([0, *stops[:-1]], stops, strict=True)
            ]
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

    def _inline(self, inputs: Arrays, context: Any) -> Any:
        # Nothing is queued, predicting or finishing: the log order is kept.
        self.batch_sizes.append(int(next(iter(inputs.values())).shape[0]))
        out, model_s = self._timed(inputs)
        if self._observe is not None:
            self._observe("queue", 0.0, 1)
            self._observe("model", model_s, 1)
        return out if self._finish is None else self._finish([context], [out])[0]

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
