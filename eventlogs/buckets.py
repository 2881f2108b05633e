"""Per-bucket steps of out-of-core feature building, shared by every engine.

A bucket holds every valid event of the users hashed to it (:data:`eventlogs.partition.
BUCKET_SCHEMA`). The single-machine pass (:mod:`eventlogs.stream`) and the Dask one
(:mod:`eventlogs.dask_features`) differ only in who runs these functions and where the
bucket's rows come from, so their outputs are the same arrays.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from core.config import ProjectConfig
from core.dataset import HASHED_COLUMNS, DataFingerprint, digest_rows
from core.encoding import EncodedEvents, encode_codes
from core.features import build_features, feature_spec
from core.splits import Splits, splits_from_range
from core.vocab import Vocabulary
from eventlogs.partition import PartitionResult
from eventlogs.stream_io import save_part
from eventlogs.validation import DROP_REASONS, ValidationReport, window_bound

SPLITS = ("train", "val", "test")

Window = tuple[int | None, int | None]  # data.window_start/end in ns; None is open
BucketCount = tuple[np.ndarray, int, int, int, int]  # see count_kept


def window_of(config: ProjectConfig) -> Window:
    """``data.window_start``/``window_end`` as ns since the epoch (``None`` where unset)."""
    bounds = (
        window_bound(config.data.window_start, "window_start"),
        window_bound(config.data.window_end, "window_end"),
    )
    return tuple(None if b is None else b.value for b in bounds)  # type: ignore[return-value]


def splits_of(part: PartitionResult, config: ProjectConfig) -> Splits:
    """The split cutoffs from the first and last valid event time inside the window."""
    if part.first_ns is None or part.last_ns is None:
        raise ValueError("cannot derive split cutoffs from an empty event log")
    first = pd.Timestamp(part.first_ns, unit="ns", tz="UTC")
    last = pd.Timestamp(part.last_ns, unit="ns", tz="UTC")
    return splits_from_range(first, last, config.split, config.features)


def start_report(part: PartitionResult, source: Path) -> ValidationReport:
    """The validation report of the partition pass (duplicates and window drops come later)."""
    report = ValidationReport(source=str(source), format="canonical")
    report.rows_read = part.rows_read
    report.dropped = dict.fromkeys(DROP_REASONS, 0) | part.dropped
    if any(part.missing_per_column.values()):
        counts = ", ".join(f"{col} {n:,}" for col, n in part.missing_per_column.items())
        report.notes.append(f"missing_id per column (a row may miss several): {counts}")
    return report


def filter_bucket(
    table: pa.Table, window: Window, drop_duplicates: bool
) -> tuple[pa.Table, int, int]:
    """Return a bucket's kept rows, and its duplicate and outside-window counts."""
    keep = np.ones(table.num_rows, dtype=bool)
    if drop_duplicates:
        keep = ~pd.Series(table.column("dup_hash").to_numpy()).duplicated(keep="first").to_numpy()
    duplicates = int((~keep).sum())
    times = table.column("time").to_numpy()
    if window[0] is not None:
        keep &= times >= window[0]
    if window[1] is not None:
        keep &= times < window[1]
    outside = int(table.num_rows - duplicates - keep.sum())
    if not keep.all():
        table = table.filter(pa.array(keep))
    return table, duplicates, outside


def count_bucket(
    table: pa.Table, splits: Splits, n_categories: int, vocab_until: str = "val"
) -> tuple[np.ndarray, int]:
    """Category counts before the ``vocab_until`` cutoff and the row-hash sum of kept rows.

    ``"val"`` for model selection, ``"test"`` for the refit (as ``prepare_dataset``).
    """
    until = splits.val if vocab_until == "val" else splits.test
    before = table.column("time").to_numpy() < until.value
    cats = table.column("cat").to_numpy()[before]
    counts = np.bincount(cats, minlength=n_categories).astype(np.int64)
    return counts, int(table.column("row_hash").to_numpy().sum(dtype=np.uint64))


def read_bucket(path: Path) -> pa.Table:
    """All rows of one bucket file written by :mod:`eventlogs.partition`."""
    return pa.ipc.open_stream(str(path)).read_all()


