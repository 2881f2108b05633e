"""Model runtimes: the served variant (TFLite / XLA / Keras graph) matches the Keras model."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from core.arrays import FeatureSpec
from core.vocab import Vocabulary
from modelkit.builder import build_model
from modelkit.bundle import Predictor
from modelkit.model_config import ModelConfig
from modelkit.runtime import KERAS, TOLERANCE, RuntimePredictor, select_runtime


def _inputs(spec: FeatureSpec, n: int, seed: int) -> dict[str, np.ndarray]:
    # Realistic rows: left-padded events, ids across the whole vocabulary.
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


@pytest.mark.parametrize("head", ["prior", "mixture"])
def test_served_variant_matches_keras_on_a_test_set(head):
    vocab = Vocabulary([f"c{i}" for i in range(10)], top_categories=3)
    spec = FeatureSpec(6, 3, 4, 5, 4, vocab.size, 2, "day", "3D", vocab.hash)
    config = ModelConfig(
        units=8, cat_embed_dim=8, period_units=4, head_units=8, next_cats_head=head
    )
    model = build_model(config, spec)
    keras_only = Predictor(model)
    served, summary = select_runtime(keras_only, (1, 8), ("tflite", "xla"), repeats=3)
    assert set(summary["by_batch"]) == {"1", "8"}
    for size in summary["by_batch"].values():
        # every candidate converted (custom layers included) and matched, or says why not
        assert set(size["ms"]) | set(size["left_out"]) == {KERAS, "tflite", "xla"}
        assert size["runtime"] == min(size["ms"], key=size["ms"].get)
        assert all(d <= TOLERANCE for n, d in size["max_abs_diff"].items() if n in size["ms"])
    assert summary["runtime"] == summary["by_batch"]["1"]["runtime"]
    assert isinstance(served, RuntimePredictor) == any(
        s["runtime"] != KERAS for s in summary["by_batch"].values()
    )
    for n, seed in ((1, 1), (3, 2), (8, 3), (20, 4), (300, 5)):  # every path: lite, pad, Keras
        inputs = _inputs(spec, n, seed)
        want = {k: np.asarray(v) for k, v in model(inputs, training=False).items()}
        got = served.predict(inputs)
        for name, value in want.items():
            assert got[name].shape == keras_only.predict(inputs)[name].shape
            np.testing.assert_allclose(got[name], value.reshape(got[name].shape), atol=TOLERANCE)


def test_a_variant_that_fails_is_left_out_and_keras_serves():
    vocab = Vocabulary([f"c{i}" for i in range(10)], top_categories=3)
    spec = FeatureSpec(6, 3, 4, 5, 4, vocab.size, 2, "day", "3D", vocab.hash)
    model = build_model(ModelConfig(units=8, cat_embed_dim=8, period_units=4, head_units=8), spec)
    predictor = Predictor(model)
    served, summary = select_runtime(predictor, (1,), ("onnx",), repeats=2)
    assert served is predictor and summary["runtime"] == KERAS
    assert "unknown runtime 'onnx'" in summary["by_batch"]["1"]["left_out"]["onnx"]
