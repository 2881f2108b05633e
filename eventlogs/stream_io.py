"""File I/O of the streaming path: canonical batches in, feature shards out.

Batches are read with column projection (never the whole file), with ids as strings and
times parsed exactly as :func:`eventlogs.loaders.load_events` does. Shards are uncompressed
``.npz`` files in the layout :meth:`core.arrays.SequenceArrays.load` reads.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from core.arrays import SequenceArrays
from core.schema import REQUIRED_COLUMNS
from eventlogs.formats import from_arrow, parse_dates, unix_seconds
from eventlogs.tables import PARQUET_SUFFIXES, explain_arrow_error, first_line
from eventlogs.validation import DataValidationError, require_columns


def is_parquet(path: Path) -> bool:
    """True for ``.parquet``/``.pq`` files (the loaders' rule)."""
    return path.suffix.lower() in PARQUET_SUFFIXES


def file_columns(path: Path) -> list[str]:
    """Column names of a Parquet file or a CSV header, checking the file is usable.

    Raises:
        DataValidationError: missing, empty or unreadable file, or required columns absent.
    """
    if not path.is_file():
        raise DataValidationError(f"{path}: file does not exist")
    if path.stat().st_size == 0:
        raise DataValidationError(f"{path}: file is empty (0 bytes)")
    if is_parquet(path):
        try:
            names = pq.read_schema(path).names
        except (pa.ArrowException, OSError) as exc:
            raise DataValidationError(f"{path}: unreadable Parquet file: {exc}") from exc
    else:
        first = first_line(path)
        if not first.strip():
            raise DataValidationError(f"{path}: file is empty (first line blank)")
        names = next(csv.reader([first]))
    require_columns(names, REQUIRED_COLUMNS, str(path))
    return list(names)


def iter_batches(
    path: Path,
    names: list[str],
    columns: list[str],
    batch_rows: int,
    row_groups: list[int] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Yield record batches of ``columns`` only; ids as strings, like the loaders read them.

    ``row_groups`` (Parquet only) reads just those row groups, in order.
    """
    if is_parquet(path):
        try:
            file = pq.ParquetFile(path)
            for batch in file.iter_batches(
                batch_size=batch_rows, row_groups=row_groups, columns=columns
            ):
                yield _as_strings(batch, path)
        except pa.ArrowException as exc:
            raise DataValidationError(f"{path}: unreadable Parquet file: {exc}") from exc
        return
    read = pacsv.ReadOptions(
        column_names=names, skip_rows=1, block_size=min(max(batch_rows * 100, 1 << 20), 1 << 29)
    )
    convert = pacsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()),
        strings_can_be_null=True,
        null_values=[""],
        include_columns=columns,
    )
    try:
        for batch in pacsv.open_csv(path, read_options=read, convert_options=convert):
            yield batch
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise explain_arrow_error(path, names, exc) from exc


def _as_strings(batch: pa.RecordBatch, path: Path) -> pa.RecordBatch:
    arrays = []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
        if pa.types.is_integer(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind):
            column = column.cast(pa.string())
        elif name in REQUIRED_COLUMNS and not (name == "timestamp" and pa.types.is_timestamp(kind)):
            raise DataValidationError(
                f"{path}: column {name!r} has type {kind}; the streaming path reads ids and "
                "behaviours as strings or integers and times as timestamps or strings "
                "(convert the file with eventlogs.loaders.load_events + write_events first)"
            )
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def scan_times(path: Path, names: list[str], batch_rows: int) -> tuple[int, str]:
    """Pass 1: count rows and decide how ``timestamp`` parses (``arrow``, ``unix`` or ``iso``).

    Like :func:`eventlogs.formats.parse_time`, string times are Unix seconds only if every
    value in the **whole** column is digits, so the decision needs this pass first.
    """
    if is_parquet(path):
        meta = pq.ParquetFile(path)
        kind = meta.schema_arrow.field("timestamp").type
        if pa.types.is_timestamp(kind):
            return meta.metadata.num_rows, "arrow"
    rows, digits = 0, True
    for batch in iter_batches(path, names, ["timestamp"], batch_rows):
        rows += batch.num_rows
        digits = digits and pc.all(pc.utf8_is_digit(batch.column(0))).as_py() is not False
    return rows, "unix" if digits else "iso"


def parse_times(column: pa.Array, mode: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (ns, the int64 values hash_events hashes, valid mask) of a timestamp column."""
    if mode == "arrow":
        unit = column.type.unit
        valid = column.is_valid().to_numpy(zero_copy_only=False)
        raw = column.cast(pa.int64()).fill_null(0).to_numpy()
        scale = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[unit]
        return raw * scale, raw, valid  # pandas keeps the file's unit, so hash that
    series = from_arrow(column, pd.RangeIndex(len(column)))
    # The same parsers as eventlogs.formats.parse_time.
    parsed = unix_seconds(series) if mode == "unix" else parse_dates(series)
    valid = parsed.notna().to_numpy()
    ns = parsed.array.asi8.copy()
    ns[~valid] = 0
    return ns, ns, valid


def save_part(arrays: SequenceArrays, path: Path) -> None:
    """Write one shard uncompressed, in the layout :meth:`SequenceArrays.load` reads."""
    arrays.save(path, compress=False)


def iter_parts(out: Path, split: str) -> Iterator[SequenceArrays]:
    """Yield the shards of one split (``train``, ``val`` or ``test``) in bucket order."""
    for path in sorted((Path(out) / split).glob("part-*.npz")):
        yield SequenceArrays.load(path)


def load_split(out: Path, split: str) -> SequenceArrays:
    """Concatenate all shards of one split.

    Raises:
        FileNotFoundError: if ``out/split`` holds no shards.
    """
    parts = list(iter_parts(out, split))
    if not parts:
        raise FileNotFoundError(f"{Path(out) / split}: no part-*.npz shards")
    return SequenceArrays.concat(parts)
