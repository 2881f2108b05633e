"""Out-of-core pass over a canonical event file: validate rows, hash-partition them by user.

Batches are read with column projection (never the whole file) and checked exactly like
:func:`eventlogs.validation.clean_events` (missing id, unparseable time, unknown behaviour). Valid
rows go, in file order, to one of ``n_buckets`` Arrow IPC files chosen by a hash of the
user id, as compact columns (see :data:`BUCKET_SCHEMA`): every user's events land in one
bucket, so features can be built one bucket at a time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core.dataset import HASHED_COLUMNS
from core.schema import BEHAVIORS, REQUIRED_COLUMNS
from eventlogs.stream_io import file_columns, iter_batches, parse_times

_ID_COLUMNS = ("user_id", "item_id", "category_id")
_MIX = np.uint64(1_000_003)  # the row-hash mixer of core.dataset.hash_events
BUCKET_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("time", pa.int64()),  # ns since the epoch, UTC
        ("cat", pa.int32()),  # code into PartitionResult.categories
        ("beh", pa.int8()),  # core.schema.behavior_index
        ("row_hash", pa.uint64()),  # the per-row term hash_events sums
        ("dup_hash", pa.uint64()),  # all columns read (exact-duplicate detection)
    ]
)


@dataclass
class PartitionResult:
    """What the partitioning pass saw and where it wrote the valid rows."""

    buckets: list[Path]
    categories: list[str]
    rows_read: int = 0
    rows_valid: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    missing_per_column: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(_ID_COLUMNS, 0)
    )
    first_ns: int | None = None  # over valid rows inside the window
    last_ns: int | None = None


def _string_hashes(column: pa.Array) -> tuple[np.ndarray, pa.Array, np.ndarray]:
    """Hash strings through their dictionary: (row hashes, dictionary, row codes)."""
    encoded = pc.dictionary_encode(column)
    uniques = encoded.dictionary.to_numpy(zero_copy_only=False).astype(object)
    hashes = np.append(pd.util.hash_array(uniques), np.uint64(0))  # null -> last entry
    codes = encoded.indices.fill_null(-1).to_numpy()
    return hashes[codes], encoded.dictionary, codes


def _other_hash(column: pa.Array) -> np.ndarray:
    if pa.types.is_string(column.type):
        return _string_hashes(column)[0]
    return pd.util.hash_array(np.asarray(column.to_pandas()))  # nulls: NaN/NaT, equal to each other


class _Buckets:
    """One Arrow IPC stream per bucket, opened on first write, appended in file order."""

    def __init__(self, work_dir: Path, n_buckets: int, prefix: str = "bucket") -> None:
        self.paths = [work_dir / f"{prefix}-{b:05d}.arrow" for b in range(n_buckets)]
        self._writers: dict[int, pa.ipc.RecordBatchStreamWriter] = {}

    def write(self, table: pa.Table, bucket: np.ndarray) -> None:
        order = np.argsort(bucket, kind="stable")  # stable: file order within each bucket
        table, bucket = table.take(order), bucket[order]
        ids = np.unique(bucket)
        bounds = np.searchsorted(bucket, ids, side="left").tolist() + [len(bucket)]
        for i, b in enumerate(ids.tolist()):
            if b not in self._writers:
                self._writers[b] = pa.ipc.new_stream(str(self.paths[b]), BUCKET_SCHEMA)
            part = table.slice(bounds[i], bounds[i + 1] - bounds[i])
            self._writers[b].write_table(part)

    def close(self) -> list[Path]:
        for writer in self._writers.values():
            writer.close()
        return [p for b, p in enumerate(self.paths) if b in self._writers]


@cache
def _behavior_set() -> pa.Array:
    return pa.array(BEHAVIORS, pa.string())


@cache
def _behavior_hash() -> np.ndarray:
    """hash_events' hash of each canonical behaviour name, by behaviour index - 1."""
    return pd.util.hash_array(np.array(BEHAVIORS, dtype=object))


def partition_events(
    path: Path,
    work_dir: Path,
    *,
    n_buckets: int,
    batch_rows: int,
    time_mode: str,
    window: tuple[int | None, int | None] = (None, None),
    all_columns: bool = False,
) -> PartitionResult:
    """Pass 2: validate every batch and append its valid rows to their user's bucket.

    Args:
        path: canonical Parquet or CSV file.
        work_dir: folder for the bucket files.
        n_buckets: number of buckets (users are spread by a hash of their id).
        batch_rows: rows per read batch (bounds memory).
        time_mode: from :func:`scan_times`.
        window: ``data.window_start``/``window_end`` in ns (rows outside still go to the
            buckets: duplicates are dropped before the window, as in ``clean_events``).
        all_columns: read every column so ``dup_hash`` covers the whole row.
    """
    names = file_columns(path)
    columns = names if all_columns else list(REQUIRED_COLUMNS)
    return partition_batches(
        iter_batches(path, names, columns, batch_rows),
        work_dir,
        n_buckets=n_buckets,
        time_mode=time_mode,
        window=window,
        all_columns=all_columns,
    )


