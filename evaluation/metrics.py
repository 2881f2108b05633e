"""Evaluation metrics shared by training, the promotion gate and the heuristic baselines.

Ranking protocol (``shared/data/README.md``): next-category metrics average over the samples
with at least one category in the horizon; recall@K = hits in the top K / min(|truth|, K);
NDCG@K uses binary gains and an ideal DCG over min(|truth|, K) positions. Indices 0
(padding) and 1 (OOV) are never ranked. An OOV truth entry still counts in |truth|: it is
a category the user touched that no predictor could name.

Scores are ranked by descending value; ties go to the lower index (stable sort), so a
predictor that wants a specific tie order must encode it in its scores.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from sklearn.metrics import roc_auc_score

from core.arrays import SequenceArrays

#: Indices below this (padding, OOV) are never ranked as predictions.
FIRST_RANKED = 2
#: Rows ranked at once: bounds the (rows, V) sort buffer for 100k-user evaluations.
CHUNK_ROWS = 2048


def _chunks(n: int) -> Iterator[slice]:
    for start in range(0, n, CHUNK_ROWS):
        yield slice(start, min(start + CHUNK_ROWS, n))


def _check_pair(scores: np.ndarray, truth: np.ndarray) -> None:
    if scores.ndim != 2 or scores.shape != truth.shape:
        raise ValueError(
            f"scores {scores.shape} and truth {truth.shape} must both be (n, V) and equal"
        )


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Return the indices of the ``k`` best categories per row, best first.

    Args:
        scores: (n, V) scores; columns 0 and 1 are masked.
        k: how many to return (at most ``V - 2``).

    Returns:
        (n, k) int64 category indices, never 0 or 1.
    """
    out = np.empty((scores.shape[0], min(k, scores.shape[1] - FIRST_RANKED)), dtype=np.int64)
    for rows in _chunks(scores.shape[0]):
        neg = -np.asarray(scores[rows, FIRST_RANKED:], dtype=np.float64)
        neg[np.isnan(neg)] = np.inf
        out[rows] = np.argsort(neg, axis=1, kind="stable")[:, : out.shape[1]] + FIRST_RANKED
    return out


def _hits(scores: np.ndarray, truth: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Hit matrix (m, k) and truth sizes (m,) over the rows with any truth."""
    _check_pair(scores, truth)
    truth = np.asarray(truth) > 0
    keep = truth.any(axis=1)
    scores, truth = scores[keep], truth[keep]
    top = top_k(scores, k)
    hits = np.take_along_axis(truth, top, axis=1)
    return hits, truth.sum(axis=1)


def _recall_ndcg(hits: np.ndarray, sizes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-row recall@K and NDCG@K from a (m, k) hit matrix and truth sizes (m,) >= 1."""
    denom = np.minimum(sizes, k)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits * discounts[: hits.shape[1]]).sum(axis=1)
    idcg = np.cumsum(discounts)[denom - 1]
    return hits.sum(axis=1) / denom, dcg / idcg


