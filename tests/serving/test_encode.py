"""Request encoding: the serving path equals build_features on the canonical frame."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from core.arrays import INPUT_NAMES
from core.config import FeatureConfig, ServingConfig
from core.features import build_features
from core.predlog import RECORD_COLUMNS
from core.profile import PROFILE_COLUMNS
from core.vocab import fit_vocabulary
from serving.encode import (
    RequestError,
    build_responses,
    encode_requests,
    events_frame,
    log_records,
)
from serving.schemas import ModelRef, PredictRequest, PredictResponse

NOW = datetime(2024, 1, 10, 12, tzinfo=UTC)
CONFIG = FeatureConfig(max_events=4, n_periods=3, top_categories=2, future_periods=2)


@pytest.fixture(scope="module")
def bundle():
    train = pd.DataFrame(
        {
            "user_id": ["a"] * 6,
            "item_id": ["i"] * 6,
            "category_id": ["c1", "c1", "c1", "c2", "c2", "c3"],
            "behavior": ["view"] * 6,
            "timestamp": pd.date_range("2024-01-01", periods=6, freq="h", tz="UTC"),
        }
    )
    from core.schema import conform

    vocab = fit_vocabulary(conform(train), CONFIG)
    return SimpleNamespace(vocab=vocab, feature_config=CONFIG)


def _request(n: int = 3, start: datetime = NOW - timedelta(days=2), **kw) -> PredictRequest:
    cats = ["c1", "c2", "zz-unknown", "c3", "c1", "c2"]
    behs = ["view", "cart", "view", "buy", "fav", "view"]
    events = [
        {
            "item_id": f"i{i}",
            "category_id": cats[i % 6],
            "behavior": behs[i % 6],
            "timestamp": (start + timedelta(hours=5 * i)).isoformat(),
        }
        for i in range(n)
    ]
    return PredictRequest.model_validate({"events": events, **kw})


def test_encoding_equals_build_features_on_the_canonical_frame(bundle):
    requests = [_request(6, user_id="u1"), _request(2), _request(3, cutoff=NOW - timedelta(days=1))]
    enc = encode_requests(requests, bundle, ServingConfig(), NOW)
    assert len(enc.arrays) == 3
    assert enc.cutoffs == [NOW, NOW, NOW - timedelta(days=1)]
    frame = events_frame(["k0", "k1", "k2"], requests)
    for row in range(len(requests)):
        keys = [f"k{row}"]
        ref = build_features(
            frame[frame["user_id"].isin(keys)],
            [pd.Timestamp(enc.cutoffs[row])],
            bundle.vocab,
            CONFIG,
            with_labels=False,
        )
        for name in INPUT_NAMES:
            np.testing.assert_array_equal(getattr(enc.arrays, name)[row], getattr(ref, name)[0])
    assert enc.oov_events == [1, 0, 1]
    assert len(set(enc.request_ids)) == 3


def test_default_cutoff_is_now_and_small_skew_moves_it(bundle):
    req = _request(1, start=NOW + timedelta(seconds=10))
    enc = encode_requests([req], bundle, ServingConfig(max_future_skew_s=60), NOW)
    assert enc.cutoffs[0] == NOW + timedelta(seconds=10, milliseconds=1)
    assert (enc.arrays.cat[0] > 0).sum() == 1


def test_future_events_are_rejected_naming_the_field(bundle):
    req = _request(3, start=NOW - timedelta(hours=5))  # third event is 5 h after NOW
    with pytest.raises(RequestError) as info:
        encode_requests(
            [_request(1), req], bundle, ServingConfig(), NOW, ["users[0].", "users[1]."]
        )
    assert info.value.field == "users[1].events[2].timestamp"


def test_too_many_events_are_rejected(bundle):
    with pytest.raises(RequestError) as info:
        encode_requests([_request(4)], bundle, ServingConfig(max_events=3), NOW)
    assert info.value.field == "events" and "limit of 3" in str(info.value)


def test_events_outside_the_history_window_are_rejected(bundle):
    short = SimpleNamespace(
        vocab=bundle.vocab, feature_config=CONFIG.model_copy(update={"history": "1h"})
    )
    with pytest.raises(RequestError, match="history window"):
        encode_requests([_request(2, start=NOW - timedelta(days=3))], short, ServingConfig(), NOW)


def test_responses_rank_real_categories_and_name_buckets(bundle):
    requests = [_request(3, user_id="u1", top_k=2), _request(2)]
    enc = encode_requests(requests, bundle, ServingConfig(), NOW)
    v, k, c1 = bundle.vocab.size, CONFIG.future_periods, CONFIG.top_categories + 1
    scores = np.tile(np.linspace(0.9, 0.1, v), (2, 1))  # pad and OOV score highest
    trajectory = np.tile(np.array([0.2, 0.5, 0.3]), (2, k, 1))
    outputs = {
        "next_cats": scores,
        "buy": np.array([[0.3], [0.4]]),
        "churn": np.array([[0.1], [0.2]]),
        "trajectory": trajectory,
    }
    names = bundle.vocab.bucket_names(c1)
    assert names == ["c1", "c2", "other"]
    model = ModelRef(name="m", version="3", alias="champion", bento_tag="m:abc")
    answers = build_responses(requests, enc, outputs, bundle.vocab, names, model, "day", 10)
    # Plain dicts, exactly what the pydantic response model would serialise to.
    out = [PredictResponse.model_validate(a) for a in answers]
    assert [o.model_dump(mode="json") for o in out] == answers
    assert [c.category_id for c in out[0].next_categories] == ["c1", "c2"]
    assert len(out[1].next_categories) == v - 2
    assert out[1].p_buy == pytest.approx(0.4) and out[0].p_churn == pytest.approx(0.1)
    assert [b.bucket for b in out[0].trajectory[0].buckets] == ["c2", "other", "c1"]
    assert [p.period for p in out[0].trajectory] == [1, 2]
    assert out[0].oov_events == 1 and out[0].events_used == 3

    records = log_records(enc, outputs, answers, bundle.vocab, names, NOW)
    assert len(records) == 2
    assert list(records[0].profile) == list(PROFILE_COLUMNS)
    assert records[0].user_hash and records[1].user_hash is None
    assert records[0].top_pred == "c1" and records[0].model_version == "3"
    assert records[0].profile["seq_len"] == 3.0 and records[0].top_score == pytest.approx(0.5)
    # Two categories were served; the log ranks RANKED_CATEGORIES (here all) and every bucket.
    assert records[0].top_categories == ("c1", "c2", "c3")
    assert records[0].trajectory == ({"c1": 0.2, "c2": 0.5, "other": 0.3},) * k
    assert [r.request_id for r in records] == enc.request_ids
    assert list(json.loads(records[1].to_json())) == list(RECORD_COLUMNS)


def _training_rows(requests: list[PredictRequest], vocab, config: FeatureConfig, cutoff: datetime):
    """Training's features of every request at once (a batch frame, as training builds it)."""
    keys = [f"k{i:05d}" for i in range(len(requests))]
    ref = build_features(
        events_frame(keys, requests), [pd.Timestamp(cutoff)], vocab, config, with_labels=False
    )
    position = {str(u): i for i, u in enumerate(ref.user_id)}
    return ref.select(np.array([position[k] for k in keys]))


