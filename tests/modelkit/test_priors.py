"""Prior layers: the untrained model starts at the heuristics; priors round-trip."""

from __future__ import annotations

import dataclasses
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from core.arrays import SequenceArrays
from evaluation.baselines import persist_trajectory
from evaluation.metrics import auc, js_divergence
from modelkit.builder import build_model
from modelkit.layers import (
    ActivityFeatures,
    HeuristicFeatures,
    HistoryPrior,
    ListwiseLoss,
    ScalarGate,
)
from modelkit.model_config import ModelConfig
from training.fit import fit_logistic_1d, initialise_priors
from training.headfit import fit_linear_logit, head_features
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


def test_fit_logistic_1d_recovers_slope_and_handles_one_class():
    rng = np.random.default_rng(0)
    x = rng.normal(size=4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-(2.0 * x - 1.0)))).astype(float)
    scale, bias = fit_logistic_1d(x, y)
    assert abs(scale - 2.0) < 0.25 and abs(bias + 1.0) < 0.2
    scale, bias = fit_logistic_1d(x, np.zeros_like(x))
    assert scale == 0.0 and bias < -5


def test_heuristic_features_count_carts_buys_and_recency(toy_arrays):
    out = np.asarray(HeuristicFeatures()(toy_arrays.age, toy_arrays.cat, toy_arrays.period_counts))
    carts_buys = np.expm1(toy_arrays.period_counts[..., 2:4]).sum(axis=(1, 2))
    np.testing.assert_allclose(out[:, 0], np.log1p(carts_buys), rtol=1e-5)
    np.testing.assert_allclose(out[:, 1], toy_arrays.age[:, -1], atol=1e-6)
    empty = np.zeros_like(toy_arrays.cat[:1])
    silent = HeuristicFeatures()(toy_arrays.age[:1] * 0, empty, toy_arrays.period_counts[:1])
    assert float(np.asarray(silent)[0, 1]) > float(out[:, 1].max())  # no history: likeliest churn


def test_scalar_gate_bounds_the_learned_logits():
    x = np.array([[1.0, 2.0, 3.0], [100.0, 0.0, -100.0]], np.float32)
    assert np.all(np.asarray(ScalarGate()(x)) == 0.0)  # starts exactly at the prior
    out = np.asarray(ScalarGate(0.5)(x))
    np.testing.assert_allclose(out.std(axis=1), 0.5, rtol=1e-4)
    np.testing.assert_allclose(out.mean(axis=1), 0.0, atol=1e-5)


def test_untrained_buy_and_churn_heads_reproduce_the_heuristics(tiny_spec, toy_arrays):
    rng = np.random.default_rng(1)
    hours = rng.exponential(50.0, len(toy_arrays)).astype(np.float32)
    age = toy_arrays.age.copy()
    age[:, -1] = np.log1p(hours)
    arrays = dataclasses.replace(
        toy_arrays,
        age=age,
        churn=(hours + rng.normal(0, 30, len(hours)) > 50).astype(np.float32),
    )
    plan = TrialPlan(ModelConfig(**SMALL, linear_heads=False))
    model = build_model(plan.model, tiny_spec)
    assert initialise_priors(model, plan, arrays)
    out = model(arrays.inputs(), training=False)
    features = np.asarray(HeuristicFeatures()(arrays.age, arrays.cat, arrays.period_counts))
    for column, head in enumerate(("buy", "churn")):
        assert not np.any(model.get_layer(f"{head}_residual").get_weights()[0])
        pred = np.asarray(out[head])[:, 0]
        label = getattr(arrays, head)
        heuristic = auc(label, features[:, column])
        assert abs(auc(label, pred) - max(heuristic, 1 - heuristic)) < 1e-6
    assert model.get_layer("churn_prior").scale.numpy() > 0  # silent longer: likelier churn


def test_untrained_linear_heads_are_the_logistic_fit_on_every_count(tiny_spec, toy_arrays):
    rng = np.random.default_rng(2)
    counts = toy_arrays.period_counts.copy()
    counts[:, -1, 0] = np.log1p(rng.integers(0, 6, len(toy_arrays)))  # last-period views
    arrays = dataclasses.replace(
        toy_arrays,
        period_counts=counts,
        buy=(np.expm1(counts[:, -1, 0]) + rng.normal(0, 1, len(counts)) > 2.5).astype("f4"),
    )
    plan = TrialPlan(ModelConfig(**SMALL))  # linear_heads is the default
    model = build_model(plan.model, tiny_spec)
    assert initialise_priors(model, plan, arrays)
    x = head_features(model, arrays)
    assert x.shape == (len(arrays), 2 + 2 * counts.shape[-1] + 4)
    out = model(arrays.inputs(), training=False)
    for head in ("buy", "churn"):
        assert not np.any(model.get_layer(f"{head}_residual").get_weights()[0])
        center, spread, coef, bias = fit_linear_logit(x, getattr(arrays, head))
        logit = ((x - center) / spread) @ coef + bias
        np.testing.assert_allclose(np.asarray(out[head])[:, 0], 1 / (1 + np.exp(-logit)), atol=1e-5)
    # Last-period views drive the synthetic purchases: the fit weighs them, the 1-D heuristic
    # (past carts + buys) cannot see them.
    buy = auc(arrays.buy, np.asarray(out["buy"])[:, 0])
    one_d = auc(arrays.buy, np.asarray(HeuristicFeatures()(arrays.age, arrays.cat, counts))[:, 0])
    assert buy > max(one_d, 1 - one_d) + 0.1


def test_one_class_labels_give_the_base_rate_and_no_weights():
    x = np.random.default_rng(0).normal(size=(20, 3))
    center, spread, coef, bias = fit_linear_logit(x, np.zeros(20))
    assert not coef.any() and bias < -3  # log-odds of (0 + 0.5) / 21
    assert np.all(spread > 0)


def test_latest_popularity_comes_from_the_latest_cutoff_only(tiny_spec, toy_arrays):
    # Two cutoffs: category 5 is everyone's label at the old one, category 6 at the latest.
    old, new = dataclasses.replace(toy_arrays), dataclasses.replace(toy_arrays)
    old.next_cats = np.zeros_like(toy_arrays.next_cats)
    old.next_cats[:, 5] = 1.0
    new.next_cats = np.zeros_like(toy_arrays.next_cats)
    new.next_cats[:4, 6] = 1.0  # fewer users than the old cutoff's 5
    new.cutoff = toy_arrays.cutoff + np.timedelta64(4, "D")
    train = SequenceArrays.concat([old, new])
    biases = {}
    for source in ("all", "latest"):
        plan = TrialPlan(ModelConfig(**SMALL, popularity_from=source))
        model = build_model(plan.model, tiny_spec)
        initialise_priors(model, plan, train)
        biases[source] = np.asarray(model.get_layer("history_prior").popularity)
    assert biases["all"][5] > biases["all"][6]  # all cutoffs: the old favourite leads
    assert biases["latest"][6] > biases["latest"][5]  # latest only: the old one is forgotten
    np.testing.assert_allclose(biases["latest"][5], biases["latest"][7])


def test_popularity_from_rejects_unknown_sources():
    with pytest.raises(ValueError, match="popularity_from"):
        ModelConfig(popularity_from="future")
