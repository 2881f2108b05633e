"""Prior layers: the untrained model starts at the heuristics; priors round-trip."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from core.baselines import persist_trajectory
from core.layers import ActivityFeatures, HistoryPrior, ListwiseLoss
from core.metrics import js_divergence
from training.fit import initialise_priors
from training.model import build_model
from training.model_config import ModelConfig
from training.search import TrialPlan

SMALL = {"units": 8, "cat_embed_dim": 8, "period_units": 4, "head_units": 8, "attention_units": 4}


def test_history_prior_ranks_by_weighted_decayed_count():
    layer = HistoryPrior(6, 5)
    cat = np.array([[0, 2, 3, 3, 4]], np.int32)
    beh = np.array([[0, 1, 1, 1, 3]], np.int32)  # view, view, view, cart
    age = np.log1p(np.array([[0, 1, 1, 1, 500.0]], np.float32))  # cart 3 weeks old
    scores = np.asarray(layer(cat, beh, age))[0]
    assert scores.shape == (6,)
    assert scores[3] > scores[2] > scores[5]  # two views beat one; unseen last
    assert scores[4] > scores[5]  # old cart still seen
    assert scores[0] == scores[5] == scores[1]  # padding adds nothing


def test_listwise_loss_prefers_mass_on_truth_and_skips_empty_rows():
    loss = ListwiseLoss()
    truth = np.array([[0, 1, 1, 0]], np.float32)
    good = np.array([[0.05, 0.45, 0.45, 0.05]], np.float32)
    bad = np.array([[0.45, 0.05, 0.05, 0.45]], np.float32)
    assert float(loss(truth, good)) < float(loss(truth, bad))
    assert float(loss(np.zeros_like(truth), bad)) == 0.0


def test_activity_features_shape_and_recency(toy_arrays):
    out = np.asarray(ActivityFeatures()(toy_arrays.age, toy_arrays.cat, toy_arrays.period_counts))
    assert out.shape == (len(toy_arrays), 2 * toy_arrays.period_counts.shape[-1] + 4)
    np.testing.assert_allclose(out[:, 2 * 4], toy_arrays.age[:, -1], atol=1e-6)


def test_untrained_model_starts_at_the_heuristics(tiny_spec, toy_arrays):
    plan = TrialPlan(ModelConfig(**SMALL))
    model = build_model(plan.model, tiny_spec)
    assert initialise_priors(model, plan, toy_arrays)
    out = model(toy_arrays.inputs(), training=False)
    scores = np.asarray(out["next_cats"])
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-5)  # softmax output
    seen = toy_arrays.next_cats > 0  # toy truth = categories in the history
    seen[:, :2] = False
    for row in range(len(toy_arrays)):
        assert scores[row, seen[row]].min() > scores[row, ~seen[row]][2:].max()
    persistence = persist_trajectory(toy_arrays, tiny_spec.future_periods)
    model_js = js_divergence(np.asarray(out["trajectory"]), toy_arrays.trajectory)
    assert model_js < js_divergence(persistence, toy_arrays.trajectory) + 0.05


def test_prior_model_round_trips(tiny_spec, toy_arrays, tmp_path):
    config = ModelConfig(**SMALL)
    model = build_model(config, tiny_spec)
    initialise_priors(model, TrialPlan(config), toy_arrays)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    for name, value in model(toy_arrays.inputs()).items():
        np.testing.assert_allclose(loaded(toy_arrays.inputs())[name], value, atol=1e-5)
