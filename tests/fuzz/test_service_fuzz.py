"""Malformed bodies against a real ``bentoml serve``: never a 5xx, and the server stays up.

Reuses the end-to-end fixture ``deployed`` (an untrained bundle served from a temp store).
"""

from __future__ import annotations

import json
from collections import Counter

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serving.test_service_e2e import _events, deployed  # noqa: F401  (fixture)

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

STATUSES: Counter[str] = Counter()

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)
event_fields = ["item_id", "category_id", "behavior", "timestamp", "price", "extra"]


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """Raw bytes, arbitrary JSON, or a valid request with fields broken or replaced."""
    kind = draw(st.sampled_from(["bytes", "json", "mutated", "mutated", "batch"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    events = _events(draw(st.integers(1, 6)))
    for _ in range(draw(st.integers(1, 3))):
        event = events[draw(st.integers(0, len(events) - 1))]
        field = draw(st.sampled_from(event_fields))
        if draw(st.booleans()):
            event[field] = draw(json_values)
        else:
            event.pop(field, None)
    body: dict = {"user_id": draw(json_values | st.text(max_size=20)), "events": events}
    if draw(st.booleans()):
        body["top_k"] = draw(json_values)
    if kind == "batch":
        body = {"users": [body] * draw(st.integers(0, 3))}
    text = json.dumps(body)
    if draw(st.integers(0, 4)) == 0:  # truncated JSON
        text = text[: draw(st.integers(0, len(text)))]
    return text.encode()


@settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=bodies(), endpoint=st.sampled_from(["/predict", "/predict_batch"]))
def test_malformed_bodies_never_get_5xx(deployed, body: bytes, endpoint: str) -> None:  # noqa: F811
    resp = httpx.post(
        deployed["url"] + endpoint,
        content=body,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    STATUSES[f"{endpoint} {resp.status_code}"] += 1
    assert resp.status_code < 500, (resp.status_code, resp.text[:300], body[:300])


def test_server_alive_after_fuzzing(deployed) -> None:  # noqa: F811
    assert deployed["proc"].poll() is None
    assert httpx.get(f"{deployed['url']}/livez", timeout=5).status_code == 200
    ok = httpx.post(f"{deployed['url']}/predict", json={"events": _events(3)}, timeout=30)
    assert ok.status_code == 200, ok.text
    print(
        f"\nservice fuzz: {sum(STATUSES.values())} requests, statuses {dict(sorted(STATUSES.items()))}"
    )
    assert sum(STATUSES.values()) >= 250
