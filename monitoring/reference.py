"""Inputs of a drift check: the champion's reference profile and a window of the prediction log.

The log format is fixed by serving (``serving/predlog.py``): JSONL files named
``predictions-<UTC yyyymmddTHHMMSS>-<pid>[_NNNN].jsonl``, one record per line with
``logged_at`` (ISO UTC) and every ``core.profile.PROFILE_COLUMNS`` value.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from core.config import ProjectConfig
from core.profile import PROFILE_COLUMNS

logger = logging.getLogger(__name__)
REFERENCE_FILE = "reference.parquet"
_LOG_NAME = re.compile(r"^predictions-(\d{8}T\d{6})-\d+(?:_\d+)?\.jsonl$")


def champion_reference(config: ProjectConfig) -> tuple[Path, str]:
    """Return the champion bundle's reference profile and the champion's version.

    The bundle is downloaded once per version into ``<state>/monitoring/reference/v<N>``
    (a cache: a version's artifacts never change).

    Raises:
        FileNotFoundError: if no champion is registered (pass ``--reference`` instead).
        LookupError: if the champion's run has no bundle.
    """
    from modelkit.registry import download_bundle, registered_champion

    name = config.registry.model_name
    champion = registered_champion(config)
    if champion is None:
        raise FileNotFoundError(
            f"model {name!r} has no registered champion at "
            f"{config.paths.resolved().tracking_uri}: pass --reference "
            f"(a model bundle folder or a {REFERENCE_FILE} file)"
        )
    version = champion[0]
    cache = config.paths.resolved().state_dir / "monitoring" / "reference" / f"v{version}"
    found = cache / "bundle" / REFERENCE_FILE
    if not found.is_file():
        partial = cache.with_name(f"{cache.name}.partial")
        if partial.exists():
            shutil.rmtree(partial)
        # Download beside the cache and rename: an interrupted download is never used.
        download_bundle(config, version, partial)
        if cache.exists():
            shutil.rmtree(cache)
        partial.rename(cache)
    if not found.is_file():
        raise FileNotFoundError(f"champion v{version} of {name!r} has no bundle/{REFERENCE_FILE}")
    return found, version


def resolve_reference(config: ProjectConfig) -> Path:
    """Return the registry champion's reference profile (downloaded and cached).

    Raises:
        FileNotFoundError: if no champion is registered (pass ``--reference`` instead).
    """
    return champion_reference(config)[0]


def load_reference(path: Path) -> pd.DataFrame:
    """Read a reference profile from a bundle folder or a parquet file.

    Args:
        path: a bundle folder holding ``reference.parquet`` (directly or under ``bundle/``),
            or the parquet file itself.

    Raises:
        FileNotFoundError: if no reference profile is found at ``path``.
        ValueError: if the profile lacks any ``PROFILE_COLUMNS`` column.
    """
    path = Path(path)
    if path.is_dir():
        candidates = [path / REFERENCE_FILE, path / "bundle" / REFERENCE_FILE]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise FileNotFoundError(f"bundle folder {path} has no {REFERENCE_FILE}")
        path = found
    elif not path.is_file():
        raise FileNotFoundError(f"reference {path} does not exist")
    frame = pd.read_parquet(path)
    missing = [c for c in PROFILE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"reference {path} lacks profile columns {missing}")
    return frame


def _utc(value: datetime | None) -> pd.Timestamp | None:
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    return stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)


def log_files(directory: Path, until: datetime | None = None) -> list[Path]:
    """List the log files in write order, leaving out files opened after ``until``."""
    end = _utc(until)
    files = []
    for path in sorted(Path(directory).glob("predictions-*.jsonl")):
        match = _LOG_NAME.match(path.name)
        if match is None:
            continue
        opened = pd.Timestamp(datetime.strptime(match.group(1), "%Y%m%dT%H%M%S"), tz=UTC)
        if end is not None and opened >= end:
            continue
        files.append(path)
    return files


def _parse(line: bytes) -> dict | None:
    try:
        record = json.loads(line.decode("utf-8", errors="replace"))
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def _read_records(path: Path) -> tuple[list[dict], int, int]:
    """Return a file's records, its damaged lines and its torn last line (0 or 1)."""
    *lines, tail = path.read_bytes().split(b"\n")
    parsed = [_parse(line) for line in lines if line.strip()]
    records = [r for r in parsed if r is not None]
    bad, torn = len(parsed) - len(records), 0
    # Serving ends every record with a newline in the same write: an unparseable last line
    # without one is a write cut short (a killed server) whose request was never answered.
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
    directory: Path, since: datetime | None = None, until: datetime | None = None
) -> pd.DataFrame:
    """Read logged predictions with ``since <= logged_at < until`` (naive times mean UTC).

    Lines that are not complete JSON objects are skipped, never raised: their count is in
    ``frame.attrs["skipped_lines"]``, of which ``frame.attrs["torn_lines"]`` are torn last
    lines (no final newline: a record being written, or cut short by a killed server; such a
    record's request was never answered). The files read are in ``frame.attrs["files"]``.

    Args:
        directory: the prediction log folder (``paths.prediction_log``).
        since: window start, or ``None`` for the beginning of the log.
        until: window end (exclusive), or ``None`` for now.

    Returns:
        One row per record, sorted by ``logged_at`` (a UTC ``datetime64`` column).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"prediction log folder {directory} does not exist")
    files = log_files(directory, until)
    records: list[dict] = []
    skipped = torn = 0
    for path in files:
        rows, bad, cut = _read_records(path)
        records.extend(rows)
        skipped += bad + cut
        torn += cut
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        frame = pd.DataFrame(columns=["logged_at", *PROFILE_COLUMNS])
    frame["logged_at"] = pd.to_datetime(
        frame["logged_at"], utc=True, errors="coerce", format="ISO8601"
    )
    skipped += int(frame["logged_at"].isna().sum())
    keep = frame["logged_at"].notna()
    start, end = _utc(since), _utc(until)
    if start is not None:
        keep &= frame["logged_at"] >= start
    if end is not None:
        keep &= frame["logged_at"] < end
    frame = frame[keep].sort_values("logged_at", kind="stable").reset_index(drop=True)
    frame.attrs["skipped_lines"] = skipped
    frame.attrs["torn_lines"] = torn
    frame.attrs["files"] = [str(p) for p in files]
    return frame
