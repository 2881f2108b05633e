"""Text vectorisation: fitted on the training window, saved in the bundle, OOV handling,
and a model with text channels that fits and round-trips."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import dataclasses

import numpy as np
import pandas as pd
import pytest

from core.config import FeatureConfig
from core.features import build_features, feature_spec
from core.vocab import fit_vocabulary
from modelkit.builder import build_model, compile_model
from modelkit.bundle import load_bundle, save_bundle
from modelkit.model_config import ModelConfig
from modelkit.text import TextVectorizer
from modelkit.text_features import (
    TextFeatures,
    TextSettings,
    attach_text,
    fit_text_features,
    text_spec,
)

SMALL = {"units": 8, "cat_embed_dim": 8, "period_units": 4, "head_units": 8, "attention_units": 4}
SETTINGS = TextSettings(max_tokens=50, tokens_per_text=6, text_len=12, attr_len=8)


def _events() -> pd.DataFrame:
    rows = []
    for u in range(12):
        for d in range(6):
            rows.append(
                {
                    "user_id": f"u{u}",
                    "item_id": f"i{(u + d) % 5}",
                    "category_id": f"c{(u + d) % 5}",
                    "behavior": "buy",
                    "timestamp": pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=d),
                    "text": f"great guitar strings day{d}" if d % 2 else None,
                    "item_text": f"music.guitar.part{(u + d) % 3}",
                    "brand": "acme" if u % 2 else None,
                    "price": 10.0 * (1 + d),
                }
            )
    return pd.DataFrame(rows)


def test_vectorizer_save_load_gives_identical_ids(tmp_path):
    texts = ["Good amp, good price!", "Strings & picks", None, "appliances.kitchen"]
    vec = TextVectorizer.fit(texts, max_tokens=20, tokens_per_text=5)
    features = TextFeatures(settings=SETTINGS, text=vec, attrs=None)
    features.save(tmp_path)
    back = TextFeatures.load(tmp_path)
    probe = ["good strings", "APPLIANCES kitchen zebra", "", None, "x " * 40]
    np.testing.assert_array_equal(back.text.encode(probe), vec.encode(probe))
    assert back.attrs is None and TextFeatures.load(tmp_path / "nothing") is None


def test_oov_words_and_missing_text():
    vec = TextVectorizer.fit(["red guitar", "red drum"], max_tokens=10, tokens_per_text=4)
    ids = vec.encode(["red violin", None, "", "Red, GUITAR."])
    assert ids[0, 0] >= 2 and ids[0, 1] == 1  # violin was never seen: OOV id 1
    assert ids[1].tolist() == [0, 0, 0, 0] and ids[2].tolist() == [0, 0, 0, 0]
    assert ids[3, :2].tolist() == vec.encode(["red guitar"])[0, :2].tolist()
    assert vec.size == len(vec.vocabulary) + 2
    empty = TextVectorizer.fit([None, ""], max_tokens=10, tokens_per_text=3)
    assert empty.encode(["anything"]).tolist() == [[1, 0, 0]]


def test_vocabulary_is_fitted_on_the_training_window_only():
    events = _events()
    features = fit_text_features(events, "2024-01-04", SETTINGS)
    assert "day1" in features.text.vocabulary
    assert "day3" not in features.text.vocabulary  # written at the cutoff
    assert "day5" not in features.text.vocabulary  # written after it
    assert {"music", "guitar", "brand_acme"} <= set(features.attrs.vocabulary)
    assert any(w.startswith("price_") for w in features.attrs.vocabulary)


def test_text_inputs_never_read_text_at_or_after_the_cutoff():
    events = _events()
    features = fit_text_features(events, "2024-01-07", SETTINGS)
    config = FeatureConfig(max_events=6, n_periods=3, top_categories=3, history=None)
    vocab = fit_vocabulary(events[["category_id"]], config)
    cutoff = pd.Timestamp("2024-01-04", tz="UTC")  # day 3 (text "day3") is at the cutoff
    arrays = attach_text(build_features(events, [cutoff], vocab, config), events, features, config)
    day3 = features.text.vocabulary.index("day3") + 2
    day1 = features.text.vocabulary.index("day1") + 2
    assert arrays.text_tokens.shape == (12, SETTINGS.text_len)
    assert not (arrays.text_tokens == day3).any()
    assert (arrays.text_tokens == day1).any(axis=1).all()


def test_model_with_text_fits_and_round_trips_through_the_bundle(tmp_path):
    events = _events()
    config = FeatureConfig(max_events=6, n_periods=3, top_categories=3, history=None)
    vocab = fit_vocabulary(events[["category_id"]], config)
    features = fit_text_features(events, "2024-01-05", SETTINGS)
    cutoffs = [pd.Timestamp("2024-01-04", tz="UTC"), pd.Timestamp("2024-01-05", tz="UTC")]
    arrays = attach_text(build_features(events, cutoffs, vocab, config), events, features, config)
    spec = text_spec(feature_spec(vocab, config), features)
    model_config = ModelConfig(use_text=True, use_item_attrs=True, **SMALL)
    model = compile_model(build_model(model_config, spec), model_config, jit_compile=False)
    assert {"text_tokens", "attr_tokens"} <= {t.name for t in model.inputs}
    model.fit(arrays.inputs(), arrays.labels(), epochs=1, batch_size=8, verbose=0)
    path = save_bundle(tmp_path / "b", model, vocab, config, spec, {}, text=features)
    bundle = load_bundle(path)
    assert bundle.spec == spec and bundle.text.to_dict() == features.to_dict()
    again = attach_text(build_features(events, cutoffs, vocab, config), events, bundle.text, config)
    np.testing.assert_array_equal(again.text_tokens, arrays.text_tokens)
    want = model(arrays.inputs(), training=False)["next_cats"].numpy()
    np.testing.assert_allclose(bundle.predict(again.inputs())["next_cats"], want, atol=1e-5)
    # Batch scoring (events in, the pyfunc's table out) vectorises with the same bundle.
    from modelkit.scoring import score_events

    table = score_events(bundle, events, cutoffs[0])
    assert len(table) == int((again.cutoff == again.cutoff[0]).sum())
    text_free = dataclasses.replace(
        spec, text_len=0, n_text_tokens=0, attr_len=0, n_attr_tokens=0, text_hash=""
    )
    assert text_free.to_json() == feature_spec(vocab, config).to_json()  # old hashes kept


def test_text_option_without_a_text_channel_is_a_clear_error(tiny_spec):
    with pytest.raises(ValueError, match="use_text needs a feature spec with text_tokens"):
        build_model(ModelConfig(use_text=True, **SMALL), tiny_spec)


def test_small_batches_give_the_keras_layer_ids(shared_data):
    import csv

    path = shared_data / "amazon_musical_instruments_5core" / "reviews.csv"
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    texts = [f"{r['summary']}\n{r['review_text']}" for r in rows[:600]]
    texts += ["Caf\u00e9 na\u00efve \u00a0 r\u00e9sum\u00e9", "a_b  c--d", "", "   ", "x " * 100]
    vec = TextVectorizer.fit(texts[:300], max_tokens=800, tokens_per_text=48)
    np.testing.assert_array_equal(vec.encode(texts), vec.encode_keras(texts))
