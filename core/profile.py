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
    # Jensen-Shannon divergence (bits, 0..1) between the user's trajectory-bucket shares in
    # the latest non-empty history period and the mean of the earlier non-empty ones
    # (``period_dist``); NaN with fewer than two non-empty periods.
    "interest_shift",
)
CATEGORICAL_FEATURES: tuple[str, ...] = ("top_category",)
#: Columns holding one list of floats per row: the share of the window's events in each
#: trajectory bucket (``C + 1`` values, the last is "other" incl. out-of-vocabulary; all 0
#: for an empty window). Monitoring compares their mean over users: the category distribution.
BUCKET_FEATURES: tuple[str, ...] = ("bucket_shares",)
PROFILE_COLUMNS: tuple[str, ...] = NUMERIC_FEATURES + CATEGORICAL_FEATURES + BUCKET_FEATURES
#: The columns of profiles written before ``interest_shift`` and ``bucket_shares`` existed.
LEGACY_COLUMNS: tuple[str, ...] = tuple(
    c for c in PROFILE_COLUMNS if c not in ("interest_shift", *BUCKET_FEATURES)
)
# Shares are logged with this many decimals: enough for any test, a third of the bytes.
SHARE_DECIMALS = 4


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


def _js_bits(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Row-wise Jensen-Shannon divergence in bits of two (n, C) share arrays."""
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum(axis=1)
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum(axis=1)
    return np.clip(0.5 * (kl_p + kl_q), 0.0, 1.0)


def _interest_shift(period_dist: np.ndarray) -> np.ndarray:
    """JS divergence of the latest non-empty period's shares from the earlier periods' mean."""
    dist = period_dist.astype(np.float64)
    active = dist.sum(axis=2) > 0  # (n, P)
    n, periods = active.shape
    # Index of the latest non-empty period, -1 for none.
    last = np.where(active.any(axis=1), periods - 1 - np.argmax(active[:, ::-1], axis=1), -1)
    recent = dist[np.arange(n), np.maximum(last, 0)]
    earlier_mask = active & (np.arange(periods)[None, :] < last[:, None])
    n_earlier = earlier_mask.sum(axis=1)
    earlier = (dist * earlier_mask[:, :, None]).sum(axis=1) / np.maximum(n_earlier, 1)[:, None]
    return np.where(n_earlier > 0, _js_bits(recent, earlier), np.nan)


def _bucket_shares(cat: np.ndarray, mask: np.ndarray, n_buckets: int) -> list[list[float]]:
    """Per row, the share of the window's events in each trajectory bucket (vocabulary order:
    category index ``b + 2`` is bucket ``b``; the rest and out-of-vocabulary are "other")."""
    rank = cat.astype(np.int64) - 2
    bucket = np.where((rank >= 0) & (rank < n_buckets - 1), rank, n_buckets - 1)
    cell = np.arange(cat.shape[0])[:, None] * n_buckets + bucket
    counts = np.bincount(cell[mask], minlength=cat.shape[0] * n_buckets)
    counts = counts.reshape(cat.shape[0], n_buckets).astype(np.float64)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    return np.round(shares, SHARE_DECIMALS).tolist()


def summarize_arrays(
    arrays: SequenceArrays, decode: Callable[[Sequence[int]], Sequence[str]]
) -> pd.DataFrame:
    """Summarise each sample's event window into :data:`PROFILE_COLUMNS` (one frame).

    The values of :func:`summarize_columns`, as a DataFrame (training's reference profile).
    """
    return pd.DataFrame(summarize_columns(arrays, decode), columns=list(PROFILE_COLUMNS))


def summarize_columns(
    arrays: SequenceArrays, decode: Callable[[Sequence[int]], Sequence[str]]
) -> dict[str, np.ndarray | list[str] | list[list[float]]]:
    """Summarise each sample's event window into :data:`PROFILE_COLUMNS`, column by column.

    No pandas: serving builds a micro-batch's log records from these arrays.

    Args:
        arrays: encoded samples (labels not needed).
        decode: maps category indices to category ids (``Vocabulary.decode``).

    Returns:
        Column name -> one value per sample, in sample order. Samples with no events get zeros, an empty
        ``top_category`` and all-zero ``bucket_shares``; ``interest_shift`` is NaN for
        samples with fewer than two non-empty history periods.
    """
    mask = arrays.cat > 0
    n_real = mask.sum(axis=1)
    safe_n = np.maximum(n_real, 1)
    frame: dict[str, np.ndarray | list[str] | list[list[float]]] = {
        "seq_len": n_real.astype(np.float64)
    }
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
    frame["interest_shift"] = _interest_shift(arrays.period_dist)
    frame["bucket_shares"] = _bucket_shares(arrays.cat, mask, arrays.period_dist.shape[2])
    return frame
