"""Repeat/explore mixture head: where copy and generator mass go, fit, save/load round trip."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pathlib import Path

import keras
import numpy as np
import optuna
import pytest

from modelkit.builder import build_model, compile_model
from modelkit.bundle import Predictor
from modelkit.mixture import CopyDistribution, RepeatExploreMixture
from modelkit.model_config import ModelConfig
from training.fit import initialise_priors, repeat_share
from training.search import TrialPlan, suggest

V = 7
SMALL = {"units": 8, "cat_embed_dim": 8, "period_units": 4, "head_units": 8, "attention_units": 4}
# Row 0: categories 2, 2, 5 and an OOV event; row 1: only padding and OOV (no named history).
CAT = np.array([[0, 2, 1, 2, 5], [0, 0, 0, 1, 1]], np.int32)


def _copy() -> np.ndarray:
    rng = np.random.default_rng(0)
    layer = CopyDistribution(V)
    seq = rng.normal(size=(2, 5, 3)).astype(np.float32)
    prior = rng.normal(size=(2, V)).astype(np.float32)
    layer.build(seq.shape)
    layer.score.assign(np.array([0.5, -1.0, 2.0], np.float32))  # a non-trivial pointer
    return np.asarray(layer(seq, CAT, prior))


def test_copy_mass_goes_only_to_history_categories():
    copy = _copy()
    assert copy[0].sum() == pytest.approx(1.0, abs=1e-6)
    outside = [i for i in range(V) if i not in (2, 5)]  # padding, OOV, unseen categories
    assert np.all(copy[0, outside] == 0.0)
    assert np.all(copy[0, [2, 5]] > 0.0)
    assert np.all(copy[1] == 0.0)  # no named history: nothing to copy


def test_generator_mass_is_one_minus_p_repeat_and_padding_gets_none():
    copy = _copy()
    layer = RepeatExploreMixture(V)
    logits = np.random.default_rng(1).normal(size=(2, V)).astype(np.float32)
    gate = np.array([[0.3], [2.0]], np.float32)
    out = np.asarray(layer(copy, logits, gate, CAT))
    p_repeat = 1.0 / (1.0 + np.exp(-0.3))
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose((out[0] - p_repeat * copy[0]).sum(), 1.0 - p_repeat, atol=1e-6)
    assert np.all(out[:, 0] == 0.0)
    unseen = [1, 3, 4, 6]  # OOV and unseen categories: generator mass only
    assert np.all(out[0, unseen] > 0.0)
    # Row 1 has no named history: its gate is forced shut, everything is generated.
    expected = np.exp(logits[1, 1:]) / np.exp(logits[1, 1:]).sum()
    np.testing.assert_allclose(out[1, 1:], expected, rtol=1e-5)


def test_mixture_config_rules_and_old_params_default_to_prior():
    with pytest.raises(ValueError, match="mixture"):
        ModelConfig(next_cats_head="mixture", next_cats_loss="bce")
    with pytest.raises(ValueError, match="next_cats_head"):
        ModelConfig(next_cats_head="pointer")
    assert ModelConfig.from_dict({"cell": "gru"}).next_cats_head == "prior"
    config = ModelConfig(next_cats_head="mixture")
    assert ModelConfig.from_dict({k: str(v) for k, v in config.to_dict().items()}) == config


def test_the_study_can_choose_the_mixture_head():
    params = {
        "cell": "gru",
        "units": 32,
        "cat_embed_dim": 16,
        "dropout": 0.1,
        "pooling": "mean",
        "use_time_features": True,
        "use_period_branch": False,
        "next_cats_head": "mixture",
        "learning_rate": 1e-3,
        "init": "scratch",
    }
    plan = suggest(optuna.trial.FixedTrial(params))
    assert plan.model.next_cats_head == "mixture"
    assert TrialPlan.from_params(plan.params()) == plan


@pytest.mark.parametrize(
    "config",
    [
        ModelConfig(next_cats_head="mixture", cell="lstm", pooling="attention", **SMALL),
        ModelConfig(
            next_cats_head="mixture",
            cell="bilstm",
            pooling="target_attention",
            tie_output_embeddings=False,
            **SMALL,
        ),
    ],
    ids=["lstm-attention", "bilstm-target_attention"],
)
def test_mixture_fits_saves_and_predicts_the_same(config, tiny_spec, toy_arrays, tmp_path: Path):
    model = compile_model(build_model(config, tiny_spec), config, jit_compile=False)
    assert initialise_priors(model, TrialPlan(config), toy_arrays)
    # Toy labels are exactly the history categories: the gate starts almost fully open.
    assert repeat_share(toy_arrays) == pytest.approx(1.0)
    assert float(model.get_layer("repeat_gate").bias.numpy()[0]) > 5.0
    history = model.fit(
        toy_arrays.inputs(), toy_arrays.labels(), epochs=1, batch_size=16, verbose=0
    )
    assert np.isfinite(history.history["loss"][0])
    inputs = toy_arrays.inputs()
    expected = {k: np.asarray(v) for k, v in model(inputs, training=False).items()}
    np.testing.assert_allclose(expected["next_cats"].sum(axis=1), 1.0, atol=1e-5)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    got = Predictor(loaded).predict(inputs)
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value.reshape(got[name].shape), atol=1e-5)
