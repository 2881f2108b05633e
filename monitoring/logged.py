"""Logged predictions back into model-output arrays, in a bundle's index space.

The inverse of ``serving.encode.log_records`` for scoring: a record's ranking becomes
``next_cats`` scores that rank its categories in logged order, its trajectory shares fill
the bucket axis, ``p_buy`` and ``p_churn`` are copied. The result is what
``evaluation.metrics.evaluate_predictions`` takes from a model (CONTRACT.md, "Prediction log").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.config import FeatureConfig
from core.vocab import Vocabulary
from evaluation.metrics import FIRST_RANKED


def _ranking(values: Any, vocab: Vocabulary) -> np.ndarray:
    if not isinstance(values, list | tuple | np.ndarray) or len(values) == 0:
        return np.empty(0, np.int64)
    index = vocab.encode([str(v) for v in values]).astype(np.int64)
    # Categories outside the vocabulary (another version's) cannot be ranked here.
    return index[index >= FIRST_RANKED]


def _trajectory(values: Any, slot: dict[str, int], shape: tuple[int, int]) -> np.ndarray | None:
    periods, width = shape
    if not isinstance(values, list | tuple) or len(values) < periods:
        return None
    out = np.zeros(shape, np.float64)
    for p, shares in enumerate(values[:periods]):
        if not isinstance(shares, dict):
            return None
        for bucket, share in shares.items():
            # A bucket this vocabulary does not name is part of its "other" bucket.
            out[p, slot.get(bucket, width - 1)] += float(share)
    return out


def _probability(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    number = pd.to_numeric(values, errors="coerce").to_numpy(np.float64)
    return number, np.isfinite(number)


def logged_outputs(
    records: pd.DataFrame, vocab: Vocabulary, config: FeatureConfig, needed: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Rebuild the model outputs of logged records.

    Args:
        records: prediction-log rows (``top_categories``, ``p_buy``, ``p_churn``,
            ``trajectory`` columns; missing ones make every record incomplete).
        vocab: the scoring bundle's vocabulary (categories and trajectory buckets).
        config: its feature config (``future_periods``, ``top_categories``).
        needed: categories a ranking must name to be scored exactly (``min(K, V - 2)``).

    Returns:
        ``next_cats`` (n, V) float32 scores (logged categories ``len..1`` in order, the
        rest ``-inf``), ``buy`` (n,), ``churn`` (n,), ``trajectory`` (n, K, C1); and the
        (n,) mask of complete records (ranking long enough, finite probabilities, every
        trajectory period present). Rows of incomplete records are placeholders.
    """
    n, width = len(records), config.top_categories + 1
    shape = (config.future_periods, width)
    missing = pd.Series([None] * n, index=records.index, dtype=object)
    scores = np.full((n, vocab.size), -np.inf, np.float32)
    trajectory = np.zeros((n, *shape), np.float64)
    complete = np.ones(n, bool)
    slot = {name: b for b, name in enumerate(vocab.bucket_names(width))}
    tops = records.get("top_categories", missing).tolist()
    trajectories = records.get("trajectory", missing).tolist()
    for i, (top, shares) in enumerate(zip(tops, trajectories, strict=True)):
        ranked = _ranking(top, vocab)
        scores[i, ranked] = np.arange(len(ranked), 0, -1, dtype=np.float32)
        filled = _trajectory(shares, slot, shape)
        if filled is not None:
            trajectory[i] = filled
        complete[i] = len(ranked) >= needed and filled is not None
    buy, buy_ok = _probability(records.get("p_buy", missing))
    churn, churn_ok = _probability(records.get("p_churn", missing))
    complete &= buy_ok & churn_ok
    pred = {"next_cats": scores, "buy": buy, "churn": churn, "trajectory": trajectory}
    return pred, complete
