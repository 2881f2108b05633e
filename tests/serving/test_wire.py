"""msgspec request parsing (serving.wire): same bodies accepted as pydantic, same 400 fields,
and a many-user batch with its own cutoff per user encodes as training does."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from core.arrays import INPUT_NAMES
from core.config import FeatureConfig, ServingConfig
from core.features import build_features
from core.schema import conform
from core.vocab import fit_vocabulary
from serving.encode import encode_requests, events_frame
from serving.errors import field_path
from serving.schemas import BatchRequest, PredictRequest
from serving.wire import RequestBatch, parse_batch, parse_predict

EVENT = {
    "item_id": "i1",
    "category_id": "c1",
    "behavior": "view",
    "timestamp": "2024-01-01T10:00:00",
}
NOW = datetime(2024, 1, 10, 12, tzinfo=UTC)

GOOD = [
    {"events": [EVENT]},
    {"user_id": 7, "events": [EVENT, {**EVENT, "timestamp": 1704103200, "item_id": 5}]},
    {"events": [{**EVENT, "timestamp": "2024-01-01T12:00:00+02:00"}], "top_k": "5"},
    {"events": [{**EVENT, "timestamp": "2024-01-01"}]},  # a date: only pydantic reads it
    {"events": [{**EVENT, "price": "1.5", "brand": 3, "text": "nice"}], "cutoff": "2024-02-01"},
    {"events": [EVENT], "cutoff": "2024-01-02T00:00:00Z", "top_k": None, "user_id": None},
]
BAD = [
    {"events": []},
    {"events": [{**EVENT, "behavior": "stare"}]},
    {"events": [{**EVENT, "timestamp": "yesterday"}]},
    {"events": [{**EVENT, "price": "cheap"}]},
    {"events": [{**EVENT, "price": "inf"}]},
    {"events": [EVENT], "top_k": 0},
    {"events": [EVENT], "top_k": "ten"},
    {"events": [EVENT], "surprise": 1},
    {"events": "not a list"},
    {"events": [{k: v for k, v in EVENT.items() if k != "category_id"}]},
    {"events": [{**EVENT, "item_id": True}]},
    {"events": [{**EVENT, "category_id": "x" * 257}]},
    {"events": [{**EVENT, "timestamp": "0875-04-26T22:04:37Z"}]},
    {"events": [EVENT], "cutoff": "9999-12-31T23:59:59Z"},
    {"events": [{**EVENT, "timestamp": -1}]},
    [EVENT],
]


def _columns(batch: RequestBatch) -> tuple:
    users = [(u.user_id, u.top_k, u.cutoff) for u in batch.users]
    return users, batch.stops.tolist(), batch.time_ns.tolist(), batch.category_id, batch.behavior


@pytest.mark.parametrize("body", GOOD)
def test_accepted_bodies_give_pydantics_values(body) -> None:
    raw = json.dumps(body).encode()
    expected = RequestBatch.from_requests([PredictRequest.model_validate_json(raw)])
    assert _columns(parse_predict(raw)) == _columns(expected)
    many = parse_batch(json.dumps({"users": [body, body]}).encode())
    assert _columns(many)[2] == _columns(expected)[2] * 2


@pytest.mark.parametrize("body", BAD)
def test_rejected_bodies_give_pydantics_error(body) -> None:
    raw = json.dumps(body).encode()
    with pytest.raises(ValidationError) as expected:
        PredictRequest.model_validate_json(raw)
    with pytest.raises(ValidationError) as got:
        parse_predict(raw)
    assert got.value.errors()[0]["loc"] == expected.value.errors()[0]["loc"]
    with pytest.raises(ValidationError) as batch:
        parse_batch(json.dumps({"users": [{"events": [EVENT]}, body]}).encode())
    assert field_path(batch.value.errors()[0]["loc"]).startswith("users[1]")


def test_malformed_json_is_a_body_error() -> None:
    for parse in (parse_predict, parse_batch):
        with pytest.raises(ValidationError) as info:
            parse(b'{"events": [')
        assert field_path(info.value.errors()[0]["loc"]) == "body"


def test_plain_bodies_take_the_msgspec_path() -> None:
    batch = parse_predict(json.dumps({"events": [EVENT, EVENT]}).encode())
    assert type(batch.users[0].events[0]).__module__ == "serving.wire"  # not pydantic's Event
    assert batch.time_ns.tolist() == [1704103200 * 10**9] * 2


def test_batch_with_a_cutoff_per_user_encodes_as_training_does() -> None:
    # 40 users, each with its own cutoff (some none: the server clock), one encode pass.
    rng = np.random.default_rng(3)
    cats = [f"c{i}" for i in range(40)]
    config = FeatureConfig(max_events=20, n_periods=3, top_categories=4, future_periods=2)
    train = pd.DataFrame(
        {"user_id": "u", "item_id": "i", "category_id": cats[:30], "behavior": "view",
         "timestamp": pd.Timestamp("2024-01-01", tz="UTC")}
    )  # fmt: skip
    vocab = fit_vocabulary(conform(train), config)
    users = []
    for u in range(40):
        cutoff = NOW - timedelta(hours=float(rng.uniform(0, 72)))
        hours = np.sort(rng.uniform(0.01, 9 * 24, int(rng.integers(1, 60))))[::-1]
        users.append(
            {
                "user_id": f"u{u}",
                "events": [
                    {"item_id": "i", "category_id": str(rng.choice(cats)),
                     "behavior": str(rng.choice(["view", "cart", "fav", "buy"])),
                     "timestamp": (cutoff - timedelta(hours=float(h))).isoformat()}
                    for h in hours
                ],
                **({"cutoff": cutoff.isoformat()} if u % 3 else {}),
            }
        )  # fmt: skip
        if not u % 3:
            for e in users[-1]["events"]:  # no cutoff: the events must precede NOW
                e["timestamp"] = min(e["timestamp"], (NOW - timedelta(minutes=1)).isoformat())
    raw = json.dumps({"users": users}).encode()
    bundle = SimpleNamespace(vocab=vocab, feature_config=config)
    served = encode_requests(parse_batch(raw), bundle, ServingConfig(), NOW)
    requests = BatchRequest.model_validate_json(raw).users
    assert len(set(served.cutoffs)) > 20
    for i, request in enumerate(requests):
        ref = build_features(
            events_frame(["k"], [request]),
            [pd.Timestamp(served.cutoffs[i])],
            vocab,
            config,
            with_labels=False,
        )
        for name in INPUT_NAMES:
            np.testing.assert_array_equal(getattr(served.arrays, name)[i], getattr(ref, name)[0])
        assert served.cutoffs[i] == (request.cutoff or NOW)
