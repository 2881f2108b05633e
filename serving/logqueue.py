"""Prediction-log records built and written off the request path (``serving.log_write``).

``queued``: a micro-batch's answers leave as soon as they are built; the batch's
record building and its one ``write`` go into a bounded in-process queue that one
background thread drains in order. :meth:`LogQueue.close` (the service's shutdown) writes
everything queued before it returns, so a normal shutdown loses nothing; a killed server
loses what was still queued (at most ``max_batches`` micro-batches). A full queue drops the
batch and counts its records (``interest_predlog_dropped``) rather than slow the answers;
a failed write is logged and counted (``interest_predlog_failed``).

``sync`` (the default): the records are written before the answers (no 200 without a record in the
kernel; 503 naming the log when it cannot be written), as :mod:`serving.finish` did before.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

import bentoml

logger = logging.getLogger("bentoml.serve.interest")
DROPPED = bentoml.metrics.Counter(
    name="interest_predlog_dropped",
    documentation="Prediction-log records dropped because the log queue was full",
)
#: A queued unit of work: builds a micro-batch's records (run on the log thread).
Build = Callable[[], Sequence[Any]]
_STOP = object()


class LogQueue:
    """Bounded queue of micro-batch records, written by one background thread, in order.

    Args:
        write: writes a batch of records (``PredictionLog.write``).
        max_batches: micro-batches allowed to wait; beyond it :meth:`submit` drops.
        on_failure: called with the number of records whose build or write failed.
    """

    def __init__(
        self,
        write: Callable[[Sequence[Any]], None],
        max_batches: int = 1024,
        on_failure: Callable[[int], None] | None = None,
    ) -> None:
        self._write = write
        self._on_failure = on_failure
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_batches)
        self._closed = False
        self._lock = threading.Lock()  # submit vs close: nothing is queued after the stop
        self.dropped = 0
        self.written = 0
        self._thread = threading.Thread(target=self._drain, name="predlog", daemon=True)
        self._thread.start()

    def submit(self, build: Build, rows: int) -> bool:
        """Queue ``build`` (a micro-batch of ``rows`` records); False if it was dropped.

        Never blocks: a full (or closed) queue drops the batch and counts its rows.
        """
        with self._lock:
            if not self._closed:
                try:
                    self._queue.put_nowait((build, rows))
                    return True
                except queue.Full:
                    pass
        if rows:
            self.dropped += rows
            DROPPED.inc(rows)
            logger.warning("prediction log queue full or closed: %d records dropped", rows)
        return False

    def after(self, step: Callable[[], None]) -> bool:
        """Run ``step`` on the log thread once every batch queued before it is written.

        The shadow's predictions start here, so a shadow record never precedes the served
        one (CONTRACT.md). False if the queue was full (``step`` never runs).
        """

        def run() -> list[Any]:
            step()
            return []

        return self.submit(run, 0)

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            build, rows = item
            try:
                records = build()
                self._write(records)
                self.written += len(records)
            except Exception:  # noqa: BLE001 - keep draining; the failure is logged and counted
                logger.exception("prediction log: %d records could not be written", rows)
                if self._on_failure is not None:
                    self._on_failure(rows)

    def close(self, timeout: float | None = 60.0) -> None:
        """Write everything queued, then stop the thread (later submits are dropped)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(_STOP)  # after every queued batch: they are written first
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("prediction log: still writing after %.0f s at shutdown", timeout)
