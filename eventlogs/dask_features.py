"""Feature building on a Dask cluster: the streaming path's arrays, built by many workers.

The same four passes as :mod:`eventlogs.stream`, with the per-partition and per-bucket work
run as ``dask.distributed`` tasks:

1. the driver reads the Parquet footers (and, for string times, the ``timestamp`` column);
2. map: every partition (a run of row groups) is validated and its rows written to one
   Arrow file per user-hash bucket (the shuffle by user hash), with its own category codes;
3. per bucket: the bucket's pieces are read in file order, duplicates and window rows
   dropped, categories counted before the validation cutoff and row hashes summed;
   the driver fits the vocabulary and the fingerprint from these sums;
4. per bucket: :func:`eventlogs.buckets.bucket_features` (the one ``build_features``)
   writes ``out/{train,val,test}/part-NNNNN.npz``.

The output equals ``prepare_streaming`` with the same ``rows_per_bucket`` shard for shard,
and ``prepare_dataset`` up to sample order. Workers must see ``work_dir`` and ``out`` (one
machine, or a shared file system on a real cluster).
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.config import ProjectConfig
from core.schema import REQUIRED_COLUMNS
from core.splits import Splits
from core.vocab import Vocabulary, vocabulary_from_counts
from eventlogs.buckets import (
    SPLITS,
    BucketCount,
    Window,
    bucket_features,
    clear_shards,
    count_kept,
    filter_bucket,
    finish_output,
    splits_of,
    start_report,
    sum_counts,
    window_of,
)
from eventlogs.formats import FORMATS
from eventlogs.partition import PartitionResult, partition_batches
from eventlogs.stream import StreamReport, write_report
from eventlogs.stream_io import file_columns, is_parquet, iter_batches, scan_times
from eventlogs.validation import DataValidationError, check_drop_share

Piece = tuple[str, np.ndarray]  # a map task's bucket file, and its category codes -> global


@dataclass(frozen=True)
class _Partition:
    """One map task: a run of row groups of one Parquet file."""

    path: Path
    names: tuple[str, ...]
    row_groups: tuple[int, ...]


def parquet_partitions(source: Path, rows_per_partition: int) -> list[_Partition]:
    """Split a Parquet file, or a folder of them (sorted by name), into runs of row groups.

    Raises:
        DataValidationError: not Parquet, no Parquet files, or required columns missing.
    """
    files = sorted(p for p in source.iterdir() if is_parquet(p)) if source.is_dir() else [source]
    if not files:
        raise DataValidationError(f"{source}: folder holds no .parquet files")
    parts = []
    for path in files:
        if not is_parquet(path):
            raise DataValidationError(
                f"{path}: the Dask engine reads Parquet only (.parquet/.pq); "
                "use --streaming for CSV or convert it with `interest data validate`"
            )
        names = tuple(file_columns(path))
        meta = pq.ParquetFile(path).metadata
        run, rows = [], 0
        for group in range(meta.num_row_groups):
            run.append(group)
            rows += meta.row_group(group).num_rows
            if rows >= rows_per_partition:
                parts.append(_Partition(path, names, tuple(run)))
                run, rows = [], 0
        if run:
            parts.append(_Partition(path, names, tuple(run)))
    return parts


def _time_mode(source: Path, parts: list[_Partition], batch_rows: int) -> tuple[int, str]:
    """Rows and the one timestamp mode of every file (as :func:`scan_times` decides it)."""
    rows, modes = 0, set()
    for path in dict.fromkeys(p.path for p in parts):
        n, mode = scan_times(path, file_columns(path), batch_rows)
        rows, modes = rows + n, modes | {mode}
    if len(modes) > 1:
        raise DataValidationError(
            f"{source}: files store 'timestamp' differently ({', '.join(sorted(modes))}); "
            "write every file with the same timestamp type"
        )
    return rows, modes.pop()


def _map_partition(
    part: _Partition,
    index: int,
    work_dir: str,
    *,
    n_buckets: int,
    batch_rows: int,
    time_mode: str,
    window: Window,
    all_columns: bool,
) -> PartitionResult:
    columns = list(part.names) if all_columns else list(REQUIRED_COLUMNS)
    batches = iter_batches(part.path, list(part.names), columns, batch_rows, list(part.row_groups))
    return partition_batches(
        batches,
        Path(work_dir),
        n_buckets=n_buckets,
        time_mode=time_mode,
        window=window,
        all_columns=all_columns,
        prefix=f"map-{index:05d}",
    )


def _read_pieces(pieces: list[Piece]) -> pa.Table:
    """A bucket's rows in file order, category codes made global."""
    tables = []
    for path, lut in pieces:
        table = pa.ipc.open_stream(path).read_all()
        cat = pa.array(lut[table.column("cat").to_numpy()].astype(np.int32))
        tables.append(table.set_column(table.schema.get_field_index("cat"), "cat", cat))
    return pa.concat_tables(tables)


def _count_bucket(
    pieces: list[Piece], window: Window, drop_duplicates: bool, splits: Splits, n_categories: int
) -> BucketCount:
    return count_kept(_read_pieces(pieces), window, drop_duplicates, splits, n_categories)


