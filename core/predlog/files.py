"""Prediction-log file names: the one place that builds and parses them (CONTRACT.md).

A file is ``predictions-<UTC yyyymmddTHHMMSS>-<pid>[_NNNN].jsonl``: the time the writer
opened it, the writing process and, for files one process opens within the same second, a
serial (``_`` sorts after ``.``, so names sort in write order).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

LOG_GLOB = "predictions-*.jsonl"
_LOG_NAME = re.compile(r"^predictions-(\d{8}T\d{6})-\d+(?:_\d{4,})?\.jsonl$")
_STAMP = "%Y%m%dT%H%M%S"


def log_file_name(opened: datetime, pid: int, serial: int = 0) -> str:
    """Name the file a writer opens at ``opened`` (UTC if naive); ``serial`` > 0 adds ``_NNNN``."""
    if opened.tzinfo is not None:
        opened = opened.astimezone(UTC)
    suffix = f"_{serial:04d}" if serial else ""
    return f"predictions-{opened.strftime(_STAMP)}-{pid}{suffix}.jsonl"


def parse_log_file_name(name: str) -> datetime | None:
    """Return the UTC time a log file was opened, or ``None`` if ``name`` is not a log file."""
    match = _LOG_NAME.match(name)
    if match is None:
        return None
    return datetime.strptime(match.group(1), _STAMP).replace(tzinfo=UTC)


def log_files(directory: Path, until: datetime | None = None) -> list[Path]:
    """List the log files of ``directory`` in write order.

    Args:
        directory: the prediction log folder.
        until: leave out files opened at or after this UTC time (naive means UTC): they
            hold no record logged before it.
    """
    if until is not None and until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    files = []
    for path in sorted(Path(directory).glob(LOG_GLOB)):
        opened = parse_log_file_name(path.name)
        if opened is not None and (until is None or opened < until):
            files.append(path)
    return files