def _assert_serving_equals_training(requests, vocab, config, cutoff) -> None:
    served = encode_requests(
        requests, SimpleNamespace(vocab=vocab, feature_config=config), ServingConfig(), cutoff
    )
    trained = _training_rows(requests, vocab, config, cutoff)
    for name in INPUT_NAMES:
        np.testing.assert_array_equal(getattr(served.arrays, name), getattr(trained, name), name)


def test_fast_encoding_equals_training_features_on_random_requests():
    # 60 users x 100 events: training encodes them as one frame past SMALL_EVENTS (factorised,
    # pandas-indexed); serving encodes the same requests through the per-request arrays path.
    from core.schema import conform

    rng = np.random.default_rng(7)
    cats = [f"g{i // 10}-c{i % 10}" for i in range(300)]
    train = pd.DataFrame(
        {
            "user_id": "u",
            "item_id": "i",
            "category_id": rng.choice(cats[:250], 3000),  # the rest is out of vocabulary
            "behavior": "view",
            "timestamp": pd.Timestamp("2024-01-01", tz="UTC"),
        }
    )
    config = FeatureConfig(max_events=50, n_periods=3, top_categories=5, future_periods=2)
    vocab = fit_vocabulary(conform(train), config)
    requests = []
    for _ in range(60):
        hours = np.sort(rng.uniform(0.01, 9 * 24, 100))[::-1]  # some outside the 7-day history
        events = [
            {
                "item_id": f"i{rng.integers(1000)}",
                "category_id": str(rng.choice(cats)),
                "behavior": str(rng.choice(["view", "view", "cart", "fav", "buy"])),
                "timestamp": (NOW - timedelta(hours=float(h))).isoformat(),
            }
            for h in hours
        ]
        requests.append(PredictRequest.model_validate({"events": events}))
    _assert_serving_equals_training(requests, vocab, config, NOW)


