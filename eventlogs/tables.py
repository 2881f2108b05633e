"""Read CSV or Parquet files as tables of strings, with errors that name the file and column.

Every column is read as strings, so ids never pass through floats (19-digit REES46
category ids survive) and short or undecodable rows fail loudly instead of being padded
with nulls. Both :mod:`eventlogs.formats` (item metadata) and :mod:`eventlogs.loaders`
(event logs) read through here.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from eventlogs.validation import DataValidationError

PARQUET_SUFFIXES = (".parquet", ".pq")
_SNIFF_BYTES = 1 << 16


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
