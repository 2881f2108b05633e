"""Read event logs (CSV or Parquet) into canonical events, with a validation report.

Files are read with pyarrow, every column as strings, so ids never pass through floats
(19-digit REES46 category ids survive) and short or undecodable rows fail loudly instead of
being padded with nulls. Layouts live in :mod:`core.formats`; row checks in
:mod:`core.validation`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from core.config import DataConfig
from core.formats import FORMATS
from core.schema import conform
from core.validation import (
    DataValidationError,
    ValidationReport,
    clean_events,
    require_columns,
)

PARQUET_SUFFIXES = (".parquet", ".pq")
_SNIFF_BYTES = 1 << 16


@dataclass
class LoadResult:
    """Canonical events (see :func:`core.schema.conform`) and how they were obtained."""

    events: pd.DataFrame
    report: ValidationReport


def _strings(table: pa.Table) -> pd.DataFrame:
    def mapper(kind: pa.DataType) -> pd.api.extensions.ExtensionDtype | None:
        return pd.StringDtype("pyarrow") if kind == pa.string() else None

    return table.to_pandas(types_mapper=mapper)


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataValidationError(f"{path}: unreadable Parquet file: {exc}") from exc
    # Integer and dictionary ids become strings, like the CSV reader's.
    for i, column in enumerate(table.schema):
        kind = column.type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        if pa.types.is_integer(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind):
            table = table.set_column(i, column.name, table.column(i).cast(pa.string()))
    return _strings(table)


def first_line(path: Path) -> str:
    """Return the first line of a (possibly compressed) text file, decoded as UTF-8.

    Raises:
        DataValidationError: if the line is not UTF-8 text.
    """
    with pa.input_stream(str(path), compression="detect") as stream:
        head = stream.read(_SNIFF_BYTES)
    line = head.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        return line.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataValidationError(
            f"{path}: first line is not UTF-8 text (byte {exc.start}): {line[:80]!r}"
        ) from exc


def explain_arrow_error(path: Path, names: Sequence[str], exc: Exception) -> DataValidationError:
    """Turn an Arrow CSV parse error into a message naming the file, column and likely cause."""
    message = str(exc)
    match = re.search(r"column #(\d+)", message)
    column = ""
    if match and int(match.group(1)) < len(names):
        column = f" in column {names[int(match.group(1))]!r}"
    if "UTF8" in message:
        return DataValidationError(f"{path}: bytes that are not UTF-8 text{column}: {message}")
    return DataValidationError(
        f"{path}: malformed CSV{column} (truncated line or wrong delimiter? expected "
        f"{len(names)} comma-separated columns {', '.join(names)}): {message}"
    )


def read_table(path: Path | str, names: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file with every id column as strings.

    Args:
        path: ``.parquet``/``.pq`` or CSV (optionally compressed, e.g. ``.csv.gz``).
        names: column names to use when the CSV has no header; a file whose first field
            starts with a digit is taken as headerless. ``None``: a header is required.

    Returns:
        The raw table; empty CSV fields are missing values.

    Raises:
        DataValidationError: missing, empty, unreadable, undecodable or malformed file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(f"{path}: file does not exist")
    if path.stat().st_size == 0:
        raise DataValidationError(f"{path}: file is empty (0 bytes)")
    if path.suffix.lower() in PARQUET_SUFFIXES:
        frame = _read_parquet(path)
    else:
        first = first_line(path)
        if not first.strip():
            raise DataValidationError(f"{path}: file is empty (first line blank)")
        headerless = names is not None and re.match(r"\s*\d", first) is not None
        columns = list(names) if headerless else next(csv.reader([first]))
        try:
            table = pacsv.read_csv(
                path,
                read_options=pacsv.ReadOptions(
                    column_names=columns, skip_rows=0 if headerless else 1
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(columns, pa.string()),
                    strings_can_be_null=True,
                    null_values=[""],
                ),
            )
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise explain_arrow_error(path, columns, exc) from exc
        frame = _strings(table)
    if frame.empty:
        raise DataValidationError(
            f"{path}: no data rows (found columns {', '.join(frame.columns)})"
        )
    return frame


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