def test_fast_encoding_equals_training_features_on_real_requests(shared_data):
    from core.config import DataConfig
    from eventlogs.loaders import load_events

    path = shared_data / "taobao_userbehavior" / "user_behavior.csv"
    events = load_events(path, DataConfig(format="taobao")).events
    cutoff = datetime(2017, 11, 30, 16, tzinfo=UTC)
    config = FeatureConfig(max_events=50)
    vocab = fit_vocabulary(events[events["timestamp"] < pd.Timestamp(cutoff)], config)
    recent = events[
        (events["timestamp"] < pd.Timestamp(cutoff))
        & (events["timestamp"] >= pd.Timestamp(cutoff) - pd.Timedelta("6D"))
    ]
    requests = [
        PredictRequest.model_validate(
            {
                "user_id": str(user),
                "events": [
                    {
                        "item_id": str(r.item_id),
                        "category_id": str(r.category_id),
                        "behavior": str(r.behavior),
                        "timestamp": r.timestamp.isoformat(),
                    }
                    for r in group.tail(120).itertuples()
                ],
            }
        )
        for user, group in list(recent.groupby("user_id", sort=True))[:80]
    ]
    assert len(requests) >= 20 and sum(len(r.events) for r in requests) > 1000
    _assert_serving_equals_training(requests, vocab, config, cutoff)


def test_log_profiles_equal_the_training_reference_profile(bundle):
    from core.profile import summarize_arrays

    requests = [_request(6, user_id="u1"), _request(2), _request(5)]
    enc = encode_requests(requests, bundle, ServingConfig(), NOW)
    n, v = len(requests), bundle.vocab.size
    outputs = {
        "next_cats": np.full((n, v), 0.1, np.float32),
        "buy": np.zeros(n, np.float32),
        "churn": np.zeros(n, np.float32),
        "trajectory": np.full((n, 2, 3), 1 / 3, np.float32),
    }
    responses = [{"user_id": None, "model": {"name": "m", "version": "1"}, "next_categories": []}]
    records = log_records(enc, outputs, responses * n, bundle.vocab, ["c1", "c2", "<other>"], NOW)
    reference = summarize_arrays(enc.arrays, bundle.vocab.decode)
    for record, (_, row) in zip(records, reference.iterrows(), strict=True):
        for column in PROFILE_COLUMNS:
            want, got = row[column], record.profile[column]
            if isinstance(want, float) and np.isnan(want):
                assert got is None or np.isnan(got), column
            else:
                assert got == pytest.approx(want), column
