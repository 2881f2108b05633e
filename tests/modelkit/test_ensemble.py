"""Seed ensembles: one Keras model whose outputs are the members' means, saved and served alike."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pandas as pd
import pytest

from core.arrays import FeatureSpec
from core.config import FeatureConfig
from core.vocab import Vocabulary
from modelkit.builder import build_model
from modelkit.bundle import Predictor, load_bundle, save_bundle
from modelkit.ensemble import average_members, first_member, members_of
from modelkit.model_config import ModelConfig
from modelkit.runtime import KERAS, TOLERANCE, select_runtime


def _inputs(spec: FeatureSpec, n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    N = spec.max_events
    real = np.arange(N)[None, :] >= rng.integers(0, N, n)[:, None]
    return {
        "cat": np.where(real, rng.integers(1, spec.n_categories, (n, N)), 0).astype(np.int32),
        "beh": np.where(real, rng.integers(1, 5, (n, N)), 0).astype(np.int32),
        "hour": np.where(real, rng.integers(1, 25, (n, N)), 0).astype(np.int32),
        "gap": np.where(real, rng.random((n, N)), 0).astype(np.float32),
        "age": np.where(real, rng.random((n, N)), 0).astype(np.float32),
        "period_dist": rng.random((n, 3, 4)).astype(np.float32),
        "period_counts": rng.random((n, 3, 4)).astype(np.float32),
    }


@pytest.fixture(scope="module")
def members():
    vocab = Vocabulary([f"c{i}" for i in range(10)], top_categories=3)
    spec = FeatureSpec(6, 3, 4, 5, 4, vocab.size, 2, "day", "3D", vocab.hash)
    config = ModelConfig(units=8, cat_embed_dim=8, period_units=4, head_units=8)
    models = []
    for seed in range(3):
        keras.utils.set_random_seed(seed)
        model = build_model(config, spec)
        # Distinct members: untrained next-category logits start gated off, so move weights.
        for weight in model.trainable_weights:
            weight.assign(weight + np.random.default_rng(seed).normal(0, 0.3, weight.shape))
        models.append(model)
    return vocab, spec, models


def test_outputs_are_the_members_mean_and_survive_a_bundle(members, tmp_path):
    vocab, spec, models = members
    inputs = _inputs(spec, 9, seed=1)
    singles = [{k: np.asarray(v) for k, v in m(inputs, training=False).items()} for m in models]
    ensemble = average_members(models)
    got = Predictor(ensemble).predict(inputs)
    assert not np.allclose(singles[0]["next_cats"], singles[1]["next_cats"], atol=1e-4)
    for key in ("next_cats", "buy", "churn", "trajectory"):
        want = np.mean([s[key] for s in singles], axis=0).reshape(got[key].shape)
        np.testing.assert_allclose(got[key], want, atol=1e-6)
    np.testing.assert_allclose(got["next_cats"].sum(axis=1), 1.0, atol=1e-5)
    assert len(members_of(ensemble)) == 3 and first_member(ensemble) is models[0]
    save_bundle(
        tmp_path,
        ensemble,
        vocab,
        FeatureConfig(),
        spec,
        {"model_name": "m"},
        pd.DataFrame({"seq_len": [1.0]}),
    )
    loaded = load_bundle(tmp_path)  # safe_mode=True
    again = loaded.predict(inputs)
    for key, value in got.items():
        np.testing.assert_allclose(again[key], value, atol=1e-6)
    assert len(members_of(loaded.model)) == 3


def test_served_runtime_of_an_ensemble_matches_keras(members):
    _vocab, spec, models = members
    ensemble = average_members(models)
    keras_only = Predictor(ensemble)
    served, summary = select_runtime(keras_only, (1,), ("tflite",), repeats=2)
    size = summary["by_batch"]["1"]
    assert "tflite" in size["ms"], size["left_out"]  # the ensemble converts like one model
    assert size["max_abs_diff"]["tflite"] <= TOLERANCE
    assert size["runtime"] in (KERAS, "tflite")
    inputs = _inputs(spec, 1, seed=2)
    want = keras_only.predict(inputs)
    for key, value in served.predict(inputs).items():
        np.testing.assert_allclose(value, want[key], atol=TOLERANCE)


def test_one_member_is_the_model_itself(members):
    _vocab, _spec, models = members
    assert average_members(models[:1]) is models[0]
    with pytest.raises(ValueError, match="at least one"):
        average_members([])
