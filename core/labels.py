"""Labels of one chunk of samples: what happens in ``[cutoff, cutoff + horizon)``.

Kept apart from the inputs so that serving (``with_labels=False``) never touches it.
"""

from __future__ import annotations

import numpy as np

from core.arrays import SequenceArrays
from core.config import FeatureConfig
from core.encoding import EncodedEvents
from core.periods import (
    duration_ns,
    flatten_ranges,
    histogram,
    normalize_rows,
    period_ns,
    search_ranges,
)
from core.schema import behavior_index
from core.vocab import Vocabulary

BUY = behavior_index("buy")


def build_labels(
    out: SequenceArrays,
    rows: slice,
    enc: EncodedEvents,
    end: np.ndarray,
    stop: np.ndarray,
    cutoff: int,
    vocab: Vocabulary,
    config: FeatureConfig,
) -> None:
    """Fill ``next_cats``, ``buy``, ``churn`` and ``trajectory`` for one chunk of samples.

    Args:
        out: arrays to fill in place (labels allocated).
        rows: the chunk's rows in ``out``.
        enc: encoded events.
        end: (n,) offset of each sample's first event at or after the cutoff.
        stop: (n,) offset one past each sample user's last event.
        cutoff: cutoff in ns.
        vocab: the vocabulary (trajectory buckets).
        config: horizon, period and future periods.
    """
    n = end.shape[0]
    horizon_end = search_ranges(
        enc.time, end, stop, cutoff + duration_ns(config.horizon, "horizon")
    )
    sample, ev = flatten_ranges(end, horizon_end)
    out.next_cats[rows][sample, enc.cat[ev]] = 1.0  # a slice is a view: fills in place
    out.buy[rows] = np.bincount(sample[enc.beh[ev] == BUY], minlength=n) > 0
    out.churn[rows] = horizon_end == end

    length, k = period_ns(config.period), config.future_periods
    future_end = search_ranges(enc.time, end, stop, cutoff + k * length)
    sample, ev = flatten_ranges(end, future_end)
    slot = (enc.time[ev] - cutoff) // length
    counts = histogram(sample, slot, vocab.bucket(enc.cat[ev]), n, k, config.top_categories + 1)
    out.trajectory[rows] = normalize_rows(counts)