def count_kept(
    table: pa.Table,
    window: Window,
    drop_duplicates: bool,
    splits: Splits,
    n_categories: int,
    vocab_until: str = "val",
) -> BucketCount:
    """Pass 3 for one bucket: (category counts, row-hash sum, kept rows, duplicates, outside)."""
    table, duplicates, outside = filter_bucket(table, window, drop_duplicates)
    counts, total = count_bucket(table, splits, n_categories, vocab_until)
    return counts, total, table.num_rows, duplicates, outside


def sum_counts(
    counted: Iterable[BucketCount], categories: list[str], report: ValidationReport
) -> tuple[pd.Series, int, int]:
    """Pass 3 over all buckets: category counts, content-hash sum and kept rows.

    Duplicate and outside-window drops and ``rows_kept`` are added to ``report``.
    """
    counts = np.zeros(len(categories), dtype=np.int64)
    total, kept = 0, 0
    for bucket_counts, bucket_total, n, duplicates, outside in counted:
        counts += bucket_counts
        total, kept = total + bucket_total, kept + n
        report.dropped["duplicate"] += duplicates
        report.dropped["outside_window"] += outside
    report.rows_kept = kept
    return pd.Series(counts, index=pd.Index(categories, dtype=object)), total % 2**64, kept


def clear_shards(out: Path) -> None:
    """Create the split folders and remove old ``part-*.npz`` shards from them."""
    for split_name in SPLITS:
        (out / split_name).mkdir(parents=True, exist_ok=True)
        for old in (out / split_name).glob("part-*.npz"):
            old.unlink()


def encode_bucket(table: pa.Table, lut: np.ndarray, vocab: Vocabulary) -> EncodedEvents:
    """A bucket's kept rows as encoded events, users in name order.

    Args:
        table: kept rows (:func:`filter_bucket`), ``cat`` as codes ``lut`` maps to ``vocab``.
    """
    users = table.column("user_id").combine_chunks().dictionary_encode()
    names = users.dictionary.to_numpy(zero_copy_only=False).astype(object)
    order = names.argsort(kind="stable")
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    return encode_codes(
        rank[users.indices.to_numpy()],
        names[order],
        table.column("time").to_numpy(),
        lut[table.column("cat").to_numpy()],
        table.column("beh").to_numpy(),
        vocab,
    )


def bucket_features(
    table: pa.Table,
    index: int,
    lut: np.ndarray,
    splits: Splits,
    vocab: Vocabulary,
    config: ProjectConfig,
    out: Path,
) -> dict[str, int]:
    """Pass 4 for one kept bucket: features of every split, written as ``part-{index}``.

    Args:
        table: the bucket's kept rows (:func:`filter_bucket`), ``cat`` as codes that
            ``lut`` maps to vocabulary indices.
    """
    samples = dict.fromkeys(SPLITS, 0)
    if table.num_rows == 0:
        return samples
    cutoffs = {"train": splits.train, "val": [splits.val], "test": [splits.test]}
    encoded = encode_bucket(table, lut, vocab)
    del table
    for split_name in SPLITS:
        arrays = build_features(encoded, cutoffs[split_name], vocab, config.features)
        samples[split_name] = len(arrays)
        if len(arrays):
            save_part(arrays, out / split_name / f"part-{index:05d}.npz")
    return samples


def finish_output(
    out: Path,
    name: str,
    config: ProjectConfig,
    vocab: Vocabulary,
    splits: Splits,
    samples: dict[str, int],
    kept: int,
    content: int,
) -> DataFingerprint:
    """Check every split has samples; write vocabulary, feature spec and fingerprint.

    Raises:
        ValueError: if a split has no samples.
    """
    for split_name, n in samples.items():
        if n == 0:
            raise ValueError(f"{name}: the {split_name} split has no samples")
    fingerprint = DataFingerprint(
        dataset=name,
        rows=kept,
        content_hash=digest_rows(kept, HASHED_COLUMNS, content),
        vocab_hash=vocab.hash,
        cutoffs=splits.to_dict(),
    )
    vocab.save(out / "vocab.json")
    (out / "feature_spec.json").write_text(feature_spec(vocab, config.features).to_json())
    (out / "fingerprint.json").write_text(
        json.dumps(fingerprint.to_dict(), indent=1, sort_keys=True)
    )
    return fingerprint
