"""Append-only, row-rotated JSONL prediction log (serving writes, monitoring reads).

Requests never wait on disk: :meth:`PredictionLog.submit` puts a batch of records on a
bounded queue and returns at once; a daemon thread writes and flushes each batch. When the
queue is full or the disk fails, records are dropped and counted, never raised.
:meth:`PredictionLog.submit_deferred` queues raw items instead: the writer thread turns
everything queued at once into records with one ``summarise`` call, so the per-request cost
of building records (a pandas frame per call) leaves the request path and is shared under load.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from core.hashing import hash_user

__all__ = ["PredictionLog", "hash_user"]

logger = logging.getLogger(__name__)
_STOP = object()
_MAX_COALESCED = 256  # deferred items summarised per call


@dataclass(frozen=True)
class _Deferred:
    item: Any
    rows: int


class PredictionLog:
    """Background writer of ``predictions-<UTC yyyymmddTHHMMSS>-<pid>.jsonl`` files.

    Args:
        directory: folder of the log files (created when missing).
        rotate_rows: rows per file before a new file is started.
        max_pending: batches that may wait for the writer before new ones are dropped.
        summarise: turns deferred items (see :meth:`submit_deferred`) into records; it runs
            on the writer thread.
    """

    def __init__(
        self,
        directory: Path,
        rotate_rows: int,
        max_pending: int = 1024,
        summarise: Callable[[list[Any]], list[dict[str, Any]]] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self._summarise = summarise
        self.rotate_rows = rotate_rows
        self.written = 0
        self.dropped = 0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_pending)
        self._file: IO[str] | None = None
        self._rows_in_file = 0
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def submit(self, records: list[dict[str, Any]]) -> bool:
        """Queue records for writing without blocking.

        Returns:
            ``False`` when the records were dropped because the writer is behind.
        """
        if not records:
            return True
        try:
            self._queue.put_nowait(records)
        except queue.Full:
            self.dropped += len(records)
            return False
        return True

    def submit_deferred(self, item: Any, rows: int) -> bool:
        """Queue an item that ``summarise`` turns into ``rows`` records on the writer thread.

        Returns:
            ``False`` when the item was dropped because the writer is behind.

        Raises:
            RuntimeError: if the log was created without ``summarise``.
        """
        if self._summarise is None:
            raise RuntimeError("PredictionLog needs summarise= to accept deferred items")
        try:
            self._queue.put_nowait(_Deferred(item, rows))
        except queue.Full:
            self.dropped += rows
            return False
        return True

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued record is on disk (tests, shutdown); ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)
        return not self._queue.unfinished_tasks

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, stop the writer thread and close the file."""
        self.flush(timeout)
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    def _run(self) -> None:
        pending: Any = None
        while True:
            item = pending if pending is not None else self._queue.get()
            pending, taken = None, 1
            if isinstance(item, _Deferred):
                items = [item]
                # Coalesce what queued meanwhile; keep the first non-deferred for next round.
                while len(items) < _MAX_COALESCED and pending is None:
                    try:
                        following = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    taken += 1
                    if isinstance(following, _Deferred):
                        items.append(following)
                    else:
                        pending, taken = following, taken - 1
                item = items
            try:
                if item is _STOP:
                    self._close_file()
                    return
                if isinstance(item, list) and item and isinstance(item[0], _Deferred):
                    self._write_deferred(item)
                else:
                    self._write(item)
            except Exception:  # noqa: BLE001 - the writer must survive any bad batch
                rows = sum(d.rows for d in item) if isinstance(item[0], _Deferred) else len(item)
                self.dropped += rows
                logger.exception("prediction log: dropped %d records", rows)
            finally:
                for _ in range(taken):
                    self._queue.task_done()

    def _write_deferred(self, items: list[_Deferred]) -> None:
        assert self._summarise is not None
        self._write(self._summarise([d.item for d in items]))

    def _write(self, records: list[dict[str, Any]]) -> None:
        lines = [json.dumps(r, default=str, allow_nan=True) + "\n" for r in records]
        while lines:
            handle = self._current_file()
            room = self.rotate_rows - self._rows_in_file
            chunk, lines = lines[:room], lines[room:]
            handle.write("".join(chunk))
            self._rows_in_file += len(chunk)
            self.written += len(chunk)
        # One flush per batch: a request that got 200 is on disk moments later.
        if self._file is not None:
            self._file.flush()

    def _current_file(self) -> IO[str]:
        if self._file is not None and self._rows_in_file < self.rotate_rows:
            return self._file
        self._close_file()
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = self.directory / f"predictions-{stamp}-{os.getpid()}.jsonl"
        serial = 0
        while path.exists():  # rotating twice within one second; "_" sorts after "."
            serial += 1
            path = self.directory / f"predictions-{stamp}-{os.getpid()}_{serial:04d}.jsonl"
        self._file = path.open("a", encoding="utf-8")
        self._rows_in_file = 0
        return self._file

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.flush()
            self._file.close()
            self._file = None
