"""Content-aware categories: profiles from pre-cutoff text only, no-text fallback, save/load."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


import numpy as np
import pandas as pd
import pytest

from core.config import load_config
from core.dataset import prepare_dataset
from core.schema import conform
from modelkit.bundle import load_bundle, save_bundle
from modelkit.content import category_profiles, decode_profile, encode_profile
from modelkit.model_config import ModelConfig
from modelkit.runtime import TOLERANCE, select_runtime
from modelkit.text_features import event_tokens, fit_text_features
from modelkit.text_layers import CategoryContent
from training.fit import fit_model, predict_arrays
from training.search import TrialPlan
from training.text_data import add_text

START = pd.Timestamp("2024-01-01", tz="UTC")
WORDS = ["bright strings", "warm tube amp", "cheap cable", "solid stand", "great tuner"]
SMALL = {"units": 8, "cat_embed_dim": 8, "head_units": 8, "period_units": 4,
         "text_embed_dim": 4, "use_content": True}  # fmt: skip


def _events(n_users: int = 60, days: int = 24) -> pd.DataFrame:
    """Categories c0..c5 with text (each its own words), c6 never has any text."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(n_users):
        for d in sorted(rng.choice(days, 8, replace=False)):
            c = int(rng.integers(0, 7))
            text = None if c == 6 else f"{WORDS[c % 5]} day{d}"
            rows.append({"user_id": f"u{u}", "item_id": f"i{c}", "category_id": f"c{c}",
                         "behavior": "buy", "timestamp": START + pd.Timedelta(days=int(d)),
                         "text": text})  # fmt: skip
    return conform(pd.DataFrame(rows))


@pytest.fixture(scope="module")
def job():
    config = load_config(
        overrides={
            "features": {"max_events": 8, "n_periods": 3, "top_categories": 3, "horizon": "3D",
                         "future_periods": 1, "history": None},
            "split": {"n_train_cutoffs": 2},
            "train": {"text_features": True},
        },
        env={},
    )  # fmt: skip
    events = _events()
    data = prepare_dataset(events, config, "toy")
    return config, events, add_text(events, data, config)


def _profile_words(profile: np.ndarray, data) -> set[str]:
    words = ["<pad>", "<oov>", *data.text.text.vocabulary]
    return {words[i] for i in profile.ravel().tolist() if i}


def test_profiles_read_only_text_before_their_cutoff(job):
    _, events, data = job
    score = decode_profile(data.spec.content)
    fit = decode_profile(data.spec.content_fit)
    val_day = (data.splits.val - START).days
    first_train = (min(data.splits.train) - START).days
    # The vectoriser knows the words; the profiles hold only those written before their cutoff.
    assert f"day{val_day - 1}" in _profile_words(score, data)
    assert not {f"day{d}" for d in range(val_day, 40)} & _profile_words(score, data)
    assert not {f"day{d}" for d in range(first_train, 40)} & _profile_words(fit, data)
    # A review written in the horizon with a word of its own never enters the profile.
    leak = events.iloc[:1].copy()
    leak["timestamp"] = data.splits.val
    leak["text"] = "leakword " * 5
    both = conform(pd.concat([events, leak], ignore_index=True))
    features = fit_text_features(both, data.splits.val + pd.Timedelta(days=1))
    tokens = event_tokens(features, both)
    leak_id = features.text.vocabulary.index("leakword") + 2
    before = category_profiles(both, data.vocab, features, data.splits.val, tokens)
    after = category_profiles(
        both, data.vocab, features, data.splits.val + pd.Timedelta(days=1), tokens
    )
    assert leak_id not in before and leak_id in after


def test_categories_without_text_keep_their_id_embedding(job):
    _, _, data = job
    profile = decode_profile(data.spec.content)
    no_text = data.vocab.encode(["c6"])[0]
    assert not profile[no_text].any() and not profile[:2].any()
    assert all(profile[i].any() for i in data.vocab.encode([f"c{c}" for c in range(6)]))
    plan = TrialPlan(model=ModelConfig(**SMALL))
    result = fit_model(plan, data.spec, data.train, epochs=2, batch_size=32, seed=0,
                       pretrain_epochs=0)  # fmt: skip
    layer = next(x for x in result.model.layers if isinstance(x, CategoryContent))
    content = np.asarray(layer.content(training=False))
    assert np.abs(content).sum() > 0  # the projection learned something
    assert not content[no_text].any() and not content[:2].any()
    # training reads the earlier profile, scoring and serving the later one
    assert (np.asarray(layer.profile) == profile).all()
    assert (np.asarray(layer.profile_fit) == decode_profile(data.spec.content_fit)).all()
    assert np.isfinite(predict_arrays(result.model, data.test)["next_cats"]).all()


def test_content_table_survives_save_and_load(job, tmp_path):
    config, _, data = job
    plan = TrialPlan(model=ModelConfig(**SMALL))
    result = fit_model(plan, data.spec, data.train, epochs=1, batch_size=32, seed=0,
                       pretrain_epochs=0)  # fmt: skip
    path = save_bundle(tmp_path / "b", result.model, data.vocab, config.features, data.spec, {})
    bundle = load_bundle(path)
    assert bundle.spec == data.spec and bundle.spec.content == data.spec.content
    layer = next(x for x in bundle.model.layers if isinstance(x, CategoryContent))
    assert (np.asarray(layer.profile) == decode_profile(data.spec.content)).all()
    names = {t.name for t in bundle.model.inputs}
    inputs = {k: v for k, v in data.test.inputs().items() if k in names}
    assert "text_tokens" not in names  # content alone needs no per-request text
    np.testing.assert_allclose(
        bundle.predict(inputs)["next_cats"],
        predict_arrays(result.model, data.test)["next_cats"],
        rtol=1e-5,
        atol=1e-6,
    )
    # the served runtime: TensorFlow Lite freezes the profiles and matches the Keras graph
    _, summary = select_runtime(bundle.predictor, batches=(1,), repeats=3)
    assert summary["by_batch"]["1"]["left_out"] == {}
    assert summary["by_batch"]["1"]["max_abs_diff"]["tflite"] <= TOLERANCE


def test_profile_codec_round_trip_and_errors():
    table = np.arange(12, dtype=np.int32).reshape(4, 3)
    assert (decode_profile(encode_profile(table)) == table).all()
    with pytest.raises(ValueError, match="content profile"):
        decode_profile("4,3:not-base64!")


def test_card_compares_content_with_its_plain_twin(job, tmp_path):
    from training.card import write_card
    from training.text_data import text_ablation

    _, _, data = job
    plan = TrialPlan(model=ModelConfig(**SMALL))
    comparison = text_ablation(data, plan, epochs=1, batch_size=32, seed=0,
                               metrics={"recall_at_10": 0.5})  # fmt: skip
    assert comparison is not None and comparison["channels"] == ["use_content"]
    assert comparison["without_text"]["recall_at_10"] is not None
    args = {"title": "m", "model_metrics": {}, "baselines": {}, "params": {}, "fingerprint": {},
            "plots": []}  # fmt: skip
    text = write_card(tmp_path / "card.md", **args, text_comparison=comparison).read_text()
    assert "use_content (category embeddings from each category's own text)" in text