def partition_batches(
    batches: Iterable[pa.RecordBatch],
    work_dir: Path,
    *,
    n_buckets: int,
    time_mode: str,
    window: tuple[int | None, int | None] = (None, None),
    all_columns: bool = False,
    prefix: str = "bucket",
) -> PartitionResult:
    """Validate ``batches`` (in file order) and append their valid rows to bucket files.

    The body of :func:`partition_events`, also run per Parquet partition by
    :mod:`eventlogs.dask_features` (each with its own ``prefix`` and category codes).
    """
    result = PartitionResult(buckets=[], categories=[])
    result.dropped = {"missing_id": 0, "unparseable_time": 0, "unknown_behavior": 0}
    categories: dict[str, int] = {}
    buckets = _Buckets(work_dir, n_buckets, prefix)
    try:
        for batch in batches:
            result.rows_read += batch.num_rows
            valid, ns, raw = _check_batch(batch, time_mode, result)
            if not valid.any():
                continue
            kept = batch.filter(pa.array(valid))
            ns, raw = ns[valid], raw[valid]
            table, bucket = _compact(kept, ns, raw, categories, n_buckets, all_columns)
            buckets.write(table, bucket)
            result.rows_valid += kept.num_rows
            _track_range(result, ns, window)
    finally:
        result.buckets = buckets.close()
    result.categories = list(categories)
    return result


def _check_batch(
    batch: pa.RecordBatch, time_mode: str, result: PartitionResult
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count drops by the first failing check, in ``DROP_REASONS`` order; return valid rows."""
    missing = np.zeros(batch.num_rows, dtype=bool)
    for name in _ID_COLUMNS:
        values = batch.column(name)
        empty = pc.or_kleene(pc.is_null(values), pc.equal(values, "")).fill_null(True)
        empty = empty.to_numpy(zero_copy_only=False)
        result.missing_per_column[name] += int(empty.sum())
        missing |= empty
    ns, raw, time_ok = parse_times(batch.column("timestamp"), time_mode)
    known = pc.index_in(batch.column("behavior"), value_set=_behavior_set()).is_valid()
    known = known.to_numpy(zero_copy_only=False)
    result.dropped["missing_id"] += int(missing.sum())
    result.dropped["unparseable_time"] += int((~missing & ~time_ok).sum())
    result.dropped["unknown_behavior"] += int((~missing & time_ok & ~known).sum())
    return ~missing & time_ok & known, ns, raw


def _compact(
    kept: pa.RecordBatch,
    ns: np.ndarray,
    raw: np.ndarray,
    categories: dict[str, int],
    n_buckets: int,
    all_columns: bool,
) -> tuple[pa.Table, np.ndarray]:
    """Valid rows -> bucket columns, and each row's bucket."""
    user_hash = _string_hashes(kept.column("user_id"))[0]
    cat_hash, cat_dict, cat_codes = _string_hashes(kept.column("category_id"))
    to_global = np.array([categories.setdefault(c, len(categories)) for c in cat_dict.to_pylist()])
    beh = pc.index_in(kept.column("behavior"), value_set=_behavior_set()).to_numpy()
    hashes = {
        "user_id": user_hash,
        "item_id": _string_hashes(kept.column("item_id"))[0],
        "category_id": cat_hash,
        "behavior": _behavior_hash()[beh],
        "timestamp": pd.util.hash_array(raw),
    }
    row = np.zeros(kept.num_rows, dtype=np.uint64)
    for name in HASHED_COLUMNS:
        row = row * _MIX ^ hashes[name]
    dup = row
    if all_columns:
        for name in kept.schema.names:
            if name not in HASHED_COLUMNS:
                dup = dup * _MIX ^ _other_hash(kept.column(name))
    table = pa.table(
        [
            kept.column("user_id"),
            pa.array(ns, pa.int64()),
            pa.array(to_global[cat_codes].astype(np.int32)),
            pa.array((beh + 1).astype(np.int8)),
            pa.array(row),
            pa.array(dup),
        ],
        schema=BUCKET_SCHEMA,
    )
    return table, (user_hash % np.uint64(n_buckets)).astype(np.int64)


def _track_range(
    result: PartitionResult, ns: np.ndarray, window: tuple[int | None, int | None]
) -> None:
    inside = np.ones(ns.shape, dtype=bool)
    if window[0] is not None:
        inside &= ns >= window[0]
    if window[1] is not None:
        inside &= ns < window[1]
    if not inside.any():
        return
    lo, hi = int(ns[inside].min()), int(ns[inside].max())
    result.first_ns = lo if result.first_ns is None else min(result.first_ns, lo)
    result.last_ns = hi if result.last_ns is None else max(result.last_ns, hi)
