"""Bundle save/load with safe_mode, bucketed Predictor, latency figure."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import time

import numpy as np
import pandas as pd
import pytest

from core.arrays import FeatureSpec
from core.config import FeatureConfig
from core.vocab import Vocabulary
from modelkit.builder import build_model
from modelkit.bundle import BUCKETS, bucket_size, load_bundle, save_bundle
from modelkit.model_config import ModelConfig


def _spec(vocab: Vocabulary, n_events: int) -> FeatureSpec:
    return FeatureSpec(n_events, 3, 4, 5, 4, vocab.size, 2, "day", "3D", vocab.hash)


def _inputs(spec: FeatureSpec, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    N = spec.max_events
    real = np.arange(N)[None, :] >= rng.integers(0, N, n)[:, None]
    cat = np.where(real, rng.integers(1, spec.n_categories, (n, N)), 0).astype(np.int32)
    return {
        "cat": cat,
        "beh": np.where(real, rng.integers(1, 5, (n, N)), 0).astype(np.int32),
        "hour": np.where(real, rng.integers(1, 25, (n, N)), 0).astype(np.int32),
        "gap": np.where(real, rng.random((n, N)), 0).astype(np.float32),
        "age": np.where(real, rng.random((n, N)), 0).astype(np.float32),
        "period_dist": rng.random((n, 3, 4)).astype(np.float32),
        "period_counts": rng.random((n, 3, 4)).astype(np.float32),
    }


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    vocab = Vocabulary([f"c{i}" for i in range(10)], top_categories=3)
    spec = _spec(vocab, 6)
    config = ModelConfig(
        units=8, cat_embed_dim=8, period_units=4, head_units=8, pooling="attention"
    )
    model = build_model(config, spec)
    folder = tmp_path_factory.mktemp("bundle")
    reference = pd.DataFrame({"seq_len": [1.0, 2.0]})
    save_bundle(folder, model, vocab, FeatureConfig(), spec, {"model_name": "m"}, reference)
    return model, folder, spec


def test_bundle_round_trip_matches_model(saved):
    model, folder, spec = saved
    bundle = load_bundle(folder)
    assert bundle.spec == spec and bundle.metadata == {"model_name": "m"}
    assert bundle.vocab.size == spec.n_categories
    assert bundle.reference()["seq_len"].tolist() == [1.0, 2.0]
    inputs = _inputs(spec, 300)  # two chunks: 256 + 44 padded to 128
    got = bundle.predict(inputs)
    want = model(inputs, training=False)
    assert got["buy"].shape == (300,) and got["next_cats"].shape == (300, spec.n_categories)
    for name, value in want.items():
        np.testing.assert_allclose(got[name], np.asarray(value).reshape(got[name].shape), atol=1e-5)


def test_bucket_padding_equals_unpadded_batch(saved):
    model, folder, spec = saved
    bundle = load_bundle(folder)
    assert [bucket_size(n) for n in (1, 2, 8, 9, 200)] == [1, 8, 8, 32, 256]
    inputs = _inputs(spec, 5, seed=3)
    padded = bundle.predict(inputs)  # runs at bucket size 8
    alone = [bundle.predict({k: v[i : i + 1] for k, v in inputs.items()}) for i in range(5)]
    for name in padded:
        np.testing.assert_allclose(
            padded[name], np.concatenate([a[name] for a in alone]), atol=1e-5
        )


def test_load_and_predict_name_the_problem(saved, tmp_path):
    _, folder, spec = saved
    with pytest.raises(FileNotFoundError, match="model.keras"):
        load_bundle(tmp_path)
    bundle = load_bundle(folder)
    bad = _inputs(spec, 2)
    bad["cat"] = bad["cat"][:, :4]
    with pytest.raises(ValueError, match="'cat'"):
        bundle.predict(bad)
    with pytest.raises(ValueError, match="missing"):
        bundle.predict({"cat": bad["cat"]})


def test_batch1_latency_bundle_vs_model_predict(tmp_path):
    vocab = Vocabulary([f"c{i}" for i in range(1998)], top_categories=3)
    spec = _spec(vocab, 50)
    model = build_model(ModelConfig(), spec)
    save_bundle(tmp_path, model, vocab, FeatureConfig(), spec, {})
    bundle = load_bundle(tmp_path)
    bundle.warmup((1,))
    one = _inputs(spec, 1)
    model.predict(one, verbose=0)
    start = time.perf_counter()
    for _ in range(20):
        bundle.predict(one)
    fast = (time.perf_counter() - start) / 20
    start = time.perf_counter()
    for _ in range(3):
        model.predict(one, verbose=0)
    slow = (time.perf_counter() - start) / 3
    print(
        f"\nbatch-1 latency V=2000 N=50: Bundle.predict {fast * 1e3:.1f} ms, model.predict {slow * 1e3:.1f} ms"
    )
    assert BUCKETS[0] == 1
