"""Adaptive batching of model calls across concurrent requests.

Each request (``/predict``: one sample; ``/predict_batch``: many) hands its stacked input
arrays to :meth:`MicroBatcher.run`. One worker feeds the model: while a model call runs,
new requests queue up, and the next call takes everything queued (up to
``max_batch_rows``) as one concatenated batch. Under low load a request is served at once
(no batching window to wait for); under load the batch grows with the queue. This is the
same idea as BentoML's batchable APIs, applied to the stacked feature arrays so requests
are not re-serialised through BentoML's internal proxy.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

Arrays = dict[str, np.ndarray]


class OverloadedError(RuntimeError):
    """More rows are waiting than the batcher accepts; the caller should answer 503."""


class MicroBatcher:
    """Serialises model calls, batching whatever queued while the model was busy.

    Args:
        predict: batch function, inputs -> outputs, all arrays with the batch first.
        max_batch_rows: rows per model call (a request larger than this runs alone).
        max_pending_rows: rows allowed to wait; beyond it :meth:`run` raises.
    """

    def __init__(
        self, predict: Callable[[Arrays], Arrays], max_batch_rows: int, max_pending_rows: int
    ) -> None:
        self._predict = predict
        self.max_batch_rows = max_batch_rows
        self.max_pending_rows = max_pending_rows
        self._queue: deque[tuple[Arrays, int, asyncio.Future[Arrays]]] = deque()
        self._pending_rows = 0
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        # One thread: the model runs one batch at a time, off the event loop.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self.batch_sizes: deque[int] = deque(maxlen=1000)

    async def run(self, inputs: Arrays) -> Arrays:
        """Return the model outputs for ``inputs`` (rows in the same order).

        Raises:
            OverloadedError: too many rows already waiting.
        """
        rows = int(next(iter(inputs.values())).shape[0])
        if self._pending_rows + rows > self.max_pending_rows:
            raise OverloadedError(f"{self._pending_rows} rows waiting for the model")
        if self._worker is None or self._worker.done():
            self._wake = asyncio.Event()
            self._worker = asyncio.get_running_loop().create_task(self._work())
        future: asyncio.Future[Arrays] = asyncio.get_running_loop().create_future()
        self._queue.append((inputs, rows, future))
        self._pending_rows += rows
        assert self._wake is not None
        self._wake.set()
        return await future

    def _take(self) -> list[tuple[Arrays, int, asyncio.Future[Arrays]]]:
        jobs = [self._queue.popleft()]
        total = jobs[0][1]
        while self._queue and total + self._queue[0][1] <= self.max_batch_rows:
            jobs.append(self._queue.popleft())
            total += jobs[-1][1]
        self._pending_rows -= total
        return jobs

    async def _work(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            jobs = self._take()
            sizes = [rows for _, rows, _ in jobs]
            self.batch_sizes.append(sum(sizes))
            try:
                batch = (
                    jobs[0][0]
                    if len(jobs) == 1
                    else {k: np.concatenate([j[0][k] for j in jobs]) for k in jobs[0][0]}
                )
                out = await loop.run_in_executor(self._executor, self._predict, batch)
            except Exception as exc:  # noqa: BLE001 - every waiting request gets the error
                for _, _, future in jobs:
                    if not future.done():
                        future.set_exception(exc)
                continue
            start = 0
            for (_, _, future), stop in zip(jobs, np.cumsum(sizes), strict=True):
                if not future.done():
                    future.set_result({k: v[start:stop] for k, v in out.items()})
                start = int(stop)

    def close(self) -> None:
        """Stop the worker and the model thread."""
        if self._worker is not None:
            self._worker.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
