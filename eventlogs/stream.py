"""Out-of-core feature building: the results of ``prepare_dataset`` on logs too big for memory.

Features are per user, so users are hash-partitioned into buckets (:mod:`eventlogs.partition`)
and each bucket goes through the in-memory feature code unchanged:

1. scan ``timestamp`` (row count, how times parse);
2. validate and partition every batch, tracking the first and last event time;
3. per bucket: drop duplicates/window rows, count categories before the validation cutoff,
   sum the content hash -> vocabulary and fingerprint;
4. per bucket: :func:`core.encoding.encode_codes` + :func:`core.features.build_features`,
   written as ``out/{train,val,test}/part-NNNNN.npz`` shards.

Peak memory is one read batch or one bucket, not the log. Results equal ``prepare_dataset``
on ``load_events`` output (same vocabulary, fingerprint, cutoffs and samples; only the
sample order differs: by bucket, then cutoff, then user).
"""

from __future__ import annotations

import json
import logging
import math
import resource
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.config import ProjectConfig
from core.dataset import DataFingerprint
from core.progress import Say
from core.splits import Splits
from core.vocab import Vocabulary, vocabulary_from_counts
from eventlogs.buckets import (
    SPLITS,
    Window,
    bucket_features,
    clear_shards,
    count_kept,
    filter_bucket,
    finish_output,
    read_bucket,
    splits_of,
    start_report,
    sum_counts,
    window_of,
)
from eventlogs.formats import FORMATS
from eventlogs.partition import PartitionResult, partition_events
from eventlogs.stream_io import file_columns, iter_parts, load_split, scan_times
from eventlogs.validation import ValidationReport, check_drop_share

__all__ = ["StreamReport", "iter_parts", "load_split", "prepare_streaming", "write_report"]

logger = logging.getLogger(__name__)


@dataclass
class StreamReport:
    """What a streaming run read, kept and wrote, and what it cost."""

    source: str
    out: str
    rows_read: int
    rows_kept: int
    dropped: dict[str, int]
    notes: list[str]
    samples: dict[str, int]
    buckets: int
    seconds: float
    peak_rss_mb: float  # ru_maxrss of the whole process, so far
    fingerprint: DataFingerprint
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def prepare_streaming(
    source: Path,
    config: ProjectConfig,
    name: str,
    out: Path,
    *,
    work_dir: Path | None = None,
    rows_per_bucket: int = 3_000_000,
    batch_rows: int = 1_000_000,
    vocab: Vocabulary | None = None,
    vocab_until: str = "val",
    say: Say | None = None,
) -> StreamReport:
    """Build train/val/test shards from a canonical CSV or Parquet file, out of core.

    Args:
        source: event log in the ``canonical`` format.
        config: ``data`` (window, ``max_drop_share``), ``features`` and ``split`` are read.
        name: dataset name recorded in the fingerprint.
        out: output folder (old ``part-*.npz`` shards in its split folders are replaced).
        work_dir: where the temporary bucket files go (default: inside ``out``).
        rows_per_bucket: target rows per bucket; one bucket's arrays and features must
            fit in memory.
        batch_rows: rows per read batch.
        vocab: reuse this vocabulary instead of fitting one.
        vocab_until: fit the vocabulary on events before this cutoff: ``"val"`` for model
            selection, ``"test"`` for the refit on train + validation (``prepare_dataset``).
        say: hears each pass and bucket (``features: bucket 3/34``), for a progress line.

    Returns:
        The :class:`StreamReport` (also written to ``out/report.json``).

    Raises:
        DataValidationError: unusable file or too many invalid rows (see ``load_events``).
        ValueError: on leaky or history-less splits, or a split without samples.
    """
    if vocab_until not in ("val", "test"):
        raise ValueError(f"vocab_until must be 'val' or 'test', got {vocab_until!r}")
    start, stages = time.perf_counter(), {}
    say = say or (lambda _text: None)
    source, out = Path(source), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    say("scanning timestamps")
    rows, mode = scan_times(source, file_columns(source), batch_rows)
    n_buckets = max(1, math.ceil(rows / rows_per_bucket))
    say(f"partitioning {rows:,} rows into {n_buckets} time buckets")
    stages["scan_s"] = time.perf_counter() - start
    window = window_of(config)
    drop_duplicates = FORMATS["canonical"].drop_duplicates
    with tempfile.TemporaryDirectory(prefix="stream-", dir=work_dir or out) as tmp:
        part = partition_events(
            source,
            Path(tmp),
            n_buckets=n_buckets,
            batch_rows=batch_rows,
            time_mode=mode,
            window=window,
            all_columns=drop_duplicates,
        )
        stages["partition_s"] = time.perf_counter() - start - sum(stages.values())
        logger.info("partitioned %s rows into %s buckets", part.rows_read, len(part.buckets))
        say("counting categories and checking drops")
        report = start_report(part, source)
        splits = splits_of(part, config)
        counted = (
            count_kept(
                read_bucket(path),
                window,
                drop_duplicates,
                splits,
                len(part.categories),
                vocab_until,
            )
            for path in part.buckets
        )
        counts, content, kept = sum_counts(counted, part.categories, report)
        check_drop_share(report, config.data.max_drop_share)
        if vocab is None:
            vocab = vocabulary_from_counts(counts[counts > 0], config.features)
        stages["count_s"] = time.perf_counter() - start - sum(stages.values())
        samples = _write_features(part, splits, vocab, config, window, drop_duplicates, out, say)
        stages["features_s"] = time.perf_counter() - start - sum(stages.values())
    fingerprint = finish_output(out, name, config, vocab, splits, samples, kept, content)
    return write_report(source, out, part, report, samples, n_buckets, start, stages, fingerprint)


def write_report(
    source: Path,
    out: Path,
    part: PartitionResult,
    report: ValidationReport,
    samples: dict[str, int],
    n_buckets: int,
    start: float,
    stages: dict[str, float],
    fingerprint: DataFingerprint,
) -> StreamReport:
    """The :class:`StreamReport` of a finished run (``start``: its ``perf_counter``), also
    written to ``out/report.json``."""
    result = StreamReport(
        source=str(source),
        out=str(out),
        rows_read=part.rows_read,
        rows_kept=report.rows_kept,
        dropped=dict(report.dropped),
        notes=report.notes,
        samples=samples,
        buckets=n_buckets,
        seconds=time.perf_counter() - start,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        fingerprint=fingerprint,
        stage_seconds={k: round(v, 2) for k, v in stages.items()},
    )
    (out / "report.json").write_text(json.dumps(result.to_dict(), indent=1, sort_keys=True))
    return result


def _write_features(
    part: PartitionResult,
    splits: Splits,
    vocab: Vocabulary,
    config: ProjectConfig,
    window: Window,
    drop_duplicates: bool,
    out: Path,
    say: Say,
) -> dict[str, int]:
    """Pass 4: features of one bucket at a time, each split written as one shard."""
    clear_shards(out)
    lut = vocab.encode(np.asarray(part.categories, dtype=object))
    samples = dict.fromkeys(SPLITS, 0)
    for index, path in enumerate(part.buckets):
        say(f"features: bucket {index + 1}/{len(part.buckets)}")
        table, _, _ = filter_bucket(read_bucket(path), window, drop_duplicates)
        for split_name, n in bucket_features(table, index, lut, splits, vocab, config, out).items():
            samples[split_name] += n
        logger.info("bucket %s/%s: %s rows", index + 1, len(part.buckets), table.num_rows)
    return samples
