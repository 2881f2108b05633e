"""Baselines on a hand-made log whose rankings are worked out in the comments."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core.arrays import SequenceArrays
from core.schema import conform
from core.vocab import Vocabulary
from evaluation.baselines import (
    baseline_predictions,
    count_popularity,
    evaluate_baselines,
    persist_trajectory,
    rank_to_scores,
)
from evaluation.metrics import evaluate_predictions, top_k

CUTOFF = pd.Timestamp("2024-01-10", tz="UTC")
LOG3 = 1.0 / math.log2(3)


@pytest.fixture()
def events() -> pd.DataFrame:
    rows = [
        # u1 freq: b 3 (cart), 9 1, 10 1 -> b, then 10 before 9 (string order).
        # u1 decay (1 day): 10 (11 h old) > 9 (12 h) > b (8 days) -> 10, 9, b.
        ("u1", "b", "cart", "2024-01-02 00:00"),
        ("u1", "9", "view", "2024-01-09 12:00"),
        ("u1", "10", "view", "2024-01-09 13:00"),
        # u2 freq: b 2, 9 2 (fav) -> tie -> 9 before b.
        ("u2", "b", "view", "2024-01-08 00:00"),
        ("u2", "b", "view", "2024-01-08 01:00"),
        ("u2", "9", "fav", "2024-01-09 00:00"),
        # horizon: u1 buys 9 and views new category z; u2 is silent (churns).
        ("u1", "9", "buy", "2024-01-10 05:00"),
        ("u1", "z", "view", "2024-01-11 05:00"),
        ("u3", "9", "view", "2024-01-11 06:00"),  # no history: not a user
        ("u1", "b", "view", "2024-01-14 00:00"),  # after the horizon
    ]
    frame = pd.DataFrame(rows, columns=["user_id", "category_id", "behavior", "timestamp"])
    frame["item_id"] = "i"
    return conform(frame)


def test_popularity_orders_by_count_then_id_string(events):
    pop = count_popularity(events[events.timestamp < CUTOFF], CUTOFF, pd.Timedelta("3D"))
    assert list(pop.index) == ["9", "b", "10"]  # 9: 2, b: 2, 10: 1 ("9" < "b")


def test_rank_to_scores_puts_own_categories_above_fill():
    tie = np.array([9, 9, 0, 1, 2, 3])
    scores = rank_to_scores(
        np.array([0, 0]), np.array([5, 4]), np.array([1.0, 1.0]), np.array([2, 3, 4]), tie, 2
    )
    assert top_k(scores, 4).tolist() == [[4, 5, 2, 3], [2, 3, 4, 5]]


def test_evaluate_baselines_hand_values(events):
    out = evaluate_baselines(events, CUTOFF, "3D", "3D", 1.0, k=2)
    # Only u1 has horizon events; truth {9, z}.
    assert out["popularity"]["recall_at_2"] == pytest.approx(0.5)  # [9, b]
    assert out["popularity"]["ndcg_at_2"] == pytest.approx(1 / (1 + LOG3))
    assert out["personal_freq"]["recall_at_2"] == 0.0  # [b, 10]
    assert out["personal_decay"]["recall_at_2"] == pytest.approx(0.5)  # [10, 9]
    assert out["personal_decay"]["ndcg_at_2"] == pytest.approx(LOG3 / (1 + LOG3))
    freq = out["personal_freq"]
    assert freq["n_users"] == 2 and freq["n_ranked"] == 1
    assert freq["buy_auc"] == 1.0 and freq["churn_auc"] == 1.0
    assert freq["churn_rate"] == 0.5


def test_evaluate_baselines_without_history_names_the_cutoff(events):
    with pytest.raises(ValueError, match="cutoff"):
        evaluate_baselines(events, "2020-01-01", "3D", "3D", 1.0)


def _arrays(vocab: Vocabulary) -> SequenceArrays:
    zeros = np.zeros((2, 3), dtype=np.int32)
    truth = np.zeros((2, vocab.size), dtype=np.float32)
    truth[0, vocab.encode(["9", "z"])] = 1
    dist = np.zeros((2, 2, 3), np.float32)
    dist[0, 1] = [0.0, 1.0, 0.0]
    dist[1, 0] = [1.0, 0.0, 0.0]
    return SequenceArrays(
        user_id=np.array(["u1", "u2"]),
        cutoff=np.full(2, np.datetime64("2024-01-10T00:00")),
        cat=zeros,
        beh=zeros,
        hour=zeros,
        gap=zeros.astype(np.float32),
        age=zeros.astype(np.float32),
        period_dist=dist,
        period_counts=np.log1p(dist.sum(axis=2, keepdims=True) * np.ones((1, 1, 4))),
        next_cats=truth,
        buy=np.array([1.0, 0.0]),
        churn=np.array([0.0, 1.0]),
        trajectory=np.zeros((2, 2, 3), np.float32),
    )


@pytest.mark.parametrize("categories", [["b", "9", "10", "z"], ["10", "b", "9"]])
def test_model_space_predictions_match_protocol_evaluator(events, categories):
    vocab = Vocabulary(categories, top_categories=2)  # second case: z is OOV
    arrays = _arrays(vocab)
    preds = baseline_predictions(events, arrays, vocab, pop_window="3D", half_life=1.0)
    expected = evaluate_baselines(events, CUTOFF, "3D", "3D", 1.0, k=2)
    for name, pred in preds.items():
        got = evaluate_predictions(pred, arrays, k=2)
        for key in ("recall_at_2", "ndcg_at_2", "buy_auc", "churn_auc"):
            assert got[key] == pytest.approx(expected[name][key]), (name, key)
        assert got["buy_f1"] == 1.0  # one cart -> p_buy 0.5


def test_persistence_uses_last_period_else_window_else_uniform():
    dist = np.zeros((3, 3, 2), np.float32)
    counts = np.zeros((3, 3, 4), np.float32)
    dist[0, 2] = [0.0, 1.0]
    counts[0, 2, 0] = np.log1p(1)
    dist[1, 0], dist[1, 1] = [1.0, 0.0], [0.0, 1.0]
    counts[1, 0, 0], counts[1, 1, 0] = np.log1p(3), np.log1p(1)
    arrays = SequenceArrays(
        user_id=np.array(["a", "b", "c"]),
        cutoff=np.full(3, np.datetime64("2024-01-10")),
        cat=np.zeros((3, 1), np.int32),
        beh=np.zeros((3, 1), np.int32),
        hour=np.zeros((3, 1), np.int32),
        gap=np.zeros((3, 1), np.float32),
        age=np.zeros((3, 1), np.float32),
        period_dist=dist,
        period_counts=counts,
    )
    out = persist_trajectory(arrays, future_periods=2)
    assert out.shape == (3, 2, 2)
    np.testing.assert_allclose(out[0], [[0, 1], [0, 1]])
    np.testing.assert_allclose(out[1], [[0.75, 0.25], [0.75, 0.25]], rtol=1e-6)
    np.testing.assert_allclose(out[2], [[0.5, 0.5], [0.5, 0.5]])
