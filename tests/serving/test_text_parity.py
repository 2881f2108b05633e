"""Text in serving: a request's text vectorises exactly as the training samples did."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from core.config import FeatureConfig, ServingConfig
from core.features import build_features, feature_spec
from core.vocab import fit_vocabulary
from modelkit.builder import build_model
from modelkit.bundle import load_bundle, save_bundle
from modelkit.model_config import ModelConfig
from modelkit.text_features import TextSettings, attach_text, fit_text_features, text_spec
from serving.encode import encode_requests, events_frame
from serving.schemas import PredictRequest

NOW = datetime(2024, 1, 10, tzinfo=UTC)
CONFIG = FeatureConfig(max_events=6, n_periods=3, top_categories=2, future_periods=2, history=None)
SETTINGS = TextSettings(max_tokens=40, tokens_per_text=6, text_len=16, attr_len=12)
SMALL = {"units": 8, "cat_embed_dim": 8, "period_units": 4, "head_units": 8, "attention_units": 4}
WORDS = ["warm tone", "great strings", "Cheap, but it buzzes!", None, "tuner works"]


def _events(user: str, n: int) -> list[dict]:
    return [
        {
            "item_id": f"i{i}",
            "category_id": f"c{i % 3}",
            "behavior": "buy",
            "timestamp": (NOW - timedelta(days=n - i)).isoformat(),
            "text": WORDS[i % len(WORDS)],
            "item_text": f"music.guitar.part{i % 2}",
            "brand": "acme" if i % 2 else None,
            "price": 12.5 * (i + 1),
        }
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    requests = [PredictRequest.model_validate({"events": _events("t", 8)})]
    train = events_frame(["t"], requests)
    train.loc[0, "text"] = "fuzzbox pedal"  # "pedal" and "fuzzbox" exist only in training
    vocab = fit_vocabulary(train, CONFIG)
    text = fit_text_features(train, NOW, SETTINGS)
    spec = text_spec(feature_spec(vocab, CONFIG), text)
    model = build_model(ModelConfig(use_text=True, use_item_attrs=True, **SMALL), spec)
    path = tmp_path_factory.mktemp("text-bundle")
    return load_bundle(save_bundle(path, model, vocab, CONFIG, spec, {}, text=text))


def test_serving_text_inputs_equal_the_training_ones(bundle):
    requests = [
        PredictRequest.model_validate({"events": _events("a", 5)}),
        PredictRequest.model_validate({"events": _events("b", 3) + [{**_events("b", 1)[0],
                                       "text": "pedal with a fuzzbox and unseen words"}]}),
    ]  # fmt: skip
    enc = encode_requests(requests, bundle, ServingConfig(), NOW)
    frame = events_frame(["k0", "k1"], requests)
    for row in range(2):
        ref = build_features(
            frame[frame["user_id"] == f"k{row}"], [pd.Timestamp(NOW)], bundle.vocab, CONFIG,
            with_labels=False,
        )  # fmt: skip
        attach_text(ref, frame[frame["user_id"] == f"k{row}"], bundle.text, CONFIG)
        np.testing.assert_array_equal(enc.arrays.text_tokens[row], ref.text_tokens[0])
        np.testing.assert_array_equal(enc.arrays.attr_tokens[row], ref.attr_tokens[0])
    assert (enc.arrays.text_tokens[1] == 1).any()  # unseen words: OOV, not dropped
    assert (enc.arrays.attr_tokens > 1).any()
    out = bundle.predict(enc.arrays.inputs())
    assert out["next_cats"].shape == (2, bundle.vocab.size)


def test_requests_without_text_still_predict(bundle):
    events = [
        {k: v for k, v in e.items() if k not in ("text", "item_text", "brand", "price")}
        for e in _events("c", 3)
    ]
    enc = encode_requests([PredictRequest.model_validate({"events": events})], bundle,
                          ServingConfig(), NOW)  # fmt: skip
    assert not enc.arrays.text_tokens.any() and not enc.arrays.attr_tokens.any()
    assert np.isfinite(bundle.predict(enc.arrays.inputs())["next_cats"]).all()


def test_over_long_text_is_a_validation_error():
    with pytest.raises(ValueError, match="text"):
        PredictRequest.model_validate({"events": [{**_events("d", 1)[0], "text": "x" * 20_001}]})


def test_long_histories_vectorise_only_the_readable_texts_with_the_same_result(bundle):
    events = _events("e", 14)
    events[-1] = {**events[-1], "text": "!!!"}  # no word: never read, the next one is
    request = PredictRequest.model_validate({"events": events})
    enc = encode_requests([request], bundle, ServingConfig(), NOW)
    frame = events_frame(["k0"], [request])
    ref = build_features(frame, [pd.Timestamp(NOW)], bundle.vocab, CONFIG, with_labels=False)
    attach_text(ref, frame, bundle.text, CONFIG)
    np.testing.assert_array_equal(enc.arrays.text_tokens, ref.text_tokens)
    np.testing.assert_array_equal(enc.arrays.attr_tokens, ref.attr_tokens)
