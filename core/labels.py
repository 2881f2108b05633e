"""Labels of one chunk of samples: what happens in ``[cutoff, cutoff + horizon)``.

Kept apart from the inputs so that serving (``with_labels=False``) never touches it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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
from core.vocab import OOV_INDEX, Vocabulary

BUY = behavior_index("buy")
#: ``SequenceArrays.extra`` key of :func:`count_oov_truth`.
OOV_TRUTH = "oov_truth"


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


def count_oov_truth(
    events: pd.DataFrame, arrays: SequenceArrays, vocab: Vocabulary, horizon: str
) -> np.ndarray:
    """Distinct out-of-vocabulary categories each sample touches in its horizon, ``(n,)``.

    ``next_cats`` folds every such category into the one OOV index, so a ranking metric
    reading it alone counts them once in ``|truth|``; with this count it can count each
    distinct raw category, as the protocol of ``shared/data/README.md`` does.

    Args:
        events: canonical events (raw ``category_id``).
        arrays: samples (``user_id``, ``cutoff``) built from ``events`` with ``vocab``.
        vocab: the vocabulary the samples were encoded with.
        horizon: label window after each cutoff (``FeatureConfig.horizon``).
    """
    n = len(arrays)
    times = pd.to_datetime(events["timestamp"], utc=True)
    oov = vocab.encode(events["category_id"].astype(str).to_numpy()) == OOV_INDEX
    if n == 0 or not oov.any():
        return np.zeros(n, np.int64)
    frame = pd.DataFrame(
        {
            "user_id": events["user_id"].astype(str).to_numpy()[oov],
            "time": times.to_numpy()[oov],
            "category_id": events["category_id"].astype(str).to_numpy()[oov],
        }
    )
    cutoff = pd.to_datetime(arrays.cutoff, utc=True)
    samples = pd.DataFrame(
        {
            "row": np.arange(n),
            "user_id": np.asarray(arrays.user_id).astype(str),
            "start": cutoff,
            "end": cutoff + pd.Timedelta(duration_ns(horizon, "horizon"), unit="ns"),
        }
    )
    joined = samples.merge(frame, on="user_id")
    joined = joined[(joined["time"] >= joined["start"]) & (joined["time"] < joined["end"])]
    counts = joined.groupby("row")["category_id"].nunique()
    out = np.zeros(n, np.int64)
    out[counts.index.to_numpy()] = counts.to_numpy()
    return out
