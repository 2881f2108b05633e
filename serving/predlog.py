"""Append-only, row-rotated JSONL prediction log (serving writes, monitoring reads).

Requests never wait on disk: :meth:`PredictionLog.submit` puts a batch of records on a
bounded queue and returns at once; a daemon thread writes and flushes each batch. When the
queue is full or the disk fails, records are dropped and counted, never raised.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from core.hashing import hash_user

__all__ = ["PredictionLog", "hash_user"]

logger = logging.getLogger(__name__)
_STOP = object()


class PredictionLog:
    """Background writer of ``predictions-<UTC yyyymmddTHHMMSS>-<pid>.jsonl`` files.

    Args:
        directory: folder of the log files (created when missing).
        rotate_rows: rows per file before a new file is started.
        max_pending: batches that may wait for the writer before new ones are dropped.
    """

    def __init__(self, directory: Path, rotate_rows: int, max_pending: int = 1024) -> None:
        self.directory = Path(directory)
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
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    self._close_file()
                    return
                self._write(item)
            except Exception:  # noqa: BLE001 - the writer must survive any bad batch
                self.dropped += len(item)
                logger.exception("prediction log: dropped %d records", len(item))
            finally:
                self._queue.task_done()

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
