"""Seed-ensemble refit: member 0 is the single model of the seed, outputs are the mean."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from modelkit.builder import build_model
from modelkit.ensemble import members_of
from modelkit.model_config import ModelConfig
from training.ensemble import fit_ensemble
from training.fit import fit_model, initialise, predict_arrays
from training.search import TrialPlan

PLAN = TrialPlan(ModelConfig(units=8, cat_embed_dim=8, period_units=4, head_units=8))


def test_ensemble_members_are_seeded_fits_and_outputs_their_mean(tiny_spec, toy_arrays):
    kwargs = {"epochs": 1, "batch_size": 16, "pretrain_epochs": 0}
    seen: list[int] = []
    result = fit_ensemble(
        PLAN, tiny_spec, toy_arrays, members=2, seed=3, on_member=seen.append, **kwargs
    )
    assert seen == [0, 1] and len(result.history) == 1
    members = members_of(result.model)
    assert len(members) == 2
    single = fit_model(PLAN, tiny_spec, toy_arrays, seed=3, **kwargs).model
    got = predict_arrays(result.model, toy_arrays)
    parts = [predict_arrays(m, toy_arrays) for m in members]
    np.testing.assert_allclose(
        parts[0]["next_cats"], predict_arrays(single, toy_arrays)["next_cats"], atol=1e-5
    )
    assert not np.allclose(parts[0]["buy"], parts[1]["buy"], atol=1e-6)  # different seeds
    for key, value in got.items():
        np.testing.assert_allclose(value, (parts[0][key] + parts[1][key]) / 2, atol=1e-5)
    # A warm start from an ensemble champion copies its first member's layers.
    fresh = build_model(PLAN.model, tiny_spec)
    plan = TrialPlan(PLAN.model, init="warm_start")
    copied, _ = initialise(
        plan,
        fresh,
        tiny_spec,
        toy_arrays,
        batch_size=16,
        pretrain_epochs=0,
        warm_start=result.model,
    )
    assert copied > 0
    np.testing.assert_allclose(
        fresh.get_layer("cat_embedding").get_weights()[0],
        members[0].get_layer("cat_embedding").get_weights()[0],
    )
    with pytest.raises(ValueError, match="train.ensemble"):
        fit_ensemble(PLAN, tiny_spec, toy_arrays, members=0, seed=3, **kwargs)
