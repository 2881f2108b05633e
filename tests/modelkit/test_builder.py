"""Model builder: every variant builds, fits, round-trips through .keras and the Predictor."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import itertools
from pathlib import Path

import keras
import numpy as np
import pytest

from modelkit.builder import build_model, compile_model
from modelkit.bundle import Predictor
from modelkit.layers import MaskedTrajectoryLoss
from modelkit.model_config import CELLS, POOLINGS, ModelConfig

SMALL = {"units": 8, "cat_embed_dim": 8, "period_units": 4, "head_units": 8, "attention_units": 4}
# Every cell and pooling once, plus stacked, no time features, no period branch, untied.
COVERING = [
    ModelConfig(cell="lstm", pooling="last", **SMALL),
    ModelConfig(cell="gru", pooling="mean", n_layers=2, **SMALL),
    ModelConfig(cell="bilstm", pooling="attention", use_time_features=False, **SMALL),
    ModelConfig(
        cell="lstm",
        pooling="target_attention",
        use_period_branch=False,
        tie_output_embeddings=False,
        **SMALL,
    ),
]
PRODUCT = [ModelConfig(cell=c, pooling=p, **SMALL) for c, p in itertools.product(CELLS, POOLINGS)]


def _check_shapes(outputs: dict, n: int, spec) -> None:
    assert outputs["next_cats"].shape == (n, spec.n_categories)
    assert outputs["buy"].shape == (n,)
    assert outputs["churn"].shape == (n,)
    assert outputs["trajectory"].shape == (n, spec.future_periods, spec.n_buckets)
    np.testing.assert_allclose(outputs["trajectory"].sum(-1), 1.0, atol=1e-5)
    for value in outputs.values():
        assert np.isfinite(value).all()


def _round_trip(model: keras.Model, tmp_path: Path, inputs: dict, spec) -> None:
    expected = {k: np.asarray(v) for k, v in model(inputs, training=False).items()}
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    got = Predictor(loaded).predict(inputs)
    _check_shapes(got, len(inputs["cat"]), spec)
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value.reshape(got[name].shape), atol=1e-5)


def test_config_round_trips_and_rejects_bad_values():
    config = ModelConfig(cell="gru", pooling="mean", n_layers=2)
    assert ModelConfig.from_dict(config.to_dict()) == config
    as_strings = {k: str(v) for k, v in config.to_dict().items()}  # MLflow params
    assert ModelConfig.from_dict(as_strings) == config
    with pytest.raises(ValueError, match="cell"):
        ModelConfig(cell="rnn")
    with pytest.raises(ValueError, match="pooling"):
        ModelConfig(pooling="max")
    with pytest.raises(ValueError, match="unknown ModelConfig fields"):
        ModelConfig.from_dict({"unit": 3})


@pytest.mark.parametrize("config", COVERING, ids=lambda c: f"{c.cell}-{c.pooling}")
def test_variant_fits_saves_and_predicts_the_same(config, tiny_spec, toy_arrays, tmp_path):
    model = compile_model(build_model(config, tiny_spec), config, jit_compile=False)
    assert {t.name for t in model.inputs} == set(toy_arrays.inputs())
    history = model.fit(
        toy_arrays.inputs(), toy_arrays.labels(), epochs=1, batch_size=16, verbose=0
    )
    assert np.isfinite(history.history["loss"][0])
    _round_trip(model, tmp_path, toy_arrays.inputs(), tiny_spec)


@pytest.mark.parametrize("config", PRODUCT, ids=lambda c: f"{c.cell}-{c.pooling}")
def test_every_cell_and_pooling_round_trips(config, tiny_spec, toy_arrays, tmp_path):
    _round_trip(build_model(config, tiny_spec), tmp_path, toy_arrays.inputs(), tiny_spec)


def test_loss_decreases_on_learnable_task(tiny_spec, toy_arrays):
    config = ModelConfig(learning_rate=1e-2, dropout=0.0, **SMALL)
    model = compile_model(build_model(config, tiny_spec), config, jit_compile=False)
    keras.utils.set_random_seed(0)
    history = model.fit(toy_arrays.inputs(), toy_arrays.labels(), epochs=8, batch_size=8, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.8 * losses[0], losses


def test_padding_does_not_change_predictions(tiny_spec, toy_arrays):
    model = build_model(ModelConfig(pooling="attention", **SMALL), tiny_spec)
    row = int(np.argmax(toy_arrays.cat[:, 0] == 0))  # a sample padded at position 0
    inputs = {k: v[row : row + 1] for k, v in toy_arrays.inputs().items()}
    assert inputs["cat"][0, 0] == 0
    a = model(inputs)
    changed = {k: v.copy() for k, v in inputs.items()}
    changed["gap"][:, 0] = 5.0  # a feature under padding must be ignored
    np.testing.assert_allclose(
        np.asarray(model(changed)["next_cats"]), np.asarray(a["next_cats"]), atol=1e-6
    )


def test_trajectory_loss_ignores_empty_periods():
    loss = MaskedTrajectoryLoss()
    pred = np.array([[[0.5, 0.5], [0.9, 0.1]]], np.float32)
    only_first = np.array([[[1.0, 0.0], [0.0, 0.0]]], np.float32)
    np.testing.assert_allclose(float(loss(only_first, pred)), -np.log(0.5), rtol=1e-5)
    assert float(loss(np.zeros_like(pred), pred)) == 0.0
