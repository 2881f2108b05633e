"""The prediction-log record: JSON round trip, column names, file names, ranking."""

from __future__ import annotations

import json
import math
from dataclasses import fields
from datetime import UTC, datetime

import numpy as np
import pytest

from core.hashing import hash_user
from core.predlog import (
    PREDICTION_COLUMNS,
    RECORD_COLUMNS,
    PredictionRecord,
    log_file_name,
    parse_log_file_name,
    prediction_columns,
    rank_categories,
)
from core.profile import PROFILE_COLUMNS
from evaluation.metrics import top_k

T0 = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def make_record(request_id: object = "r", **values: object) -> PredictionRecord:
    """A complete record; ``values`` override any field."""
    defaults = {
        "logged_at": T0,
        "request_id": str(request_id),
        "user_hash": hash_user("u1"),
        "model_name": "m",
        "model_version": "3",
        "cutoff": T0,
        "profile": {c: (1.5 if c != "top_category" else "c1") for c in PROFILE_COLUMNS},
        "p_buy": 0.25,
        "p_churn": 0.5,
        "top_pred": "c1",
        "top_score": 0.75,
        "top_categories": ("c1", "c2"),
        "trajectory": ({"c1": 0.5, "other": 0.5},),
    }
    return PredictionRecord(**{**defaults, **values})


def test_json_line_round_trips_with_flat_profile_in_documented_order() -> None:
    record = make_record(shadow=True, user_hash=None)
    line = record.to_json()
    assert "\n" not in line
    assert list(json.loads(line)) == list(RECORD_COLUMNS)
    assert PredictionRecord.from_json(line) == record
    assert json.loads(line)["cutoff"] == "2024-01-02T03:04:05.678901+00:00"


def test_missing_fields_are_named_and_old_lines_default_to_served() -> None:
    data = make_record().to_dict()
    del data["shadow"]
    assert PredictionRecord.from_dict({**data, "future_field": 1}).shadow is False
    del data["p_churn"], data["seq_len"]
    with pytest.raises(ValueError, match=r"seq_len.*p_churn"):
        PredictionRecord.from_dict(data)
    with pytest.raises(ValueError, match="not a JSON object"):
        PredictionRecord.from_json("[1, 2]")


def test_monitored_columns_are_record_fields() -> None:
    names = {f.name for f in fields(PredictionRecord)}
    assert set(PREDICTION_COLUMNS) <= names
    # text_profile is optional: its keys (core.textstats.TEXT_FEATURES) follow RECORD_COLUMNS.
    assert set(RECORD_COLUMNS) == (names - {"profile", "text_profile"}) | set(PROFILE_COLUMNS)
    outputs = {
        "next_cats": np.array([[9.0, 9.0, 0.1, 0.7, 0.2]]),
        "buy": np.array([[0.3]]),
        "churn": np.array([0.6]),
    }
    columns = prediction_columns(outputs, lambda idx: [f"c{i}" for i in idx])
    assert list(columns) == list(PREDICTION_COLUMNS)
    assert columns["top_pred"] == ["c3"] and columns["p_buy"].tolist() == [0.3]


def test_file_names_are_built_and_parsed_by_one_pair() -> None:
    name = log_file_name(T0, 42)
    assert name == "predictions-20240102T030405-42.jsonl"
    assert log_file_name(T0, 42, serial=3) == "predictions-20240102T030405-42_0003.jsonl"
    assert parse_log_file_name(log_file_name(T0, 7, 12)) == T0.replace(microsecond=0)
    for other in ("notes.txt", "predictions-2024-1.jsonl", "predictions-20240102T030405-1.json"):
        assert parse_log_file_name(other) is None
    assert sorted([log_file_name(T0, 1, 1), log_file_name(T0, 1)])[0] == log_file_name(T0, 1)


@pytest.mark.parametrize("k", [1, 3, 8, 50])
def test_ranking_equals_the_gates_top_k_with_ties(k: int) -> None:
    rng = np.random.default_rng(k)
    scores = rng.integers(0, 4, (20, 10)).astype(np.float32)  # integer scores: many ties
    scores[0, 5] = np.nan
    ranked, gate = rank_categories(scores, k), top_k(scores, k)
    assert ranked.shape == gate.shape == (20, min(k, 8)) and ranked.min() >= 2
    clean = np.nan_to_num(scores, nan=-1.0)
    same_scores = np.take_along_axis(clean, ranked, 1) == np.take_along_axis(clean, gate, 1)
    assert same_scores.all()  # a tie across the K-th place may pick another member
    if k >= 8:  # the whole catalogue: ties resolve exactly as the gate's stable sort
        np.testing.assert_array_equal(ranked, gate)
    distinct = rng.random((20, 10))
    np.testing.assert_array_equal(rank_categories(distinct, k), top_k(distinct, k))


def test_non_finite_values_are_written_as_nan_not_null() -> None:
    # Finite lines go through msgspec, which would write NaN as null: they take json instead.
    record = make_record(trajectory=({"c1": math.nan, "other": math.inf},))
    line = record.to_json()
    assert '"c1": NaN' in line and '"other": Infinity' in line
    back = PredictionRecord.from_json(line).trajectory[0]
    assert math.isnan(back["c1"]) and back["other"] == math.inf
    assert json.loads(make_record().to_json()) == make_record().to_dict()
