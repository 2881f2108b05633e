"""Tuned heuristics choose their parameters on validation, never on test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.schema import conform
from evaluation.metrics import per_sample_ranking
from evaluation.protocol import protocol_arrays
from evaluation.suite import run_baseline_suite
from evaluation.tuned import HeuristicParams, heuristic_predictions, tune_heuristics

VAL, TEST, HORIZON = "2024-01-10", "2024-01-20", "5D"


@pytest.fixture()
def events() -> pd.DataFrame:
    """Val rewards a short half-life (the recent ``b``), test a long one (the heavy ``a``)."""
    rows = []
    for user in ("u1", "u2", "u3", "u4"):
        rows += [(user, "a", "view", f"2024-01-01 0{i}:00") for i in range(5)]
        rows.append((user, "b", "view", "2024-01-09 23:00"))
        rows.append((user, "b", "view", "2024-01-11 00:00"))  # val horizon: b
        rows += [(user, "a", "view", f"2024-01-16 0{i}:00") for i in range(5)]
        rows.append((user, "c", "view", "2024-01-19 23:00"))
        rows.append((user, "a", "view", "2024-01-21 00:00"))  # test horizon: a
    frame = pd.DataFrame(rows, columns=["user_id", "category_id", "behavior", "timestamp"])
    return conform(frame.assign(item_id="i"))


def _recall_at_1(events: pd.DataFrame, half_life: float) -> float:
    test, vocab = protocol_arrays(events, TEST, HORIZON)
    params = {"personal_decay": HeuristicParams("3D", "readme", half_life)}
    pred = heuristic_predictions(events, test, vocab, params, HORIZON)["personal_decay"]
    return float(
        np.nanmean(per_sample_ranking(pred["next_cats"], test.next_cats, 1)["recall_at_1"])
    )


def test_decay_half_life_is_chosen_on_validation(events):
    val, vocab = protocol_arrays(events, VAL, HORIZON)
    params, val_recall = tune_heuristics(events, val, vocab, k=1)
    chosen = params["personal_decay"].half_life_days
    assert chosen is not None and chosen < 3.87  # b beats 5 views of a 9 days old
    assert val_recall["personal_decay"] == 1.0
    # On test the long half-life would win; the val choice is what gets scored.
    assert _recall_at_1(events, 30.0) == 1.0
    assert _recall_at_1(events, chosen) == 0.0


def test_suite_tunes_on_val_and_records_the_choice(events):
    test, vocab = protocol_arrays(events, TEST, HORIZON)
    val, _ = protocol_arrays(events, VAL, HORIZON, vocab=vocab)  # one vocabulary, as a model's
    untuned = run_baseline_suite(events, test, vocab, HORIZON, learned_baseline=False)
    assert untuned.params["personal_decay"] == {
        "pop_window": "3D",
        "weights": "readme",
        "half_life_days": 1.0,
        "tuned": False,
    }
    suite = run_baseline_suite(events, test, vocab, HORIZON, val=val, learned_baseline=False)
    assert suite.params["personal_decay"]["tuned"] is True
    assert suite.params["personal_decay"]["half_life_days"] < 3.87
    assert set(suite.scored) == {"popularity", "personal_freq", "personal_decay"}
    assert "baseline.personal_decay.half_life_days" in suite.flat_params()
