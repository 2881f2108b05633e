"""The durable prediction-log writer: append-only, row-rotated JSONL files (CONTRACT.md).

Durability contract: a request is answered 200 only after its record is in the kernel.
:meth:`PredictionLog.write` serialises a batch of records (the service passes one
micro-batch at a time) and hands the complete lines to the kernel with one ``os.write``
on a file descriptor opened ``O_APPEND``; there is no Python-side buffer to lose. A killed
server (even ``SIGKILL``) therefore keeps every record whose ``write`` returned; only a
write cut short by the kill itself can leave a torn last line, and that line belongs to
requests that were never answered. Nothing is ``fsync``-ed: records survive the process,
not a power cut of the host (that would cost milliseconds per batch).

Rotation happens between lines: a file gets at most ``rotate_rows`` rows and a batch that
does not fit is split at a line boundary, each part written with one ``os.write``. Files are
created with ``O_EXCL`` and never reopened, so a new process never appends after an old
process's torn line.

When the log cannot be written (disk full, folder gone) :meth:`write` raises
:class:`PredictionLogError` naming the file, and the service answers those requests 503
instead of serving a prediction that leaves no record. A failed write is rolled back
(``ftruncate`` to the last complete line) or, if that fails too, the file is abandoned and
the next write starts a new one, so the torn bytes stay at the end of that file.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from core.predlog.files import log_file_name
from core.predlog.record import PredictionRecord

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)


class PredictionLogError(RuntimeError):
    """Records could not be handed to the kernel; the requests must not be answered 200."""


class PredictionLog:
    """Synchronous writer of :class:`PredictionRecord` lines into rotated log files.

    File names come from :func:`core.predlog.files.log_file_name`.

    Thread-safe: concurrent :meth:`write` calls are serialised and never interleave lines.

    Args:
        directory: folder of the log files (created when missing).
        rotate_rows: rows per file before a new file is started.
    """

    def __init__(self, directory: Path, rotate_rows: int) -> None:
        if rotate_rows < 1:
            raise ValueError(f"rotate_rows must be >= 1, got {rotate_rows}")
        self.directory = Path(directory)
        self.rotate_rows = rotate_rows
        self.written = 0  # records handed to the kernel
        self.failed = 0  # records whose write raised PredictionLogError
        self.path: Path | None = None  # the file being appended to
        self._fd: int | None = None
        self._rows_in_file = 0
        self._bytes_in_file = 0
        self._lock = threading.Lock()

    def write(self, records: Sequence[PredictionRecord]) -> None:
        """Append ``records`` and return once every line is in the kernel.

        Raises:
            PredictionLogError: a record is not JSON-serialisable or the file cannot be
                created or written; none of the records that failed is in the log.
        """
        if not records:
            return
        try:
            lines = [(r.to_json() + "\n").encode() for r in records]
        except (TypeError, ValueError) as exc:
            self.failed += len(records)
            raise PredictionLogError(
                f"prediction log: a record is not serialisable: {exc}"
            ) from exc
        with self._lock:
            done = 0
            try:
                while done < len(lines):
                    fd = self._current_fd()
                    room = self.rotate_rows - self._rows_in_file
                    chunk = lines[done : done + room]
                    self._append(fd, b"".join(chunk))
                    self._rows_in_file += len(chunk)
                    self.written += len(chunk)
                    done += len(chunk)
            except OSError as exc:
                self.failed += len(lines) - done
                raise PredictionLogError(
                    f"prediction log: cannot write {len(lines) - done} records to "
                    f"{self.path or self.directory}: {exc}"
                ) from exc

    def close(self) -> None:
        """Close the current file (records already written stay; nothing is buffered)."""
        with self._lock:
            self._close_fd()

    def _append(self, fd: int, data: bytes) -> None:
        view, sent = memoryview(data), 0
        try:
            while sent < len(data):  # a regular file rarely takes less; finish the chunk
                sent += os.write(fd, view[sent:])
        except OSError:
            self._roll_back(fd)
            raise
        self._bytes_in_file += sent

    def _roll_back(self, fd: int) -> None:
        # Cut a partly written chunk back to the last complete line; failing that, leave
        # the torn tail as the last line of an abandoned file.
        try:
            os.ftruncate(fd, self._bytes_in_file)
        except OSError:
            self._close_fd()

    def _current_fd(self) -> int:
        if self._fd is not None and self._rows_in_file < self.rotate_rows:
            return self._fd
        self._close_fd()
        self.directory.mkdir(parents=True, exist_ok=True)
        opened, serial = datetime.now(UTC), 0
        while True:
            # Rotating twice within one second gets a serial; "_" sorts after ".".
            name = log_file_name(opened, os.getpid(), serial)
            try:
                self._fd = os.open(self.directory / name, _FLAGS, 0o644)
                break
            except FileExistsError:
                serial += 1
        self.path = self.directory / name
        self._rows_in_file = self._bytes_in_file = 0
        return self._fd

    def _close_fd(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            # Nothing is buffered in Python: a failing close loses no written record.
            with contextlib.suppress(OSError):
                os.close(fd)
