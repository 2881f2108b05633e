"""Read event logs (CSV or Parquet) into canonical events, with a validation report.

Files are read with pyarrow, every column as strings, so ids never pass through floats
(19-digit REES46 category ids survive) and short or undecodable rows fail loudly instead of
being padded with nulls. Layouts live in :mod:`eventlogs.formats`; row checks in
:mod:`eventlogs.validation`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core.config import DataConfig
from core.schema import conform
from eventlogs.formats import FORMATS
from eventlogs.tables import PARQUET_SUFFIXES, read_table
from eventlogs.textcheck import check_text
from eventlogs.validation import (
    ValidationReport,
    clean_events,
    require_columns,
)


@dataclass
class LoadResult:
    """Canonical events (see :func:`core.schema.conform`) and how they were obtained."""

    events: pd.DataFrame
    report: ValidationReport


def load_events(path: Path | str, config: DataConfig) -> LoadResult:
    """Load an event log in ``config.format`` as canonical events, in file order.

    Args:
        path: the event file (CSV or Parquet by suffix).
        config: format, category key, Tmall year, Amazon item metadata, window, drop limit.

    Returns:
        :class:`LoadResult` with the canonical events and the :class:`ValidationReport`.

    Raises:
        DataValidationError: the file is unusable (message names file and column) or more
            than ``config.max_drop_share`` of its rows were invalid.
    """
    spec = FORMATS[config.format]
    source = str(path)
    raw = read_table(path, spec.names)
    require_columns(raw.columns, spec.required, source)
    frame, notes = spec.convert(raw, config, source)
    report = ValidationReport(source=source, format=config.format, notes=notes)
    kept = clean_events(frame, report, config, drop_duplicates=spec.drop_duplicates)
    kept = check_text(kept, report, config.max_text_chars)
    events = conform(kept)
    return LoadResult(events=events, report=report)


def write_events(events: pd.DataFrame, path: Path | str) -> None:
    """Write canonical events to CSV or Parquet (by suffix); read back with format ``canonical``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = conform(events)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
