"""Category demand: per-user heads aggregated into expected events per category bucket.

The arithmetic of the demand forecast (:mod:`pipelines.demand` documents the model):
``demand_c = sum_u P(active_u) * activity_u * share_uc``, the bucket counts it is scored
against (a persistence forecast: last period's demand; and what happened), and WAPE. It
lives here so that the model card (``training``) and the ``interest demand`` command
(``pipelines``) compute one and the same table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.periods import period_ns
from core.schema import CORE_BEHAVIORS
from core.vocab import Vocabulary

COLUMNS: tuple[str, ...] = ("category", "forecast", "persistence", "actual")
LEVELS: tuple[str, ...] = ("persistence", "model")


def expected_activity(period_counts: np.ndarray) -> np.ndarray:
    """Events per active period of each user, ``(n,)`` from ``(n, P, B)`` log1p counts."""
    per_period = np.expm1(np.asarray(period_counts, np.float64)).sum(axis=-1)  # (n, P)
    active = (per_period > 0).sum(axis=1)
    return per_period.sum(axis=1) / np.maximum(active, 1)


def aggregate_demand(p_active: np.ndarray, activity: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """``sum_u p_active_u * activity_u * shares_uc``: expected events per bucket, ``(C1,)``.

    Args:
        p_active: ``(n,)`` probability that each user is active next period.
        activity: ``(n,)`` expected events of each user given that it is active.
        shares: ``(n, C1)`` predicted share of each bucket in the user's next period.
    """
    weight = np.asarray(p_active, np.float64) * np.asarray(activity, np.float64)
    return weight @ np.asarray(shares, np.float64)


def bucket_counts(
    events: pd.DataFrame, vocab: Vocabulary, n_buckets: int, start: pd.Timestamp, end: pd.Timestamp
) -> np.ndarray:
    """Core-behaviour events per trajectory bucket in ``[start, end)``, ``(C1,)``."""
    times = pd.to_datetime(events["timestamp"], utc=True)
    keep = (times >= start) & (times < end) & events["behavior"].isin(CORE_BEHAVIORS)
    buckets = vocab.bucket(vocab.encode(events.loc[keep, "category_id"].astype(str)))
    return np.bincount(np.minimum(buckets, n_buckets - 1), minlength=n_buckets).astype(float)


def wape(forecast: pd.Series, actual: pd.Series) -> float:
    """Weighted absolute percentage error; nan when nothing happened or actual is missing."""
    total = float(actual.sum())
    if actual.isna().any() or total <= 0:
        return float("nan")
    return float((forecast - actual).abs().sum() / total)


def demand_wapes(table: pd.DataFrame) -> dict[str, float]:
    """WAPE of ``forecast`` and ``persistence`` over all buckets and over named ones only.

    The ``other`` bucket pools every category outside the top ``C`` and usually holds
    most events, so it dominates the all-bucket figure; ``*_named`` leaves it out.
    """
    named = table[table["category"] != "other"]
    return {
        "model": wape(table["forecast"], table["actual"]),
        "persistence": wape(table["persistence"], table["actual"]),
        "model_named": wape(named["forecast"], named["actual"]),
        "persistence_named": wape(named["persistence"], named["actual"]),
    }


def horizon_in_log(events: pd.DataFrame, end: pd.Timestamp, period: str) -> bool:
    """Whether the log reaches ``end`` (within 1/24 of a period: daily logs end at 23:59)."""
    last = pd.to_datetime(events["timestamp"], utc=True).max()
    return bool(last >= end - pd.Timedelta(period_ns(period) // 24, unit="ns"))


def rescale(forecast: np.ndarray, total: float) -> np.ndarray:
    """``forecast`` scaled to sum to ``total`` (unchanged when it sums to zero)."""
    current = float(np.sum(forecast))
    return forecast * (total / current) if current > 0 else forecast


def demand_table(
    pred: dict[str, np.ndarray],
    period_counts: np.ndarray,
    events: pd.DataFrame,
    vocab: Vocabulary,
    n_buckets: int,
    cutoff: pd.Timestamp,
    period: str,
    level: str = "persistence",
) -> pd.DataFrame:
    """The demand table at ``cutoff`` from per-user predictions of the users with history.

    Args:
        pred: the model's outputs for those users (``churn`` ``(n,)``, ``trajectory``
            ``(n, K, C1)``).
        period_counts: their ``(n, P, B)`` log1p history counts (``SequenceArrays``).
        events: canonical events: history before ``cutoff``, optionally the next period.
        vocab, n_buckets: the model's vocabulary and number of trajectory buckets.
        cutoff: start of the forecast period (UTC).
        period: the feature period (``day``, ``week``, ...): the forecast's length.
        level: ``persistence`` scales the forecasts to last period's total, ``model``
            keeps the model's own total.

    Returns:
        One row per trajectory bucket, largest forecast first: ``category``, ``forecast``,
        ``persistence`` (last period's demand) and ``actual`` (nan unless ``events`` cover
        the whole next period).

    Raises:
        ValueError: if ``level`` is unknown.
    """
    if level not in LEVELS:
        raise ValueError(f"demand level must be one of {', '.join(LEVELS)}, got {level!r}")
    forecast = aggregate_demand(
        1.0 - np.ravel(pred["churn"]), expected_activity(period_counts), pred["trajectory"][:, 0]
    )
    length = pd.Timedelta(period_ns(period), unit="ns")
    persistence = bucket_counts(events, vocab, n_buckets, cutoff - length, cutoff)
    if level == "persistence":
        forecast = rescale(forecast, float(persistence.sum()))
    actual = np.full(n_buckets, np.nan)
    if horizon_in_log(events, cutoff + length, period):
        actual = bucket_counts(events, vocab, n_buckets, cutoff, cutoff + length)
    table = pd.DataFrame(
        {
            "category": vocab.bucket_names(n_buckets),
            "forecast": forecast,
            "persistence": persistence,
            "actual": actual,
        }
    )
    return table.sort_values("forecast", ascending=False, kind="stable").reset_index(drop=True)
