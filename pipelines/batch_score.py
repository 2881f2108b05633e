"""Batch scoring (``interest predict``): every user of an event log, as of one cutoff.

The registered version's bundle scores the log through :mod:`modelkit.scoring`, the code the
registered MLflow pyfunc runs, which builds features with the training/serving feature code:
each row holds what ``/predict`` would answer for that user's events before the cutoff.

A canonical CSV or Parquet log is read once, in batches, and hash-partitioned by user
(:func:`eventlogs.partition.partition_events`, the out-of-core feature path's pass); each
bucket is then scored and appended to the output, so memory is bounded by one bucket, not
the log. Other formats are converted in memory (:func:`eventlogs.loaders.load_events`) and
scored in chunks of users. Duplicate rows and rows outside ``data.window_*`` are dropped as
the training path drops them. The output is written to a temporary file next to ``out`` and
renamed when complete: a failed run leaves no partial table.
"""

from __future__ import annotations

import math
import os
import resource
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.config import ProjectConfig
from core.encoding import EncodedEvents, encode_events
from modelkit.bundle import Bundle, load_bundle
from modelkit.registry import download_bundle, registry_client, resolve_version
from modelkit.scoring import as_cutoff, empty_prediction_table, score_encoded


@dataclass(frozen=True)
class BatchScoreResult:
    """What a batch-scoring run read and wrote."""

    out: Path
    model_name: str
    model_version: str
    cutoff: pd.Timestamp
    rows_read: int  # event rows in the file
    users: int  # users with at least one kept event
    users_scored: int  # users with an event in the history window before the cutoff
    chunks: int  # buckets (canonical logs) or user chunks scored one at a time
    seconds: float
    peak_rss_mb: float  # ru_maxrss of the whole process, so far

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "out": str(self.out), "cutoff": self.cutoff.isoformat()}


