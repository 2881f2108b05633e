"""Heuristic baselines every model is compared against (and the promotion gate must beat).

Predictors, all computed from raw canonical events strictly before a cutoff:

* ``popularity``: all events of all users in the last ``pop_window`` before the cutoff.
* ``personal_freq``: per user, the behaviour-weighted event count of each category
  (:data:`BEHAVIOR_WEIGHTS`), then the popularity list as fill.
* ``personal_decay``: the same with each event weighted by ``0.5 ** (age_days / half_life)``.

Every baseline also predicts purchase from past carts + buys, churn from days since the
last event, and the trajectory as the persistence of the current interest distribution.

Tie-breaking (what reproduces ``shared/data/README.md`` within 0.001 on Taobao): popularity
ranks categories by count, ties by category id *as a string*, ascending; a personal ranking
lists the user's own categories by score, ties by category id string (not by popularity:
that tie order gives Taobao personal recall 0.3864 instead of 0.3809), then the popularity
list minus those categories. Scores are rounded to 9 decimals so that float noise in decay
sums never splits a tie. Tmall's day-resolution log has many exact ties, and no tie order
tried reproduces its personal-frequency row exactly (ours 0.1495/0.1677 against 0.1533/0.1692).

Rankings are encoded as scores in the model's (n, V) space (own categories above every fill
category), so :func:`evaluation.metrics.evaluate_predictions` scores models and baselines alike;
:func:`evaluate_baselines` runs the same code on a local category index and therefore gives
the same numbers as :func:`baseline_predictions` wherever no horizon category is OOV.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from core.arrays import SequenceArrays
from core.vocab import Vocabulary
from evaluation.metrics import auc, ranking_metrics

#: Event weights for personal frequency (README protocol); other behaviours weigh 1.
BEHAVIOR_WEIGHTS: dict[str, float] = {"view": 1.0, "fav": 2.0, "cart": 3.0, "buy": 1.0}
HEURISTIC_NAMES: tuple[str, ...] = ("popularity", "personal_freq", "personal_decay")
#: Every baseline the gate faces: the heuristics and the learned ``gbdt_rerank``
#: (:mod:`evaluation.suite`).
BASELINE_NAMES: tuple[str, ...] = (*HEURISTIC_NAMES, "gbdt_rerank")


def _utc(value: str | pd.Timestamp | np.datetime64) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def select_history(
    events: pd.DataFrame, cutoff: pd.Timestamp, start: pd.Timestamp | None = None
) -> pd.DataFrame:
    """Return the events in ``[start, cutoff)`` (``start=None``: everything before)."""
    keep = events["timestamp"] < cutoff
    if start is not None:
        keep &= events["timestamp"] >= start
    return events.loc[keep]


def count_popularity(
    history: pd.DataFrame, cutoff: pd.Timestamp, window: pd.Timedelta
) -> pd.Series:
    """Events per category in ``[cutoff - window, cutoff)``, by count desc, ties by id string."""
    recent = history.loc[history["timestamp"] >= cutoff - window, "category_id"].astype(str)
    counts = recent.value_counts().rename("count").rename_axis("category_id").reset_index()
    counts = counts.sort_values(["count", "category_id"], ascending=[False, True], kind="stable")
    return counts.set_index("category_id")["count"]


def score_personal(
    history: pd.DataFrame,
    cutoff: pd.Timestamp,
    half_life_days: float | None = None,
    weights: Mapping[str, float] = BEHAVIOR_WEIGHTS,
) -> pd.DataFrame:
    """Behaviour-weighted (optionally decayed) score of each (user, category) pair.

    Returns:
        Frame with ``user_id``, ``category_id`` (str) and ``score`` rounded to 9 decimals.
    """
    weight = history["behavior"].astype(str).map(dict(weights)).fillna(1.0).to_numpy(float)
    if half_life_days is not None:
        age_days = (cutoff - history["timestamp"]).dt.total_seconds().to_numpy() / 86400.0
        weight = weight * 0.5 ** (age_days / half_life_days)
    frame = pd.DataFrame(
        {
            "user_id": history["user_id"].astype(str).to_numpy(),
            "category_id": history["category_id"].astype(str).to_numpy(),
            "score": weight,
        }
    )
    out = frame.groupby(["user_id", "category_id"], sort=False)["score"].sum().reset_index()
    out["score"] = out["score"].round(9)
    return out


def rank_to_scores(
    rows: np.ndarray,
    cols: np.ndarray,
    values: np.ndarray,
    fill_cols: np.ndarray,
    tie_key: np.ndarray,
    n: int,
) -> np.ndarray:
    """Encode "own categories by value, then fill list" rankings as (n, V) float32 scores.

    Args:
        rows, cols, values: one entry per (sample row, category index) with a personal score.
        fill_cols: category indices in fill order (best first), shared by all rows.
        tie_key: (V,) rank of each index's category id string; ties go to the lower key.
        n: number of rows.

    Returns:
        Scores whose descending order is the ranking: own categories get ``2V - position``,
        fill categories ``len(fill) - position`` (below every own one), the rest 0.
    """
    v = tie_key.shape[0]
    base = np.zeros(v, dtype=np.float32)
    base[fill_cols] = np.arange(len(fill_cols), 0, -1, dtype=np.float32)
    out = np.tile(base, (n, 1))
    if len(rows):
        own = pd.DataFrame({"r": rows, "c": cols, "neg": -np.asarray(values), "t": tie_key[cols]})
        own = own.sort_values(["r", "neg", "t"], kind="stable")
        position = own.groupby("r", sort=False).cumcount().to_numpy()
        out[own["r"].to_numpy(), own["c"].to_numpy()] = (2 * v - position).astype(np.float32)
    return out


def score_activity(
    history: pd.DataFrame, cutoff: pd.Timestamp, users: pd.Index, horizon: pd.Timedelta
) -> tuple[np.ndarray, np.ndarray]:
    """Purchase and churn scores in [0, 1] for ``users`` (order kept).

    Purchase: ``n / (1 + n)`` with ``n`` past carts + buys (>= 0.5 once there is one).
    Churn: ``d / (d + h)`` with ``d`` days since the last event and ``h`` the horizon in
    days (>= 0.5 when silent for longer than one horizon). Both are monotone in the README
    heuristics, so their AUCs are the README's.
    """
    user = history["user_id"].astype(str)
    carts_buys = history["behavior"].astype(str).isin(["cart", "buy"])
    n_cb = carts_buys.groupby(user).sum().reindex(users).fillna(0).to_numpy(float)
    last = history["timestamp"].groupby(user).max().reindex(users)
    days = ((cutoff - last).dt.total_seconds() / 86400.0).to_numpy(float)
    days = np.nan_to_num(days, nan=np.inf)
    h_days = horizon.total_seconds() / 86400.0
    churn = np.where(np.isinf(days), 1.0, days / (days + h_days))
    return n_cb / (1.0 + n_cb), churn


def _ranked_scores(
    history: pd.DataFrame,
    cutoff: pd.Timestamp,
    users: pd.Index,
    encode: Callable[[np.ndarray], np.ndarray],
    tie_key: np.ndarray,
    pop_window: pd.Timedelta,
    half_life_days: float,
    weights: Mapping[str, float],
) -> dict[str, np.ndarray]:
    """(n, V) next-category scores of the three baselines for ``users`` at one cutoff."""
    pop = count_popularity(history, cutoff, pop_window)
    fill = encode(pop.index.to_numpy())
    fill = fill[fill >= 2]  # categories outside the vocabulary are never ranked
    n = len(users)
    out = {"popularity": rank_to_scores(np.array([], int), np.array([], int), [], fill, tie_key, n)}
    mine = history.loc[history["user_id"].astype(str).isin(users)]
    for name, half in (("personal_freq", None), ("personal_decay", half_life_days)):
        pairs = score_personal(mine, cutoff, half, weights)
        cols = encode(pairs["category_id"].to_numpy())
        rows = users.get_indexer(pairs["user_id"])
        ok = cols >= 2
        # OOV pairs merge into index 1, which is never ranked: drop them.
        out[name] = rank_to_scores(
            rows[ok], cols[ok], pairs["score"].to_numpy()[ok], fill, tie_key, n
        )
    return out


def persist_trajectory(arrays: SequenceArrays, future_periods: int) -> np.ndarray:
    """Repeat the last period's bucket distribution (else the history window's) K times.

    The window distribution weighs each period by its event count, recovered from
    ``period_counts = log1p(count)``; users with no history get a uniform distribution.
    """
    dist = np.asarray(arrays.period_dist, dtype=np.float64)
    counts = np.expm1(np.asarray(arrays.period_counts, dtype=np.float64)).sum(axis=2)
    window = (dist * counts[:, :, None]).sum(axis=1)
    total = window.sum(axis=1, keepdims=True)
    uniform = np.full_like(window, 1.0 / dist.shape[2])
    window = np.where(total > 0, window / np.where(total > 0, total, 1.0), uniform)
    last = dist[:, -1, :]
    current = np.where(last.sum(axis=1, keepdims=True) > 0, last, window)
    return np.repeat(current[:, None, :], future_periods, axis=1).astype(np.float32)


def evaluate_baselines(
    events: pd.DataFrame,
    cutoff: str | pd.Timestamp,
    horizon: str | pd.Timedelta,
    pop_window: str | pd.Timedelta,
    half_life: float,
    *,
    history_start: str | pd.Timestamp | None = None,
    weights: Mapping[str, float] = BEHAVIOR_WEIGHTS,
    k: int = 10,
) -> dict[str, dict[str, float]]:
    """Protocol-exact baseline metrics on raw category ids (the README tables).

    Users are those with an event in ``[history_start, cutoff)``; labels come from
    ``[cutoff, cutoff + horizon)``. Categories get a local index in id-string order, so no
    horizon category is lost to OOV.

    Args:
        events: canonical events (:mod:`core.schema`).
        cutoff: the cutoff (naive values are UTC).
        horizon: label window, e.g. ``"3D"``.
        pop_window: popularity window before the cutoff, e.g. ``"3D"``.
        half_life: decay half-life in days for ``personal_decay``.
        history_start: ignore events before this (Taobao: 2017-11-24 16:00 UTC).
        weights: behaviour weights of the personal scores.
        k: ranking cut-off.

    Returns:
        ``{baseline: {recall_at_k, ndcg_at_k, buy_auc, churn_auc, n_users, n_ranked,
        buy_rate, churn_rate}}`` (AUCs nan when a label has one class).

    Raises:
        ValueError: if no user has history before the cutoff.
    """
    cut = _utc(cutoff)
    span = pd.Timedelta(horizon)
    history = select_history(events, cut, None if history_start is None else _utc(history_start))
    users = pd.Index(np.sort(history["user_id"].astype(str).unique()))
    if len(users) == 0:
        raise ValueError(f"no events before the cutoff {cut} (history from {history_start})")
    ts = events["timestamp"]
    future = events.loc[(ts >= cut) & (ts < cut + span)]
    future = future.loc[future["user_id"].astype(str).isin(users)]
    categories = np.sort(
        pd.concat([history["category_id"], future["category_id"]]).astype(str).unique()
    )
    index = pd.Index(categories)

    def encode(values: np.ndarray) -> np.ndarray:
        return index.get_indexer(np.asarray(values, dtype=object)) + 2

    v = len(categories) + 2
    truth = np.zeros((len(users), v), dtype=np.float32)
    truth[
        users.get_indexer(future["user_id"].astype(str)), encode(future["category_id"].astype(str))
    ] = 1
    buy = np.zeros(len(users))
    buy[users.get_indexer(future.loc[future["behavior"] == "buy", "user_id"].astype(str))] = 1
    churn = (truth.sum(axis=1) == 0).astype(float)
    p_buy, p_churn = score_activity(history, cut, users, span)
    tie_key = np.arange(v)  # local indices already follow id-string order
    scores = _ranked_scores(
        history, cut, users, encode, tie_key, pd.Timedelta(pop_window), half_life, weights
    )
    common = {
        "buy_auc": auc(buy, p_buy),
        "churn_auc": auc(churn, p_churn),
        "n_users": float(len(users)),
        "buy_rate": float(buy.mean()),
        "churn_rate": float(churn.mean()),
    }
    return {name: {**ranking_metrics(s, truth, k), **common} for name, s in scores.items()}


def empty_predictions(
    arrays: SequenceArrays, vocab: Vocabulary, names: Iterable[str]
) -> dict[str, dict[str, np.ndarray]]:
    """Zeroed outputs per baseline, with the persistence trajectory already filled in.

    Returns:
        ``{name: {"next_cats": (n, V) float32, "buy": (n,), "churn": (n,),
        "trajectory": (n, K, C1)}}``; the trajectory array is shared by every name.
    """
    n = len(arrays)
    future_periods = 1 if arrays.trajectory is None else arrays.trajectory.shape[1]
    trajectory = persist_trajectory(arrays, future_periods)
    return {
        name: {
            "next_cats": np.zeros((n, vocab.size), dtype=np.float32),
            "buy": np.zeros(n),
            "churn": np.zeros(n),
            "trajectory": trajectory,
        }
        for name in names
    }


def baseline_predictions(
    events: pd.DataFrame,
    arrays: SequenceArrays,
    vocab: Vocabulary,
    *,
    pop_window: str | pd.Timedelta = "3D",
    half_life: float = 1.0,
    horizon: str | pd.Timedelta = "3D",
    history: str | pd.Timedelta | None = None,
    weights: Mapping[str, float] = BEHAVIOR_WEIGHTS,
) -> dict[str, dict[str, np.ndarray]]:
    """Baseline predictions in the model's output spaces, one dict per baseline.

    Args:
        events: canonical events covering the history before every cutoff in ``arrays``.
        arrays: the samples to predict (user ids and cutoffs; period features for the
            trajectory); several cutoffs are handled one at a time.
        vocab: the model's vocabulary (categories outside it are never ranked).
        pop_window: popularity window before each cutoff.
        half_life: decay half-life in days for ``personal_decay``.
        horizon: label horizon (only scales the churn score, see :func:`score_activity`).
        history: optional cap on the history length (as ``FeatureConfig.history``).
        weights: behaviour weights of the personal scores.

    Returns:
        ``{baseline: {"next_cats": (n, V) float32, "buy": (n,), "churn": (n,),
        "trajectory": (n, K, C1)}}``, ready for :func:`evaluation.metrics.evaluate_predictions`.
    """
    v = vocab.size
    tie_key = np.full(v, v, dtype=np.int64)
    tie_key[2:] = np.argsort(np.argsort(np.asarray(vocab.categories, dtype=str), kind="stable"))
    out = empty_predictions(arrays, vocab, HEURISTIC_NAMES)
    cutoffs = pd.to_datetime(arrays.cutoff)
    for cutoff in np.unique(cutoffs):
        cut = _utc(cutoff)
        rows = np.flatnonzero(cutoffs == cutoff)
        users = pd.Index(np.asarray(arrays.user_id)[rows].astype(str))
        start = None if history is None else cut - pd.Timedelta(history)
        past = select_history(events, cut, start)
        scores = _ranked_scores(
            past, cut, users, vocab.encode, tie_key, pd.Timedelta(pop_window), half_life, weights
        )
        p_buy, p_churn = score_activity(past, cut, users, pd.Timedelta(horizon))
        for name in HEURISTIC_NAMES:
            out[name]["next_cats"][rows] = scores[name]
            out[name]["buy"][rows] = p_buy
            out[name]["churn"][rows] = p_churn
    return out
