"""Every baseline a model faces, at its best: tuned heuristics plus ``gbdt_rerank``.

:func:`run_baseline_suite` tunes the heuristics on the validation samples
(:func:`evaluation.tuned.tune_heuristics`), predicts the evaluated samples with the chosen
parameters from the full raw history, adds the learned re-ranker
(:mod:`evaluation.learned`), and scores all of them like a model, per sample. The refit
run and the gate's re-scoring both call it, so the gate's "best baseline" is the best of
all of them on the same users.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.arrays import SequenceArrays
from core.vocab import Vocabulary
from evaluation import learned
from evaluation.samples import Scored, score_predictions
from evaluation.tuned import (
    HeuristicParams,
    default_params,
    heuristic_predictions,
    tune_heuristics,
)


@dataclass
class BaselineSuite:
    """Predictions, scores and chosen parameters of every baseline on one set of samples."""

    preds: dict[str, dict[str, np.ndarray]]
    scored: dict[str, Scored]
    params: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        """Mean metrics per baseline (repeat/explore recall included)."""
        return {name: s.metrics for name, s in self.scored.items()}

    def flat_params(self) -> dict[str, str]:
        """``baseline.<name>.<param>`` strings, for MLflow params."""
        return {
            f"baseline.{name}.{key}": str(value)
            for name, values in self.params.items()
            for key, value in values.items()
        }


def run_baseline_suite(
    events: pd.DataFrame,
    arrays: SequenceArrays,
    vocab: Vocabulary,
    horizon: str | pd.Timedelta,
    *,
    val: SequenceArrays | None = None,
    pop_window: str = "3D",
    half_life_days: float = 1.0,
    learned_baseline: bool = True,
    seed: int = 0,
) -> BaselineSuite:
    """Tune on ``val``, then predict and score every baseline on ``arrays``.

    Args:
        events: canonical events covering the history before every cutoff.
        arrays: labelled samples to score (a test split).
        vocab: the vocabulary ``arrays`` (and ``val``) were encoded with.
        horizon: label horizon (churn score scale, learned baseline's label window).
        val: labelled validation samples; without them the heuristics keep the
            configured ``pop_window``/``half_life_days`` (recorded as ``tuned: False``).
        pop_window: untuned popularity window (fallback).
        half_life_days: untuned decay half-life (fallback).
        learned_baseline: also fit and score ``gbdt_rerank``.
        seed: the learned baseline's seed.
    """
    params: dict[str, HeuristicParams]
    if val is not None and len(val) and np.asarray(val.labels()["next_cats"]).any():
        params, val_recall = tune_heuristics(events, val, vocab)
        info = {
            n: {**p.to_dict(), "tuned": True, "val_recall_at_10": val_recall[n]}
            for n, p in params.items()
        }
    else:
        params = default_params(pop_window, half_life_days)
        info = {n: {**p.to_dict(), "tuned": False} for n, p in params.items()}
    preds = heuristic_predictions(events, arrays, vocab, params, horizon)
    if learned_baseline:
        window = params["popularity"].pop_window
        preds[learned.NAME] = learned.gbdt_predictions(
            events, arrays, vocab, horizon, pop_window=window, seed=seed
        )
        info[learned.NAME] = {"pop_window": window, "n_popular": 30, "n_train_cutoffs": 3}
    scored = {name: score_predictions(p, arrays) for name, p in preds.items()}
    return BaselineSuite(preds, scored, info)