class _TableWriter:
    """Appends prediction tables to one Parquet file (created on the first call)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None

    def write(self, frame: pd.DataFrame) -> None:
        if self._writer is None:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            self._schema = table.schema
            self._writer = pq.ParquetWriter(self.path, self._schema)
        else:
            table = pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False)
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is None:  # no user had history: an empty table with the columns
            self.write(empty_prediction_table())
        assert self._writer is not None
        self._writer.close()


def _canonical_chunks(
    source: Path,
    config: ProjectConfig,
    bundle: Bundle,
    work: Path,
    rows_per_chunk: int,
    batch_rows: int,
) -> tuple[int, int, Iterator[EncodedEvents]]:
    """(rows in the file, buckets, each bucket's encoded events): the out-of-core path."""
    from eventlogs.stream_io import file_columns, scan_times

    rows, mode = scan_times(source, file_columns(source), batch_rows)
    n_buckets = max(1, math.ceil(rows / rows_per_chunk))
    chunks = _bucket_events(source, config, bundle, work, n_buckets, batch_rows, mode)
    return rows, n_buckets, chunks


def _bucket_events(
    source: Path,
    config: ProjectConfig,
    bundle: Bundle,
    work: Path,
    n_buckets: int,
    batch_rows: int,
    time_mode: str,
) -> Iterator[EncodedEvents]:
    """Partition the log by user (one read), then yield one bucket's kept events at a time."""
    from eventlogs.buckets import encode_bucket, filter_bucket, read_bucket, window_of
    from eventlogs.formats import FORMATS
    from eventlogs.partition import partition_events

    drop_duplicates = FORMATS["canonical"].drop_duplicates
    window = window_of(config)
    part = partition_events(
        source,
        work,
        n_buckets=n_buckets,
        batch_rows=batch_rows,
        time_mode=time_mode,
        window=window,
        all_columns=drop_duplicates,
    )
    lut = bundle.vocab.encode(np.asarray(part.categories, dtype=object))
    for path in part.buckets:
        table, _, _ = filter_bucket(read_bucket(path), window, drop_duplicates)
        if table.num_rows:
            yield encode_bucket(table, lut, bundle.vocab)


def _user_chunks(
    events: pd.DataFrame, bundle: Bundle, users_per_chunk: int
) -> Iterator[EncodedEvents]:
    """Encoded events of ``users_per_chunk`` users at a time (in-memory formats)."""
    codes, _ = pd.factorize(events["user_id"])
    for first in range(0, int(codes.max(initial=-1)) + 1, users_per_chunk):
        chosen = (codes >= first) & (codes < first + users_per_chunk)
        yield encode_events(events.loc[chosen], bundle.vocab)


def score_log(
    config: ProjectConfig,
    source: Path,
    cutoff: Any,
    out: Path,
    *,
    version: str = "champion",
    top_k: int | None = None,
    rows_per_chunk: int = 3_000_000,
    batch_rows: int = 1_000_000,
    users_per_chunk: int = 50_000,
) -> BatchScoreResult:
    """Score every user of an event log with a registered version; write a Parquet table.

    Args:
        config: tracking URI and model name, ``data`` (format, window) and ``serving.top_k``.
        source: the event log (CSV or Parquet, in ``config.data.format``).
        cutoff: predict as of this time (naive means UTC); later events are not used.
        out: the Parquet file to write (:data:`modelkit.scoring.PREDICTION_TABLE_COLUMNS`).
        version: registry alias (``champion``) or version number.
        top_k: ranked categories per user (default ``serving.top_k``).
        rows_per_chunk: canonical logs: target event rows per bucket scored at once.
        batch_rows: canonical logs: rows per read batch.
        users_per_chunk: other formats: users scored at once.

    Raises:
        LookupError: the model, alias or version does not exist, or has no bundle.
        DataValidationError: the log is unusable (the message names file and column).
        ValueError: a bad cutoff.
    """
    start = time.perf_counter()
    stamp = as_cutoff(cutoff, "--cutoff")
    name = config.registry.model_name
    number = str(resolve_version(registry_client(config), name, version).version)
    with tempfile.TemporaryDirectory(prefix="model-") as tmp:
        bundle = load_bundle(download_bundle(config, number, Path(tmp)))
    result = score_file(
        config,
        bundle,
        source,
        stamp,
        out,
        model_version=number,
        top_k=top_k,
        rows_per_chunk=rows_per_chunk,
        batch_rows=batch_rows,
        users_per_chunk=users_per_chunk,
    )
    return replace(result, seconds=time.perf_counter() - start)


def score_file(
    config: ProjectConfig,
    bundle: Bundle,
    source: Path,
    cutoff: Any,
    out: Path,
    *,
    model_version: str,
    top_k: int | None = None,
    rows_per_chunk: int = 3_000_000,
    batch_rows: int = 1_000_000,
    users_per_chunk: int = 50_000,
) -> BatchScoreResult:
    """Score every user of an event log with a loaded bundle (see :func:`score_log`)."""
    start = time.perf_counter()
    stamp = as_cutoff(cutoff, "--cutoff")
    source, out = Path(source), Path(out)
    name = config.registry.model_name
    k = top_k or config.serving.top_k
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="predict-", dir=out.parent) as tmp:
        if config.data.format == "canonical":
            rows, chunks, parts = _canonical_chunks(
                source, config, bundle, Path(tmp), rows_per_chunk, batch_rows
            )
        else:
            from eventlogs.loaders import load_events

            events = load_events(source, config.data).events
            rows = len(events)
            chunks = max(1, math.ceil(events["user_id"].nunique() / users_per_chunk))
            parts = _user_chunks(events, bundle, users_per_chunk)
        partial = Path(tmp) / "predictions.parquet"
        writer = _TableWriter(partial)
        users = scored = 0
        for enc in parts:
            table = score_encoded(
                bundle, enc, stamp, top_k=k, model_name=name, model_version=model_version
            )
            users += len(enc.user_ids)
            scored += len(table)
            if len(table):
                writer.write(table)
        writer.close()
        os.replace(partial, out)
    return BatchScoreResult(
        out=out,
        model_name=name,
        model_version=model_version,
        cutoff=stamp,
        rows_read=rows,
        users=users,
        users_scored=scored,
        chunks=chunks,
        seconds=time.perf_counter() - start,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
