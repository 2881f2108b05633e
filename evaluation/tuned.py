"""Heuristic baselines tuned the way a user would tune them: on the validation cutoff only.

Each heuristic gets its parameters from a small grid, chosen by mean recall@10 on the
validation samples (the gate's primary metric), and is then scored on test with those
parameters. Nothing here looks at test labels.

* ``popularity``: the popularity window (:data:`POP_WINDOWS`);
* ``personal_freq``: the behaviour weights (:data:`WEIGHT_PRESETS`), with the tuned
  popularity list as fill;
* ``personal_decay``: weights and half-life (:data:`HALF_LIVES`), same fill.

Scores always come from the full raw history before a cutoff, never from the model's
truncated input window: a heuristic is entitled to everything the log holds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from core.arrays import SequenceArrays
from core.vocab import Vocabulary
from evaluation.baselines import (
    BEHAVIOR_WEIGHTS,
    HEURISTIC_NAMES,
    _utc,
    count_popularity,
    empty_predictions,
    rank_to_scores,
    score_activity,
    score_personal,
    select_history,
)
from evaluation.metrics import per_sample_ranking

HALF_LIVES: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 3.0, 7.0, 14.0, 30.0)
POP_WINDOWS: tuple[str, ...] = ("1D", "3D", "7D", "14D", "30D")
#: Behaviour weights a user would try: the README's, plain counts, and intent-heavy.
WEIGHT_PRESETS: dict[str, dict[str, float]] = {
    "readme": dict(BEHAVIOR_WEIGHTS),
    "uniform": {},
    "intent": {"view": 1.0, "fav": 3.0, "cart": 5.0, "buy": 5.0},
}


@dataclass(frozen=True)
class HeuristicParams:
    """One heuristic's parameters (``half_life_days=None``: no decay)."""

    pop_window: str = "3D"
    weights: str = "readme"
    half_life_days: float | None = None

    def to_dict(self) -> dict[str, str | float | None]:
        """Plain values, for MLflow params and the model card."""
        return asdict(self)


def default_params(
    pop_window: str = "3D", half_life_days: float = 1.0
) -> dict[str, HeuristicParams]:
    """The untuned README parameters of every heuristic (used when there is no validation)."""
    return {
        "popularity": HeuristicParams(pop_window),
        "personal_freq": HeuristicParams(pop_window),
        "personal_decay": HeuristicParams(pop_window, half_life_days=half_life_days),
    }


def _tie_key(vocab: Vocabulary) -> np.ndarray:
    v = vocab.size
    key = np.full(v, v, dtype=np.int64)
    key[2:] = np.argsort(np.argsort(np.asarray(vocab.categories, dtype=str), kind="stable"))
    return key


@dataclass
class _Cutoff:
    """What every grid point needs at one cutoff: history, users, rows and encoders."""

    cut: pd.Timestamp
    rows: np.ndarray
    users: pd.Index
    past: pd.DataFrame
    mine: pd.DataFrame
    encode: Callable[[np.ndarray], np.ndarray]
    tie_key: np.ndarray

    def scores(self, params: HeuristicParams, personal: bool) -> np.ndarray:
        """(rows, V) scores of one heuristic at this cutoff."""
        pop = count_popularity(self.past, self.cut, pd.Timedelta(params.pop_window))
        fill = self.encode(pop.index.to_numpy())
        fill = fill[fill >= 2]
        n, empty = len(self.users), np.array([], dtype=int)
        if not personal:
            return rank_to_scores(empty, empty, np.array([]), fill, self.tie_key, n)
        weights = WEIGHT_PRESETS[params.weights]
        pairs = score_personal(self.mine, self.cut, params.half_life_days, weights)
        cols = self.encode(pairs["category_id"].to_numpy())
        rows = self.users.get_indexer(pairs["user_id"])
        ok = cols >= 2
        values = pairs["score"].to_numpy()[ok]
        return rank_to_scores(rows[ok], cols[ok], values, fill, self.tie_key, n)


def _cutoffs(events: pd.DataFrame, arrays: SequenceArrays, vocab: Vocabulary) -> list[_Cutoff]:
    tie_key = _tie_key(vocab)
    cutoffs = pd.to_datetime(arrays.cutoff)
    out = []
    for cutoff in np.unique(cutoffs):
        cut = _utc(cutoff)
        rows = np.flatnonzero(cutoffs == cutoff)
        users = pd.Index(np.asarray(arrays.user_id)[rows].astype(str))
        past = select_history(events, cut)
        mine = past.loc[past["user_id"].astype(str).isin(users)]
        out.append(_Cutoff(cut, rows, users, past, mine, vocab.encode, tie_key))
    return out


def _grid(name: str, pop_window: str) -> list[HeuristicParams]:
    if name == "popularity":
        return [HeuristicParams(w) for w in POP_WINDOWS]
    halves: Sequence[float | None] = HALF_LIVES if name == "personal_decay" else (None,)
    return [HeuristicParams(pop_window, w, h) for w in WEIGHT_PRESETS for h in halves]


def tune_heuristics(
    events: pd.DataFrame, val: SequenceArrays, vocab: Vocabulary, k: int = 10
) -> tuple[dict[str, HeuristicParams], dict[str, float]]:
    """Choose each heuristic's parameters by mean recall@K on the validation samples.

    The popularity window is chosen first (on ``popularity``) and then serves as the fill
    list of both personal heuristics. Ties keep the earlier grid point.

    Args:
        events: canonical events covering the history before the validation cutoffs.
        val: labelled validation samples (any number of cutoffs).
        vocab: the vocabulary ``val`` was encoded with.
        k: ranking cut-off of the selection metric.

    Returns:
        ``({baseline: params}, {baseline: validation recall@K of the choice})``.
    """
    truth = val.labels()["next_cats"]
    parts = _cutoffs(events, val, vocab)
    chosen: dict[str, HeuristicParams] = {}
    val_recall: dict[str, float] = {}
    pop_window = "3D"
    for name in HEURISTIC_NAMES:
        best: tuple[float, HeuristicParams] | None = None
        for params in _grid(name, pop_window):
            recall = np.full(len(val), np.nan)
            for part in parts:
                scores = part.scores(params, personal=name != "popularity")
                per = per_sample_ranking(scores, truth[part.rows], k)
                recall[part.rows] = per[f"recall_at_{k}"]
            value = float(np.nanmean(recall)) if np.isfinite(recall).any() else -1.0
            if best is None or value > best[0]:
                best = (value, params)
        assert best is not None
        val_recall[name], chosen[name] = best[0], best[1]
        if name == "popularity":
            pop_window = best[1].pop_window
    return chosen, val_recall


def heuristic_predictions(
    events: pd.DataFrame,
    arrays: SequenceArrays,
    vocab: Vocabulary,
    params: Mapping[str, HeuristicParams],
    horizon: str | pd.Timedelta,
) -> dict[str, dict[str, np.ndarray]]:
    """Predictions of each heuristic in ``params`` with its own parameters, full history.

    Returns:
        ``{baseline: {"next_cats", "buy", "churn", "trajectory"}}`` as
        :func:`evaluation.baselines.baseline_predictions` returns them.
    """
    out = empty_predictions(arrays, vocab, params)
    for part in _cutoffs(events, arrays, vocab):
        p_buy, p_churn = score_activity(part.past, part.cut, part.users, pd.Timedelta(horizon))
        for name, chosen in params.items():
            pred = out[name]
            pred["next_cats"][part.rows] = part.scores(chosen, personal=name != "popularity")
            pred["buy"][part.rows], pred["churn"][part.rows] = p_buy, p_churn
    return out
