"""Streamed training input: shards through tf.data equal the in-memory arrays."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import make_toy_arrays

from evaluation.metrics import evaluate_predictions
from modelkit.builder import build_model, compile_model
from modelkit.model_config import ModelConfig
from training.fit import fit_model, fit_targets, predict_arrays
from training.search import TrialPlan
from training.stream_input import (
    StreamingMetrics,
    evaluate_shards,
    iter_blocks,
    sample_shards,
    shard_dataset,
    write_shards,
)

CONFIG = ModelConfig(units=8, cat_embed_dim=8, head_units=8, attention_units=8, period_units=8)


@pytest.fixture(scope="module")
def arrays():
    return make_toy_arrays(n=300, seed=1)


def test_blocks_read_every_row_once_and_dataset_shuffles_across_shards(arrays, tmp_path):
    paths = write_shards(arrays, tmp_path, shard_rows=70)
    assert len(paths) == 5
    blocks = [b for p in paths for b in iter_blocks(p, 16)]
    assert max(len(b["cat"]) for b in blocks) == 16
    np.testing.assert_array_equal(np.concatenate([b["cat"] for b in blocks]), arrays.cat)
    np.testing.assert_array_equal(
        np.concatenate([b["next_cats"] for b in blocks]), arrays.next_cats
    )
    data = shard_dataset(paths, batch_size=32, shuffle_buffer=50, block_rows=16, seed=3)
    seen = [(x["cat"].numpy(), y["buy"].numpy()) for x, y in data]
    cat = np.concatenate([c for c, _ in seen])
    assert seen[0][1].shape == (32, 1) and len(cat) == len(arrays)
    assert not np.array_equal(cat, arrays.cat)  # shuffled ...
    key = lambda a: sorted(map(bytes, a))  # noqa: E731
    assert key(cat) == key(arrays.cat)  # ... and every sample exactly once
    assert len(sample_shards(paths, 100)) == 100 and len(sample_shards(paths, 10**6)) == 300


def test_sampled_shards_keep_their_cutoffs(arrays, tmp_path):
    # popularity_from="latest" picks the prior sample's latest-cutoff rows by these.
    later = arrays.cutoff + np.where(np.arange(len(arrays)) % 2, np.timedelta64(7, "D"), 0)
    paths = write_shards(dataclasses.replace(arrays, cutoff=later), tmp_path, shard_rows=70)
    np.testing.assert_array_equal(sample_shards(paths, 10**6).cutoff, later)


def test_streaming_metrics_equal_in_memory_metrics(arrays, tiny_spec, tmp_path):
    keras.utils.set_random_seed(0)
    model = compile_model(build_model(CONFIG, tiny_spec), CONFIG)
    expected = evaluate_predictions(predict_arrays(model, arrays), arrays)
    paths = write_shards(arrays, tmp_path, shard_rows=64)
    got = evaluate_shards(lambda x: predict_arrays(model, _as_arrays(arrays, x)), paths, 10, 25)
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-12, nan_ok=True), name
    assert StreamingMetrics().k == 10


def _as_arrays(template, inputs):
    """Inputs of a block as SequenceArrays for predict_arrays (labels unused)."""
    n = len(inputs["cat"])
    return template.select(np.arange(n)).__class__(
        user_id=np.zeros(n, str), cutoff=np.zeros(n), **inputs
    )


def test_unshuffled_stream_trains_the_same_weights_as_arrays(arrays, tiny_spec, tmp_path):
    """Same batches in the same order: the stream feeds exactly the arrays' gradients."""
    paths = write_shards(arrays, tmp_path, shard_rows=64)
    keras.utils.set_random_seed(0)
    a = compile_model(build_model(CONFIG, tiny_spec), CONFIG)
    a.fit(arrays.inputs(), fit_targets(arrays), batch_size=32, epochs=1, shuffle=False, verbose=0)
    keras.utils.set_random_seed(0)
    b = compile_model(build_model(CONFIG, tiny_spec), CONFIG)
    b.fit(shard_dataset(paths, batch_size=32, shuffle=False), epochs=1, shuffle=False, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)


def test_fit_model_streamed_matches_in_memory_within_noise(arrays, tiny_spec, tmp_path):
    """Shuffled differently, so not equal: validation metrics within seed-to-seed noise."""
    train, val = arrays.select(np.arange(220)), arrays.select(np.arange(220, 300))
    paths = write_shards(train, Path(tmp_path), shard_rows=64)
    plan = TrialPlan(model=CONFIG)
    kwargs = {"epochs": 3, "batch_size": 32, "seed": 0, "pretrain_epochs": 0}
    memory = fit_model(plan, tiny_spec, train, **kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        streamed = fit_model(
            plan,
            tiny_spec,
            sample_shards(paths, 10**6),
            stream=shard_dataset(paths, batch_size=32, shuffle_buffer=100, seed=0),
            **kwargs,
        )
    assert streamed.epochs == memory.epochs == 3
    # Every epoch streams every sample: Keras's end-of-first-epoch warning is not shown.
    assert not [w for w in caught if "ran out of data" in str(w.message)]
    m = evaluate_predictions(predict_arrays(memory.model, val), val)
    s = evaluate_predictions(predict_arrays(streamed.model, val), val)
    # Two in-memory fits with seeds 0 and 1 differ by about this much on 80 toy samples.
    other = fit_model(plan, tiny_spec, train, **{**kwargs, "seed": 1})
    o = evaluate_predictions(predict_arrays(other.model, val), val)
    noise = max(abs(m["recall_at_10"] - o["recall_at_10"]), 0.02)
    assert abs(s["recall_at_10"] - m["recall_at_10"]) <= 2 * noise
    assert abs(s["buy_auc"] - m["buy_auc"]) <= 0.1


def test_user_share_streams_and_scores_only_the_hash_chosen_users(arrays, tiny_spec, tmp_path):
    from types import SimpleNamespace

    from core.config import load_config
    from eventlogs.subset import in_user_share
    from training.streamed import write_streamed

    paths = write_shards(arrays, tmp_path / "s", shard_rows=70)
    keep = in_user_share(arrays.user_id.astype(str), 0.4)
    assert 0 < keep.sum() < len(arrays)
    data = shard_dataset(paths, batch_size=32, shuffle_buffer=50, block_rows=16, share=0.4)
    cat = np.concatenate([x["cat"].numpy() for x, _ in data])
    key = lambda a: sorted(map(bytes, a))  # noqa: E731
    assert key(cat) == key(arrays.cat[keep])  # exactly the share's samples, each once
    keras.utils.set_random_seed(0)
    model = compile_model(build_model(CONFIG, tiny_spec), CONFIG)
    shared = arrays.select(np.flatnonzero(keep))
    expected = evaluate_predictions(predict_arrays(model, shared), shared)
    predict = lambda x: predict_arrays(model, _as_arrays(arrays, x))  # noqa: E731
    got = evaluate_shards(predict, paths, 10, 25, share=0.4)
    assert got["n_samples"] == keep.sum()
    assert got["recall_at_10"] == pytest.approx(expected["recall_at_10"], rel=1e-9, nan_ok=True)
    # trials stream train.trial_share of users; the refit streams every user
    config = load_config(overrides={"train": {"trial_share": 0.4, "shard_rows": 70}}, env={})
    prepared = SimpleNamespace(train=arrays, val=arrays, shards=None)  # in-memory arrays
    assert write_streamed(config, prepared, tmp_path / "t").share == 0.4
    assert write_streamed(config, prepared, tmp_path / "r", refit=True).share == 1.0
