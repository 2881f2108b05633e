"""Per-sample scores: the same definitions as the means, the repeat/explore split, alignment."""

from __future__ import annotations

import numpy as np
import pytest

from core.arrays import SequenceArrays
from evaluation.metrics import evaluate_predictions, per_sample_ranking, ranking_metrics, top_k
from evaluation.samples import (
    SampleScores,
    align,
    read_samples,
    score_predictions,
    write_samples,
)

# V = 7: 0 pad, 1 OOV, 2..6 categories. Row 0 ranks 3, 2, 4, 5, 6; row 2 ranks 6, 5, ...
SCORES = np.array(
    [
        [0, 0, 4, 5, 3, 2, 1],
        [0, 0, 1, 1, 1, 1, 1],
        [0, 0, 1, 2, 3, 4, 5],
    ],
    dtype=np.float32,
)
TRUTH = np.array(
    [
        [0, 0, 1, 0, 1, 0, 1],  # {2, 4, 6}
        [0, 0, 0, 0, 0, 0, 0],  # no truth: nan everywhere
        [0, 1, 0, 0, 0, 1, 0],  # {OOV, 5}
    ],
    dtype=np.float32,
)
HISTORY = np.array([[0, 2, 2, 5], [0, 0, 0, 3], [1, 1, 5, 6]])  # 0 pad; row 2 has seen OOV


def _old_ranking_metrics(scores: np.ndarray, truth: np.ndarray, k: int) -> tuple[float, float]:
    """The means as computed before per-sample vectors existed (a reference to compare)."""
    t = truth > 0
    keep = t.any(axis=1)
    hits = np.take_along_axis(t[keep], top_k(scores[keep], k), axis=1)
    denom = np.minimum(t[keep].sum(axis=1), k)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits * discounts[: hits.shape[1]]).sum(axis=1)
    idcg = np.cumsum(discounts)[denom - 1]
    return float((hits.sum(axis=1) / denom).mean()), float((dcg / idcg).mean())


def test_repeat_and_explore_recall_by_hand():
    out = per_sample_ranking(SCORES, TRUTH, k=2, history=HISTORY)
    # Row 0: top 2 = {3, 2}; truth {2, 4, 6}; repeat {2} (seen), explore {4, 6}.
    assert out["recall_at_2"][0] == pytest.approx(1 / 2)
    assert out["repeat_recall_at_2"][0] == 1.0
    assert out["explore_recall_at_2"][0] == 0.0
    # Row 2: top 2 = {6, 5}; truth {OOV, 5}; 5 was seen (repeat hit), OOV is always explore.
    assert out["repeat_recall_at_2"][2] == 1.0
    assert out["explore_recall_at_2"][2] == 0.0
    for values in out.values():
        assert np.isnan(values[1])


def test_explore_is_nan_where_every_truth_was_seen():
    history = np.array([[2, 4, 6, 0], [0, 0, 0, 0], [5, 5, 5, 5]])
    truth = TRUTH.copy()
    truth[2, 1] = 0  # drop the OOV truth: row 2's truth {5} is all repeat
    out = per_sample_ranking(SCORES, truth, k=2, history=history)
    assert np.isnan(out["explore_recall_at_2"][[0, 2]]).all()
    assert out["repeat_recall_at_2"][0] == pytest.approx(1 / 2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_per_sample_means_equal_the_mean_metrics_exactly(seed):
    rng = np.random.default_rng(seed)
    n, v, k = 5000, 40, 10
    scores = rng.random((n, v)).astype(np.float32)
    scores[rng.random((n, v)) < 0.2] = 0.5  # ties
    truth = (rng.random((n, v)) < 0.08).astype(np.float32)
    truth[:, 0] = 0
    per = per_sample_ranking(scores, truth, k)
    means = ranking_metrics(scores, truth, k)
    ranked = ~np.isnan(per["recall_at_10"])
    assert per["recall_at_10"][ranked].mean() == means["recall_at_10"]
    assert per["ndcg_at_10"][ranked].mean() == means["ndcg_at_10"]
    assert ranked.sum() == means["n_ranked"]
    assert (means["recall_at_10"], means["ndcg_at_10"]) == _old_ranking_metrics(scores, truth, k)


def _arrays(n: int = 600, v: int = 30, seed: int = 0) -> SequenceArrays:
    rng = np.random.default_rng(seed)
    truth = (rng.random((n, v)) < 0.1).astype(np.float32)
    truth[:, 0] = 0
    return SequenceArrays(
        user_id=np.array([f"u{i // 2}" for i in range(n)], dtype=object),  # 2 cutoffs each
        cutoff=np.array(["2024-01-01", "2024-01-02"] * (n // 2), dtype="datetime64[ns]"),
        cat=rng.integers(0, v, (n, 8)).astype(np.int32),
        beh=np.ones((n, 8), np.int32),
        hour=np.ones((n, 8), np.int32),
        gap=np.zeros((n, 8), np.float32),
        age=np.zeros((n, 8), np.float32),
        period_dist=np.zeros((n, 2, 3), np.float32),
        period_counts=np.zeros((n, 2, 4), np.float32),
        next_cats=truth,
        buy=(rng.random(n) < 0.3).astype(np.float32),
        churn=(rng.random(n) < 0.2).astype(np.float32),
        trajectory=rng.dirichlet(np.ones(3), (n, 2)).astype(np.float32),
    )


def _pred(arrays: SequenceArrays, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n, v = arrays.next_cats.shape
    return {
        "next_cats": rng.random((n, v)).astype(np.float32),
        "buy": rng.random(n),
        "churn": rng.random(n),
        "trajectory": rng.dirichlet(np.ones(3), (n, 2)),
    }


def test_score_predictions_agrees_with_evaluate_predictions():
    arrays = _arrays()
    pred = _pred(arrays, 1)
    scored = score_predictions(pred, arrays)
    plain = evaluate_predictions(pred, arrays)
    assert {k: scored.metrics[k] for k in plain} == plain
    assert scored.samples.mean("recall_at_10") == plain["recall_at_10"]
    assert scored.metrics["explore_recall_at_10"] == scored.samples.mean("explore_recall_at_10")
    assert len(scored.samples) == len(arrays) and scored.samples.n_users == len(arrays) // 2


def test_align_matches_by_user_and_cutoff_and_round_trips(tmp_path):
    arrays = _arrays(n=40)
    a = score_predictions(_pred(arrays, 1), arrays).samples
    order = np.random.default_rng(3).permutation(len(a))
    b = a.select(order[5:])  # shuffled, five samples missing
    left, right = align(a, b)
    assert len(left) == len(right) == 35
    assert (left.user_id == right.user_id).all() and (left.cutoff == right.cutoff).all()
    np.testing.assert_array_equal(left.values["recall_at_10"], right.values["recall_at_10"])
    back = read_samples(write_samples(tmp_path / "s.parquet", {"model": a, "baseline.x": b}))
    assert set(back) == {"model", "baseline.x"}
    np.testing.assert_array_equal(back["model"].values["ndcg_at_10"], a.values["ndcg_at_10"])
    assert (back["baseline.x"].cutoff == b.cutoff).all()


def test_align_refuses_repeated_keys():
    twice = SampleScores(
        np.array(["u1", "u1"], dtype=object),
        np.array(["2024-01-01"] * 2, dtype="datetime64[ns]"),
        {"recall_at_10": np.array([0.1, 0.2])},
    )
    with pytest.raises(ValueError, match="repeat"):
        align(twice, twice)