def per_sample_ranking(
    scores: np.ndarray, truth: np.ndarray, k: int = 10, history: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Recall@K and NDCG@K of every sample, the definitions behind :func:`ranking_metrics`.

    With ``history`` the truth is also split in two: *repeat* categories already in the
    sample's input history and *explore* ones that are not (OOV truth is always explore: no
    history entry names it). Each part's recall@K counts that part's hits in the same top K
    over ``min(|part|, K)`` (Li et al., TOIS 2023).

    Args:
        scores: (n, V) predicted scores.
        truth: (n, V) multi-hot of the categories touched in the horizon.
        k: cut-off K.
        history: (n, N) input category indices (``SequenceArrays.cat``; 0 = padding).

    Returns:
        (n,) float64 vectors ``recall_at_{k}``, ``ndcg_at_{k}`` (nan where a sample has no
        truth) and, with ``history``, ``repeat_recall_at_{k}`` and ``explore_recall_at_{k}``
        (nan where that part of the truth is empty).
    """
    _check_pair(scores, truth)
    truth = np.asarray(truth) > 0
    names = [f"recall_at_{k}", f"ndcg_at_{k}"]
    if history is not None:
        names += [f"repeat_recall_at_{k}", f"explore_recall_at_{k}"]
    out = {name: np.full(truth.shape[0], np.nan) for name in names}
    keep = np.flatnonzero(truth.any(axis=1))
    for chunk in _chunks(keep.size):
        rows = keep[chunk]
        mine = truth[rows]
        top = top_k(scores[rows], k)
        hits = np.take_along_axis(mine, top, axis=1)
        out[names[0]][rows], out[names[1]][rows] = _recall_ndcg(hits, mine.sum(axis=1), k)
        if history is None:
            continue
        seen = np.zeros_like(mine)
        np.put_along_axis(seen, np.asarray(history[rows], dtype=np.int64), True, axis=1)
        seen[:, :FIRST_RANKED] = False  # padding and OOV name no category
        for name, part in zip(names[2:], (mine & seen, mine & ~seen), strict=True):
            sizes = part.sum(axis=1)
            ok = sizes > 0
            part_hits = np.take_along_axis(part, top, axis=1)[ok].sum(axis=1)
            out[name][rows[ok]] = part_hits / np.minimum(sizes[ok], k)
    return out


def ranking_metrics(scores: np.ndarray, truth: np.ndarray, k: int = 10) -> dict[str, float]:
    """Recall@K and NDCG@K in one ranking pass: means of :func:`per_sample_ranking`.

    Args:
        scores: (n, V) predicted scores.
        truth: (n, V) multi-hot of the categories touched in the horizon.
        k: cut-off K.

    Returns:
        ``recall_at_{k}``, ``ndcg_at_{k}`` (nan when no row has truth) and ``n_ranked``.
    """
    per = per_sample_ranking(scores, truth, k)
    ranked = ~np.isnan(per[f"recall_at_{k}"])
    if not ranked.any():
        return {f"recall_at_{k}": float("nan"), f"ndcg_at_{k}": float("nan"), "n_ranked": 0.0}
    return {
        f"recall_at_{k}": float(per[f"recall_at_{k}"][ranked].mean()),
        f"ndcg_at_{k}": float(per[f"ndcg_at_{k}"][ranked].mean()),
        "n_ranked": float(ranked.sum()),
    }


def recall_at_k(scores: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Mean recall@K over rows with any truth (see module docstring)."""
    return ranking_metrics(scores, truth, k)[f"recall_at_{k}"]


def ndcg_at_k(scores: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Mean NDCG@K over rows with any truth, binary gains (see module docstring)."""
    return ranking_metrics(scores, truth, k)[f"ndcg_at_{k}"]


def recall_curve(scores: np.ndarray, truth: np.ndarray, ks: Sequence[int]) -> dict[int, float]:
    """Recall@K for each K in ``ks`` from a single ranking pass (K capped at the catalogue)."""
    ks = [k for k in ks if k <= scores.shape[1]] or [scores.shape[1]]
    hits, sizes = _hits(scores, truth, max(ks))
    if hits.shape[0] == 0:
        return {int(k): float("nan") for k in ks}
    cum = np.cumsum(hits, axis=1)
    return {int(k): float((cum[:, k - 1] / np.minimum(sizes, k)).mean()) for k in ks}


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC of scores ``p`` for binary labels ``y``; nan when only one class is present."""
    y = np.asarray(y).ravel() > 0.5
    p = np.asarray(p, dtype=np.float64).ravel()
    if y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, p))


def per_user_auc(scores: np.ndarray, truth: np.ndarray) -> float:
    """Mean over rows of the AUC separating truth from other categories (ties count half).

    Rows with no truth, or truth on every rankable category, are skipped.
    """
    _check_pair(scores, truth)
    values = []
    for rows in _chunks(scores.shape[0]):
        s = np.asarray(scores[rows, FIRST_RANKED:], dtype=np.float64)
        t = np.asarray(truth[rows, FIRST_RANKED:]) > 0
        pos, neg = t.sum(axis=1), (~t).sum(axis=1)
        ok = (pos > 0) & (neg > 0)
        if not ok.any():
            continue
        s, t, pos, neg = s[ok], t[ok], pos[ok], neg[ok]
        # Mann-Whitney U with average ranks for ties.
        order = np.argsort(s, axis=1, kind="stable")
        sorted_s = np.take_along_axis(s, order, axis=1)
        ranks = np.empty_like(s)
        for i in range(s.shape[0]):
            _, inv, counts = np.unique(sorted_s[i], return_inverse=True, return_counts=True)
            ends = np.cumsum(counts)
            ranks[i, order[i]] = (ends - (counts - 1) / 2.0)[inv]
        u = (ranks * t).sum(axis=1) - pos * (pos + 1) / 2.0
        values.append(u / (pos * neg))
    return float(np.concatenate(values).mean()) if values else float("nan")


