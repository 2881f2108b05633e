"""Sequence features: the one code path for training arrays and single serving requests.

Events are encoded once into :class:`EncodedEvents` (numpy, sorted by user then time);
every cutoff is then a handful of vectorised passes: per-user offsets by a binary search
over all users at once, a fancy-index gather for the last ``N`` events and ``bincount``
histograms for periods; samples are processed in chunks of :data:`CHUNK_SAMPLES` to bound
temporaries. Shapes and meanings are documented in :mod:`core.arrays`. Hours of day are UTC.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from core.arrays import FeatureSpec, SequenceArrays
from core.config import FeatureConfig
from core.encoding import EncodedEvents, encode_arrays, encode_events
from core.labels import build_labels
from core.periods import (
    HOUR_NS,
    duration_ns,
    flatten_ranges,
    histogram,
    normalize_rows,
    period_ns,
    search_ranges,
    to_ns,
)
from core.schema import BEHAVIORS, CORE_BEHAVIORS
from core.vocab import Vocabulary

#: Samples per chunk: bounds the (chunk, P, C1) histogram temporaries.
CHUNK_SAMPLES = 65_536
# behaviour index -> position in CORE_BEHAVIORS, -1 for padding and non-core behaviours.
__all__ = [
    "EncodedEvents",
    "build_features",
    "build_inputs_at",
    "encode_arrays",
    "encode_events",
    "feature_spec",
]

_CORE_LUT = np.array(
    [-1] + [CORE_BEHAVIORS.index(b) if b in CORE_BEHAVIORS else -1 for b in BEHAVIORS]
)


def feature_spec(vocab: Vocabulary, config: FeatureConfig) -> FeatureSpec:
    """Return the sizes a model needs for this vocabulary and feature config."""
    return FeatureSpec(
        max_events=config.max_events,
        n_periods=config.n_periods,
        n_buckets=config.top_categories + 1,
        n_behaviors=len(BEHAVIORS) + 1,
        n_core_behaviors=len(CORE_BEHAVIORS),
        n_categories=vocab.size,
        future_periods=config.future_periods,
        period=config.period,
        horizon=config.horizon,
        vocab_hash=vocab.hash,
    )


def build_features(
    events: pd.DataFrame | EncodedEvents,
    cutoffs: Sequence[pd.Timestamp],
    vocab: Vocabulary,
    config: FeatureConfig,
    *,
    with_labels: bool = True,
) -> SequenceArrays:
    """Build one sample per (user with >= 1 history event, cutoff).

    History is the events before the cutoff (within ``config.history`` if set); labels come
    from ``[cutoff, cutoff + horizon)``. Serving calls this on one request's events with
    ``with_labels=False``. Samples are ordered by cutoff, then user id.

    Args:
        events: canonical events, or :func:`encode_events` output to reuse across calls.
        cutoffs: cutoff times (naive means UTC).
        vocab: the fitted vocabulary.
        config: the feature contract.
        with_labels: also build ``next_cats``, ``buy``, ``churn`` and ``trajectory``.

    Returns:
        Arrays shaped as documented in :mod:`core.arrays` (``n`` may be 0).
    """
    enc = events if isinstance(events, EncodedEvents) else encode_events(events, vocab)
    if enc.vocab_hash != vocab.hash:
        raise ValueError("events were encoded with a different vocabulary")
    if vocab.top_categories != config.top_categories:
        raise ValueError(
            f"vocabulary has top_categories={vocab.top_categories}, "
            f"config has {config.top_categories}"
        )
    parts = [_build_cutoff(enc, to_ns(c), vocab, config, with_labels) for c in cutoffs] or [
        _build_cutoff(enc, 0, vocab, config, with_labels, users=np.empty(0, np.int64))
    ]
    return parts[0] if len(parts) == 1 else SequenceArrays.concat(parts)


def build_inputs_at(
    enc: EncodedEvents, cutoffs_ns: np.ndarray, vocab: Vocabulary, config: FeatureConfig
) -> SequenceArrays:
    """Model inputs of every user of ``enc`` as of that user's own cutoff, in one pass.

    The same computation as ``build_features(..., with_labels=False)`` at each user's cutoff
    (serving encodes a batch of requests with different cutoffs this way: no loop over
    users or cutoffs). Users without a history event before their cutoff get no sample.

    Args:
        enc: encoded events (users ascending, as :func:`encode_arrays` returns them).
        cutoffs_ns: (U,) int64 cutoff of each user of ``enc`` (ns since the epoch, UTC).
        vocab: the fitted vocabulary.
        config: the feature contract.

    Returns:
        Inputs (no labels), samples in user order; ``user_id`` and ``cutoff`` per sample.
    """
    if enc.vocab_hash != vocab.hash:
        raise ValueError("events were encoded with a different vocabulary")
    cutoffs = np.asarray(cutoffs_ns, dtype=np.int64)
    if cutoffs.shape != enc.starts.shape:
        raise ValueError(f"{cutoffs.shape[0]} cutoffs for {enc.starts.shape[0]} users")
    return _build_cutoff(enc, cutoffs, vocab, config, with_labels=False)


def _build_cutoff(
    enc: EncodedEvents,
    cutoff: int | np.ndarray,
    vocab: Vocabulary,
    config: FeatureConfig,
    with_labels: bool,
    users: np.ndarray | None = None,
) -> SequenceArrays:
    # cutoff: one for every user (training), or (U,) one per user (serving, no labels).
    starts, stops = enc.starts, enc.stops()
    end = search_ranges(enc.time, starts, stops, cutoff)
    lo = starts
    if config.history:
        since = cutoff - duration_ns(config.history, "history")
        lo = search_ranges(enc.time, starts, end, since)
    if users is None:
        users = np.flatnonzero(end > lo)
    n = users.shape[0]
    out = _empty_inputs(n, vocab, config, with_labels)
    for first in range(0, n, CHUNK_SAMPLES):
        rows = slice(first, first + CHUNK_SAMPLES)
        chunk = users[rows]
        at = cutoff if np.ndim(cutoff) == 0 else cutoff[chunk]
        _fill_inputs(out, rows, enc, end[chunk], lo[chunk], at, vocab, config)
        if with_labels:
            build_labels(out, rows, enc, end[chunk], stops[chunk], cutoff, vocab, config)
    out.user_id = enc.user_ids[users] if n else np.empty(0, dtype=object)
    if np.ndim(cutoff) == 0:
        out.cutoff = np.full(n, np.datetime64(cutoff, "ns"))
    else:
        out.cutoff = cutoff[users].astype("datetime64[ns]")
    return out


def _empty_inputs(n: int, vocab: Vocabulary, config: FeatureConfig, labels: bool) -> SequenceArrays:
    big_n, p, c1 = config.max_events, config.n_periods, config.top_categories + 1
    k = config.future_periods
    return SequenceArrays(
        user_id=np.empty(n, dtype=object),
        cutoff=np.empty(n, dtype="datetime64[ns]"),
        cat=np.zeros((n, big_n), np.int32),
        beh=np.zeros((n, big_n), np.int32),
        hour=np.zeros((n, big_n), np.int32),
        gap=np.zeros((n, big_n), np.float32),
        age=np.zeros((n, big_n), np.float32),
        period_dist=np.zeros((n, p, c1), np.float32),
        period_counts=np.zeros((n, p, len(CORE_BEHAVIORS)), np.float32),
        next_cats=np.zeros((n, vocab.size), np.float32) if labels else None,
        buy=np.zeros(n, np.float32) if labels else None,
        churn=np.zeros(n, np.float32) if labels else None,
        trajectory=np.zeros((n, k, c1), np.float32) if labels else None,
    )


def _fill_inputs(
    out: SequenceArrays,
    rows: slice,
    enc: EncodedEvents,
    end: np.ndarray,
    lo: np.ndarray,
    cutoff: int | np.ndarray,
    vocab: Vocabulary,
    config: FeatureConfig,
) -> None:
    """Write the last-N sequence and the period features of one chunk of samples.

    ``cutoff``: one for the chunk, or (n,) one per sample.
    """
    per_sample = np.ndim(cutoff) > 0
    big_n = config.max_events
    pos = end[:, None] - big_n + np.arange(big_n)
    valid = pos >= lo[:, None]
    pos = np.where(valid, pos, 0)
    t = enc.time[pos]
    out.cat[rows] = np.where(valid, enc.cat[pos], 0)
    out.beh[rows] = np.where(valid, enc.beh[pos], 0)
    out.hour[rows] = np.where(valid, (t // HOUR_NS) % 24 + 1, 0)
    at = cutoff[:, None] if per_sample else cutoff
    out.age[rows] = np.where(valid, np.log1p(np.maximum(at - t, 0) / HOUR_NS), 0.0)
    both = valid[:, 1:] & valid[:, :-1]
    gap = np.zeros(valid.shape, np.float64)
    gap[:, 1:] = np.where(both, np.log1p(np.maximum(np.diff(t, axis=1), 0) / HOUR_NS), 0.0)
    out.gap[rows] = gap

    length, n_periods = period_ns(config.period), config.n_periods
    first = search_ranges(enc.time, lo, end, cutoff - n_periods * length)
    sample, ev = flatten_ranges(first, end)
    slot = n_periods - 1 - ((cutoff[sample] if per_sample else cutoff) - enc.time[ev] - 1) // length
    n, c1 = end.shape[0], config.top_categories + 1
    buckets = vocab.bucket(enc.cat[ev])
    out.period_dist[rows] = normalize_rows(histogram(sample, slot, buckets, n, n_periods, c1))
    core = _CORE_LUT[enc.beh[ev]]
    counts = histogram(sample, slot, core, n, n_periods, len(CORE_BEHAVIORS))
    out.period_counts[rows] = np.log1p(counts)