def _features_bucket(pieces: list[Piece], index: int, *args: object) -> dict[str, int]:
    window, drop_duplicates, lut, splits, vocab, config, out = args
    table, _, _ = filter_bucket(_read_pieces(pieces), window, drop_duplicates)
    return bucket_features(table, index, lut, splits, vocab, config, Path(out))


@contextlib.contextmanager
def dask_client(
    scheduler: str | None = None, workers: int = 2, processes: bool = True
) -> Iterator[object]:
    """A client of ``scheduler``, or of a LocalCluster of ``workers`` one-thread workers."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=processes,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def prepare_dask(
    source: Path,
    config: ProjectConfig,
    name: str,
    out: Path,
    client: object,
    *,
    work_dir: Path | None = None,
    rows_per_bucket: int = 3_000_000,
    batch_rows: int = 1_000_000,
    vocab: Vocabulary | None = None,
) -> StreamReport:
    """Build the streaming path's shards with tasks on a ``dask.distributed`` client.

    Args:
        source: canonical Parquet file, or a folder of Parquet files (read in name order).
        client: a ``dask.distributed.Client`` (see :func:`dask_client`).
        work_dir, rows_per_bucket, batch_rows, vocab: as :func:`prepare_streaming`;
            ``batch_rows`` is also the partition size (rows per map task).

    Returns:
        The :class:`StreamReport` (also written to ``out/report.json``).

    Raises:
        DataValidationError: not Parquet, unusable file or too many invalid rows.
        ValueError: on leaky or history-less splits, or a split without samples.
    """
    start, stages = time.perf_counter(), {}
    source, out = Path(source), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    parts = parquet_partitions(source, batch_rows)
    rows, mode = _time_mode(source, parts, batch_rows)
    n_buckets = max(1, math.ceil(rows / rows_per_bucket))
    window = window_of(config)
    drop_duplicates = FORMATS["canonical"].drop_duplicates
    stages["scan_s"] = time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="dask-", dir=work_dir or out) as tmp:
        futures = [
            client.submit(
                _map_partition,
                part,
                i,
                tmp,
                n_buckets=n_buckets,
                batch_rows=batch_rows,
                time_mode=mode,
                window=window,
                all_columns=drop_duplicates,
                pure=False,
            )
            for i, part in enumerate(parts)
        ]
        mapped: list[PartitionResult] = client.gather(futures)
        merged, buckets = _merge(mapped, n_buckets)
        stages["partition_s"] = time.perf_counter() - start - sum(stages.values())
        report = start_report(merged, source)
        splits = splits_of(merged, config)
        n_cat = len(merged.categories)
        args = (window, drop_duplicates, splits, n_cat)
        counted = client.gather([client.submit(_count_bucket, p, *args) for p in buckets])
        counts, content, kept = sum_counts(counted, merged.categories, report)
        check_drop_share(report, config.data.max_drop_share)
        if vocab is None:
            vocab = vocabulary_from_counts(counts[counts > 0], config.features)
        stages["count_s"] = time.perf_counter() - start - sum(stages.values())
        clear_shards(out)
        lut = vocab.encode(np.asarray(merged.categories, dtype=object))
        args = (window, drop_duplicates, lut, splits, vocab, config, str(out))
        written = client.gather(
            [client.submit(_features_bucket, p, i, *args) for i, p in enumerate(buckets)]
        )
        samples = {s: sum(w[s] for w in written) for s in SPLITS}
        stages["features_s"] = time.perf_counter() - start - sum(stages.values())
    fingerprint = finish_output(out, name, config, vocab, splits, samples, kept, content)
    return write_report(source, out, merged, report, samples, n_buckets, start, stages, fingerprint)


def _merge(
    mapped: list[PartitionResult], n_buckets: int
) -> tuple[PartitionResult, list[list[Piece]]]:
    """One PartitionResult over all map tasks, and each non-empty bucket's pieces in order.

    Categories are numbered by first appearance in file order, as the single pass does.
    """
    merged = PartitionResult(buckets=[], categories=[], dropped={})
    codes: dict[str, int] = {}
    pieces: list[list[Piece]] = [[] for _ in range(n_buckets)]
    for result in mapped:
        lut = np.array([codes.setdefault(c, len(codes)) for c in result.categories], np.int32)
        merged.rows_read += result.rows_read
        merged.rows_valid += result.rows_valid
        for key, n in result.dropped.items():
            merged.dropped[key] = merged.dropped.get(key, 0) + n
        for key, n in result.missing_per_column.items():
            merged.missing_per_column[key] += n
        if result.first_ns is not None and result.last_ns is not None:
            lo, hi = result.first_ns, result.last_ns
            merged.first_ns = lo if merged.first_ns is None else min(merged.first_ns, lo)
            merged.last_ns = hi if merged.last_ns is None else max(merged.last_ns, hi)
        for path in result.buckets:
            pieces[int(path.stem.rsplit("-", 1)[1])].append((str(path), lut))
    merged.categories = list(codes)
    return merged, [p for p in pieces if p]