def f1_at(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> float:
    """F1 of ``p >= threshold`` against binary ``y`` (0.0 when there is nothing to score)."""
    y = np.asarray(y).ravel() > 0.5
    pred = np.asarray(p, dtype=np.float64).ravel() >= threshold
    tp = float((y & pred).sum())
    denom = float(y.sum() + pred.sum())
    return 2.0 * tp / denom if denom else 0.0


def _trajectory_rows(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flatten to (m, C1) non-empty truth periods; prediction rows normalised (0 -> uniform)."""
    if pred.shape != truth.shape or pred.ndim != 3:
        raise ValueError(f"trajectory pred {pred.shape} and truth {truth.shape} must be (n,K,C1)")
    p = np.asarray(pred, dtype=np.float64).reshape(-1, pred.shape[-1])
    q = np.asarray(truth, dtype=np.float64).reshape(-1, truth.shape[-1])
    keep = q.sum(axis=1) > 0
    p, q = np.clip(p[keep], 0.0, None), q[keep]
    total = p.sum(axis=1, keepdims=True)
    p = np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / p.shape[1])
    return p, q / q.sum(axis=1, keepdims=True)


def js_divergence(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean Jensen-Shannon divergence (base 2, in [0, 1]) over non-empty truth periods.

    Args:
        pred: (n, K, C1) predicted bucket distributions (renormalised; all-zero -> uniform).
        truth: (n, K, C1) observed distributions; all-zero periods are skipped.
    """
    p, q = _trajectory_rows(pred, truth)
    if p.shape[0] == 0:
        return float("nan")
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> np.ndarray:
        safe = np.where(a > 0, a, 1.0)
        return np.where(a > 0, a * np.log2(safe / np.where(m > 0, m, 1.0)), 0.0).sum(axis=1)

    return float((0.5 * kl(p) + 0.5 * kl(q)).mean())


def trajectory_mse(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean squared error between bucket distributions over non-empty truth periods."""
    p, q = _trajectory_rows(pred, truth)
    return float(((p - q) ** 2).mean()) if p.shape[0] else float("nan")


def evaluate_predictions(
    pred: dict[str, np.ndarray], arrays: SequenceArrays, k: int = 10
) -> dict[str, float]:
    """Score model (or baseline) outputs against the labels in ``arrays``.

    Args:
        pred: ``next_cats`` (n, V) scores, ``buy`` (n,) or (n, 1), ``churn`` likewise,
            ``trajectory`` (n, K, C1).
        arrays: samples built with labels.
        k: ranking cut-off.

    Returns:
        recall_at_{k}, ndcg_at_{k}, buy_auc, churn_auc, trajectory_js, trajectory_mse,
        buy_f1, churn_f1, n_samples, n_ranked (nan where undefined).

    Raises:
        ValueError: if labels are missing or shapes disagree.
    """
    labels = arrays.labels()
    n = len(arrays)
    for name in ("next_cats", "buy", "churn", "trajectory"):
        if name not in pred:
            raise ValueError(f"prediction dict lacks {name!r}")
        if np.asarray(pred[name]).shape[0] != n:
            raise ValueError(f"pred[{name!r}] has {np.asarray(pred[name]).shape[0]} rows, not {n}")
    out = ranking_metrics(np.asarray(pred["next_cats"]), labels["next_cats"], k)
    out["buy_auc"] = auc(labels["buy"], pred["buy"])
    out["churn_auc"] = auc(labels["churn"], pred["churn"])
    out["trajectory_js"] = js_divergence(np.asarray(pred["trajectory"]), labels["trajectory"])
    out["trajectory_mse"] = trajectory_mse(np.asarray(pred["trajectory"]), labels["trajectory"])
    out["buy_f1"] = f1_at(labels["buy"], pred["buy"])
    out["churn_f1"] = f1_at(labels["churn"], pred["churn"])
    out["n_samples"] = float(n)
    return out
