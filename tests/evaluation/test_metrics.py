"""Metric values checked against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.arrays import SequenceArrays
from evaluation.metrics import (
    auc,
    evaluate_predictions,
    f1_at,
    js_divergence,
    ndcg_at_k,
    per_user_auc,
    ranking_metrics,
    recall_at_k,
    recall_curve,
    top_k,
    trajectory_mse,
)

LOG3 = 1.0 / math.log2(3)  # discount of rank 2

# V = 6: 0 pad, 1 OOV, 2..5 categories.
SCORES = np.array(
    [
        [9.0, 9.0, 1.0, 4.0, 3.0, 2.0],  # ranks 3, 4, 5, 2
        [0.0, 0.0, 1.0, 1.0, 1.0, 1.0],  # no truth: excluded
        [0.0, 0.0, 0.0, 0.0, 0.0, 1.0],  # ranks 5, then ties 2, 3, 4 by index
    ]
)
TRUTH = np.array(
    [
        [0, 0, 1, 0, 1, 0],  # {2, 4}
        [0, 0, 0, 0, 0, 0],
        [0, 1, 0, 0, 0, 1],  # {OOV, 5}: OOV counts in |truth| but cannot be hit
    ],
    dtype=np.float32,
)


def test_top_k_masks_padding_and_oov_and_breaks_ties_by_index():
    assert top_k(SCORES, 3).tolist() == [[3, 4, 5], [2, 3, 4], [5, 2, 3]]


def test_recall_and_ndcg_match_hand_values_per_row():
    assert recall_at_k(SCORES[:1], TRUTH[:1], 2) == pytest.approx(0.5)
    assert ndcg_at_k(SCORES[:1], TRUTH[:1], 2) == pytest.approx(LOG3 / (1 + LOG3))
    assert recall_at_k(SCORES[2:], TRUTH[2:], 2) == pytest.approx(0.5)
    assert ndcg_at_k(SCORES[2:], TRUTH[2:], 2) == pytest.approx(1 / (1 + LOG3))


def test_ranking_metrics_average_only_rows_with_truth():
    out = ranking_metrics(SCORES, TRUTH, k=2)
    assert out["n_ranked"] == 2
    assert out["recall_at_2"] == pytest.approx(0.5)
    assert out["ndcg_at_2"] == pytest.approx(0.5)


def test_denominator_is_min_of_truth_size_and_k():
    scores = np.array([[0, 0, 5, 4, 3, 2, 1]], dtype=float)
    truth = np.array([[0, 0, 1, 1, 1, 1, 1]], dtype=float)  # 5 truths, k = 2
    assert recall_at_k(scores, truth, 2) == pytest.approx(1.0)
    assert ndcg_at_k(scores, truth, 2) == pytest.approx(1.0)


def test_recall_curve_uses_min_of_truth_size_and_each_k():
    curve = recall_curve(SCORES, TRUTH, [1, 2, 4])
    assert curve[1] == pytest.approx(0.5)  # row 2: 1 hit / min(2, 1); row 0: none
    assert curve[2] == pytest.approx(0.5)
    assert curve[4] == pytest.approx(0.75)  # row 0 finds both by rank 4; row 2 only 1 of 2


def test_ranking_without_truth_is_nan():
    out = ranking_metrics(SCORES, np.zeros_like(TRUTH), 2)
    assert math.isnan(out["recall_at_2"]) and out["n_ranked"] == 0


def test_shape_mismatch_is_named():
    with pytest.raises(ValueError, match="scores"):
        recall_at_k(SCORES, TRUTH[:, :4], 2)


def test_auc_hand_value_and_single_class_nan():
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert math.isnan(auc([1, 1, 1], [0.1, 0.2, 0.3]))


def test_per_user_auc_counts_ties_half():
    scores = np.array([[0, 0, 3.0, 1.0, 2.0, 2.0]])
    truth = np.array([[0, 0, 1, 0, 1, 0]])  # positives 3.0 and 2.0; negatives 1.0 and 2.0
    assert per_user_auc(scores, truth) == pytest.approx((1 + 1 + 1 + 0.5) / 4)


def test_f1_at_half():
    assert f1_at([1, 1, 0, 0], [0.9, 0.2, 0.6, 0.1]) == pytest.approx(0.5)
    assert f1_at([0, 0], [0.1, 0.2]) == 0.0


def test_js_divergence_and_mse_skip_empty_periods():
    truth = np.array([[[1.0, 0.0], [0.0, 0.0]]])  # second period empty
    same = np.array([[[1.0, 0.0], [0.3, 0.7]]])
    half = np.array([[[0.5, 0.5], [0.3, 0.7]]])
    opposite = np.array([[[0.0, 1.0], [1.0, 0.0]]])
    assert js_divergence(same, truth) == pytest.approx(0.0)
    assert js_divergence(opposite, truth) == pytest.approx(1.0)
    kl_p = 0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(0.5 / 0.25)
    assert js_divergence(half, truth) == pytest.approx(0.5 * kl_p + 0.5 * math.log2(1 / 0.75))
    assert trajectory_mse(half, truth) == pytest.approx(0.25)


def _arrays(truth: np.ndarray) -> SequenceArrays:
    n = truth.shape[0]
    zeros = np.zeros((n, 2), dtype=np.int32)
    return SequenceArrays(
        user_id=np.array([f"u{i}" for i in range(n)]),
        cutoff=np.full(n, np.datetime64("2024-01-10")),
        cat=zeros,
        beh=zeros,
        hour=zeros,
        gap=zeros.astype(np.float32),
        age=zeros.astype(np.float32),
        period_dist=np.zeros((n, 1, 2), np.float32),
        period_counts=np.zeros((n, 1, 4), np.float32),
        next_cats=truth,
        buy=np.array([1.0, 0.0, 0.0]),
        churn=np.array([0.0, 1.0, 0.0]),
        trajectory=np.array([[[1.0, 0.0]], [[0.0, 0.0]], [[0.0, 1.0]]]),
    )


def test_evaluate_predictions_returns_all_keys():
    pred = {
        "next_cats": SCORES,
        "buy": np.array([[0.9], [0.2], [0.1]]),
        "churn": np.array([0.1, 0.8, 0.3]),
        "trajectory": np.array([[[1.0, 0.0]], [[0.5, 0.5]], [[0.0, 1.0]]]),
    }
    out = evaluate_predictions(pred, _arrays(TRUTH), k=2)
    assert out["recall_at_2"] == pytest.approx(0.5)
    assert out["buy_auc"] == 1.0 and out["churn_auc"] == 1.0
    assert out["buy_f1"] == 1.0 and out["churn_f1"] == 1.0
    assert out["trajectory_js"] == pytest.approx(0.0)
    assert out["n_samples"] == 3 and out["n_ranked"] == 2


def test_evaluate_predictions_rejects_wrong_rows():
    pred = {"next_cats": SCORES[:2], "buy": np.zeros(3), "churn": np.zeros(3)}
    pred["trajectory"] = np.zeros((3, 1, 2))
    with pytest.raises(ValueError, match="next_cats"):
        evaluate_predictions(pred, _arrays(TRUTH))
