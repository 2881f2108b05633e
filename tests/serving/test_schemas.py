"""Request models: structural validation names the offending field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from serving.schemas import BatchRequest, PredictRequest

EVENT = {
    "item_id": "i1",
    "category_id": "c1",
    "behavior": "view",
    "timestamp": "2024-01-01T10:00:00",
}


def _locs(exc: ValidationError) -> list[tuple]:
    return [tuple(e["loc"]) for e in exc.errors()]


def test_valid_request_parses_iso_and_unix_times_as_utc():
    req = PredictRequest.model_validate(
        {"user_id": 7, "events": [EVENT, {**EVENT, "timestamp": 1704103200, "item_id": 5}]}
    )
    assert req.user_id == "7"
    assert req.events[1].item_id == "5"
    assert req.events[0].timestamp == datetime(2024, 1, 1, 10, tzinfo=UTC)
    assert req.events[1].timestamp == datetime(2024, 1, 1, 10, tzinfo=UTC)


def test_offset_timestamps_are_converted_to_utc():
    req = PredictRequest.model_validate(
        {"events": [{**EVENT, "timestamp": "2024-01-01T12:00:00+02:00"}]}
    )
    assert req.events[0].timestamp == datetime(2024, 1, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"events": []}, ("events",)),
        ({"events": [{**EVENT, "behavior": "stare"}]}, ("events", 0, "behavior")),
        ({"events": [{**EVENT, "timestamp": "yesterday"}]}, ("events", 0, "timestamp")),
        ({"events": [{**EVENT, "price": "cheap"}]}, ("events", 0, "price")),
        ({"events": [EVENT], "top_k": 0}, ("top_k",)),
        ({"events": [EVENT], "top_k": "ten"}, ("top_k",)),
        ({"events": [EVENT], "surprise": 1}, ("surprise",)),
        ({"events": "not a list"}, ("events",)),
        (
            {"events": [{k: v for k, v in EVENT.items() if k != "category_id"}]},
            ("events", 0, "category_id"),
        ),
    ],
)
def test_bad_requests_name_the_field(body, loc):
    with pytest.raises(ValidationError) as info:
        PredictRequest.model_validate(body)
    assert loc in _locs(info.value)


def test_batch_request_locates_errors_per_user():
    with pytest.raises(ValidationError) as info:
        BatchRequest.model_validate(
            {"users": [{"events": [EVENT]}, {"events": [{**EVENT, "behavior": 3}]}]}
        )
    assert ("users", 1, "events", 0, "behavior") in _locs(info.value)


@pytest.mark.parametrize(
    ("timestamp", "cutoff", "field"),
    [
        ("0875-04-26T22:04:37Z", None, ("events", 0, "timestamp")),
        ("2017-12-03T10:15:00Z", "9999-12-31T23:59:59Z", ("cutoff",)),
        ("0001-01-01T00:00:00+01:00", None, ("events", 0, "timestamp")),
        (-1, None, ("events", 0, "timestamp")),
    ],
)
def test_timestamps_outside_the_int64_ns_range_are_rejected(timestamp, cutoff, field) -> None:
    event = {"item_id": "i", "category_id": "c", "behavior": "view", "timestamp": timestamp}
    with pytest.raises(ValidationError) as info:
        PredictRequest.model_validate({"events": [event], "cutoff": cutoff})
    error = info.value.errors()[0]
    assert error["loc"] == field and "1970-01-01..2262-04-11" in error["msg"]
