"""Errors that depend on the cutoff name the cutoff used and the history window."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from core.config import ServingConfig
from serving.encode import RequestError, encode_requests
from serving.errors import with_cutoff
from tests.serving.test_encode import CONFIG, NOW, _request, bundle  # noqa: F401

HISTORY = "1h"


def _said(requests, model, prefixes=None) -> tuple[str, str]:
    prefixes = prefixes or [""] * len(requests)
    with pytest.raises(RequestError) as info:
        encode_requests(requests, model, ServingConfig(), NOW, prefixes)
    error = info.value
    return error.field, with_cutoff(error.field, error.message, requests, prefixes, NOW, HISTORY)


def test_history_window_error_without_cutoff_names_the_clock_and_the_window(bundle):  # noqa: F811
    short = SimpleNamespace(
        vocab=bundle.vocab, feature_config=CONFIG.model_copy(update={"history": HISTORY})
    )
    old = _request(2, start=NOW - timedelta(days=3))
    assert old.cutoff is None
    field, said = _said([old], short)
    assert field == "events"
    assert said.startswith("no events inside the model's history window: ")
    assert "the history window 1h before the cutoff 2024-01-10T12:00:00Z" in said
    assert "the server's clock; the request gave no cutoff" in said
    assert "i.e. 2024-01-10T11:00:00Z .. 2024-01-10T12:00:00Z" in said
    assert "the events span 2024-01-07T12:00:00Z .. 2024-01-07T17:00:00Z" in said
    assert "send `cutoff`" in said


def test_batch_error_is_explained_for_the_user_it_names(bundle):  # noqa: F811
    short = SimpleNamespace(
        vocab=bundle.vocab, feature_config=CONFIG.model_copy(update={"history": HISTORY})
    )
    fine = _request(2, start=NOW - timedelta(minutes=330))  # its last event is inside
    given = _request(2, start=NOW - timedelta(days=3), cutoff=NOW - timedelta(days=1))
    field, said = _said([fine, given], short, ["users[0].", "users[1]."])
    assert field == "users[1].events"
    assert "before the cutoff 2024-01-09T12:00:00Z (the request's)" in said
    assert "send `cutoff`" not in said


def test_event_after_the_cutoff_names_where_the_cutoff_came_from(bundle):  # noqa: F811
    future = _request(2, start=NOW + timedelta(days=1))
    field, said = _said([future], bundle)
    assert field == "events[0].timestamp"
    assert "is after the cutoff 2024-01-10T12:00:00+00:00" in said
    assert "the server's clock; the request gave no cutoff" in said and "history window" in said


def test_errors_that_do_not_depend_on_the_cutoff_are_left_alone(bundle):  # noqa: F811
    many = _request(4)
    with pytest.raises(RequestError) as info:
        encode_requests([many], bundle, ServingConfig(max_events=3), NOW)
    error = info.value
    assert with_cutoff(error.field, error.message, [many], [""], NOW, HISTORY) == error.message
