"""What makes the scheduled monitoring pass safe to repeat: a lock, a cooldown and a ledger.

The pass itself (drift -> retrain -> gate -> redeploy) is composed in :mod:`pipelines.monitor`.

State lives under ``<state>/monitoring/``:
    ``run.lock``     held (``fcntl.flock``, non-blocking) for the whole run, so two schedulers
                     never retrain at once; the second one is refused at once.
    ``ledger.json``  the windows already handled (keyed by window start/end and the champion
                     version they were checked against) and the time of the last retrain.
A window is recorded only after its decision is final (no drift, or the promotion gate has
finished), so a run that fails half-way is simply retried by the next one.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import pandas as pd

from core.config import ProjectConfig

LOCK_FILE = "run.lock"
LEDGER_FILE = "ledger.json"


class LockHeldError(RuntimeError):
    """Another monitoring run holds the lock."""


def monitoring_dir(config: ProjectConfig) -> Path:
    """Return ``<state>/monitoring`` (created when missing)."""
    path = config.paths.resolved().state_dir / "monitoring"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def run_lock(path: Path) -> Iterator[IO[str]]:
    """Hold an exclusive, non-blocking ``flock`` on ``path`` for the ``with`` block.

    The lock dies with the process, so a crashed run never leaves a stale lock behind.

    Raises:
        LockHeldError: naming the file and the pid written by the holder.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise LockHeldError(
            f"another monitoring run holds the lock {path} (pid {holder})"
        ) from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield handle
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def window_key(start: datetime, end: datetime, champion: str | None) -> str:
    """Ledger key of a window checked against a champion version."""
    return f"{pd.Timestamp(start).isoformat()}/{pd.Timestamp(end).isoformat()}@v{champion}"


@dataclass
class Ledger:
    """Handled windows and the last retrain, persisted as JSON (written atomically)."""

    path: Path
    windows: dict[str, dict[str, Any]]
    last_retrain: str | None = None

    @classmethod
    def load(cls, path: Path) -> Ledger:
        """Read the ledger at ``path`` (an empty one when the file does not exist).

        Raises:
            ValueError: if the file is not a ledger (names the file).
        """
        if not path.is_file():
            return cls(path, {})
        try:
            data = json.loads(path.read_text())
            return cls(path, dict(data["windows"]), data.get("last_retrain"))
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(
                f"monitoring ledger {path} is unreadable ({err}); move it away"
            ) from err

    def is_handled(self, key: str) -> bool:
        """Say whether a window's decision is already final."""
        return key in self.windows

    def record(self, key: str, entry: dict[str, Any], *, retrained_at: datetime | None) -> None:
        """Mark a window handled (and a retrain done) and save at once."""
        self.windows[key] = entry
        if retrained_at is not None:
            self.last_retrain = pd.Timestamp(retrained_at).isoformat()
        self.save()

    def save(self) -> None:
        """Write to a temporary file, then rename: a crash never leaves half a ledger."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        payload = {"windows": self.windows, "last_retrain": self.last_retrain}
        tmp.write_text(json.dumps(payload, indent=1, sort_keys=True, default=str))
        os.replace(tmp, self.path)


def cooldown_left(ledger: Ledger, cooldown: str, now: datetime) -> pd.Timedelta | None:
    """Time left before another retrain is allowed, or ``None`` when none is left.

    Raises:
        ValueError: if ``cooldown`` is not a duration such as ``1h``.
    """
    try:
        span = pd.Timedelta(cooldown)
    except ValueError:
        raise ValueError(f"monitoring.cooldown {cooldown!r} is not a duration such as 1h") from None
    if ledger.last_retrain is None:
        return None
    left = pd.Timestamp(ledger.last_retrain) + span - pd.Timestamp(now)
    return left if left > pd.Timedelta(0) else None


def aligned_window(now: datetime, length: str) -> tuple[datetime, datetime]:
    """The last complete window of ``length`` before ``now``, aligned to multiples of it.

    Aligned windows make scheduled runs idempotent: every run within the same period
    checks the same window and finds it in the ledger once it is handled.

    Raises:
        ValueError: if ``length`` is not a positive duration.
    """
    try:
        span = pd.Timedelta(length)
    except ValueError:
        raise ValueError(f"--window {length!r} is not a duration such as 1h or 24h") from None
    if span <= pd.Timedelta(0):
        raise ValueError(f"--window must be positive, got {length!r}")
    end = pd.Timestamp(now).floor(span)
    return (end - span).to_pydatetime(), end.to_pydatetime()
