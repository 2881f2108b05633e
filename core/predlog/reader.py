"""Read a window of the prediction log into a frame, tolerating torn lines (CONTRACT.md)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from core.predlog.files import log_files
from core.predlog.record import RECORD_COLUMNS

logger = logging.getLogger(__name__)


def _utc(value: datetime | str | None) -> pd.Timestamp | None:
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    return stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)


def _parse(line: bytes) -> dict | None:
    try:
        record = json.loads(line.decode("utf-8", errors="replace"))
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def _read_file(path: Path) -> tuple[list[dict], int, int]:
    """Return a file's records, its damaged lines and its torn last line (0 or 1)."""
    *lines, tail = path.read_bytes().split(b"\n")
    parsed = [_parse(line) for line in lines if line.strip()]
    records = [r for r in parsed if r is not None]
    bad, torn = len(parsed) - len(records), 0
    # The writer ends every record with a newline in the same write: an unparseable last
    # line without one is a write cut short (a killed server) whose request got no answer.
    if tail.strip():
        last = _parse(tail)
        if last is not None:
            records.append(last)
        else:
            torn = 1
            logger.warning(
                "prediction log %s: skipped a torn last line (%d bytes)", path, len(tail)
            )
    return records, bad, torn


def read_prediction_log(
    directory: Path, since: datetime | str | None = None, until: datetime | str | None = None
) -> pd.DataFrame:
    """Read the records with ``since <= logged_at < until`` (naive times mean UTC).

    Lines that are not complete JSON objects are skipped, never raised: their count is in
    ``frame.attrs["skipped_lines"]``, of which ``frame.attrs["torn_lines"]`` are torn last
    lines (no final newline: a record being written, or cut short by a killed server; such a
    record's request was never answered). The files read are in ``frame.attrs["files"]``.

    Args:
        directory: the prediction log folder (``paths.prediction_log``).
        since: window start, or ``None`` for the beginning of the log.
        until: window end (exclusive), or ``None`` for now.

    Returns:
        One row per record, columns named as the JSON keys (:data:`RECORD_COLUMNS` for
        records of this version), sorted by ``logged_at`` (a UTC ``datetime64`` column).

    Raises:
        FileNotFoundError: if ``directory`` does not exist.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"prediction log folder {directory} does not exist")
    start, end = _utc(since), _utc(until)
    files = log_files(directory, None if end is None else end.to_pydatetime())
    records: list[dict] = []
    skipped = torn = 0
    for path in files:
        rows, bad, cut = _read_file(path)
        records.extend(rows)
        skipped += bad + cut
        torn += cut
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        frame = pd.DataFrame(columns=list(RECORD_COLUMNS))
    frame["logged_at"] = pd.to_datetime(
        frame["logged_at"], utc=True, errors="coerce", format="ISO8601"
    )
    skipped += int(frame["logged_at"].isna().sum())
    keep = frame["logged_at"].notna()
    if start is not None:
        keep &= frame["logged_at"] >= start
    if end is not None:
        keep &= frame["logged_at"] < end
    frame = frame[keep].sort_values("logged_at", kind="stable").reset_index(drop=True)
    frame.attrs.update(skipped_lines=skipped, torn_lines=torn, files=[str(p) for p in files])
    return frame
