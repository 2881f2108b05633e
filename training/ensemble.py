"""Fit a seed ensemble of one plan: K members, saved as one averaging Keras model.

``TrainConfig.ensemble`` members of the refit's plan train on the same samples with seeds
``seed, seed + 1, ...`` (member 0 is exactly the single model of that seed);
:func:`modelkit.ensemble.average_members` turns them into one model whose outputs are their
means, so everything downstream of the refit handles it as one network.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from core.arrays import FeatureSpec, SequenceArrays
from modelkit.ensemble import average_members
from training.fit import FitResult, fit_model
from training.search import TrialPlan


def fit_ensemble(
    plan: TrialPlan,
    spec: FeatureSpec,
    train: SequenceArrays,
    *,
    members: int,
    seed: int,
    on_member: Callable[[int], None] | None = None,
    **fit_kwargs: Any,
) -> FitResult:
    """Train ``members`` copies of ``plan`` (seeds ``seed + i``) and average them.

    Args:
        plan, spec, train: as :func:`training.fit.fit_model`.
        members: ensemble size (1: the single model of ``seed``).
        seed: member 0's seed.
        on_member: called with the member index before each member trains.
        fit_kwargs: the rest of :func:`training.fit.fit_model`'s keywords (epochs, ...).

    Returns:
        The averaged model; ``history`` is the members' per-epoch mean, ``seconds`` and
        ``pretrain_seconds`` their totals.
    """
    if members < 1:
        raise ValueError(f"train.ensemble must be >= 1, got {members}")
    fits = []
    for i in range(members):
        if on_member is not None:
            on_member(i)
        fits.append(fit_model(plan, spec, train, seed=seed + i, **fit_kwargs))
    if members == 1:
        return fits[0]
    epochs = min(len(f.history) for f in fits)
    history = [
        {
            key: float(np.mean([f.history[e].get(key, np.nan) for f in fits]))
            for key in fits[0].history[e]
        }
        for e in range(epochs)
    ]
    return FitResult(
        model=average_members([f.model for f in fits]),
        history=history,
        transferred_layers=fits[0].transferred_layers,
        seconds=sum(f.seconds for f in fits),
        pretrain_seconds=sum(f.pretrain_seconds for f in fits),
    )
