"""Behaviour-feature summaries: what serving logs per request and monitoring compares.

The summary is computed from the encoded :class:`~core.arrays.SequenceArrays`, so the
training reference profile and the serving log come out of exactly the same code path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from core.arrays import SequenceArrays
from core.schema import behavior_index

NUMERIC_FEATURES: tuple[str, ...] = (
    "seq_len",
    "share_view",
    "share_fav",
    "share_cart",
    "share_buy",
    "hours_since_last",
    "mean_gap_hours",
    "category_entropy",
    "oov_share",
    "hour_of_day",
)
CATEGORICAL_FEATURES: tuple[str, ...] = ("top_category",)
PROFILE_COLUMNS: tuple[str, ...] = NUMERIC_FEATURES + CATEGORICAL_FEATURES


def _entropy(cat: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = np.zeros(cat.shape[0], dtype=np.float64)
    for row in range(cat.shape[0]):
        values = cat[row][mask[row]]
        if values.size == 0:
            continue
        _, counts = np.unique(values, return_counts=True)
        p = counts / counts.sum()
        out[row] = float(-(p * np.log(p)).sum())
    return out


def _mode(cat: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = np.zeros(cat.shape[0], dtype=np.int64)
    for row in range(cat.shape[0]):
        values = cat[row][mask[row]]
        if values.size:
            out[row] = np.bincount(values).argmax()
    return out


def summarize_arrays(
    arrays: SequenceArrays, decode: Callable[[Sequence[int]], Sequence[str]]
) -> pd.DataFrame:
    """Summarise each sample's event window into :data:`PROFILE_COLUMNS`.

    Args:
        arrays: encoded samples (labels not needed).
        decode: maps category indices to category ids (``Vocabulary.decode``).

    Returns:
        One row per sample, in sample order. Samples with no events get zeros and an
        empty ``top_category``.
    """
    mask = arrays.cat > 0
    n_real = mask.sum(axis=1)
    safe_n = np.maximum(n_real, 1)
    frame: dict[str, np.ndarray | list[str]] = {"seq_len": n_real.astype(np.float64)}
    for name in ("view", "fav", "cart", "buy"):
        frame[f"share_{name}"] = (arrays.beh == behavior_index(name)).sum(axis=1) / safe_n
    frame["hours_since_last"] = np.where(n_real > 0, np.expm1(arrays.age[:, -1]), 0.0)
    # gap of the first real event in the window is 0 by contract; average the others.
    gaps = np.expm1(arrays.gap.astype(np.float64)) * mask
    frame["mean_gap_hours"] = gaps.sum(axis=1) / np.maximum(n_real - 1, 1)
    frame["category_entropy"] = _entropy(arrays.cat, mask)
    frame["oov_share"] = (arrays.cat == 1).sum(axis=1) / safe_n
    frame["hour_of_day"] = np.where(n_real > 0, arrays.hour[:, -1] - 1, 0).astype(np.float64)
    modes = _mode(arrays.cat, mask)
    names = list(decode(modes.tolist()))
    frame["top_category"] = [n if k > 0 else "" for n, k in zip(names, n_real, strict=True)]
    return pd.DataFrame(frame, columns=list(PROFILE_COLUMNS))
