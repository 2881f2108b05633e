"""Calibration of the purchase and churn probabilities, fitted on validation.

Method: **Platt scaling on the logit**, ``p' = sigmoid(a * logit(p) + b)`` with ``a > 0``.
Why not isotonic: validation holds a few hundred to a few thousand users, where isotonic
regression overfits into a step function whose flat steps tie distinct users (changing
AUC and the ranking), while two parameters are stable, strictly monotone (AUC unchanged)
and trivially stored as JSON in the bundle metadata. Temperature scaling is the ``b = 0``
special case and cannot fix a biased base rate, which a churn head often has.

The parameters (:func:`fit_calibration`) are a plain dict::

    {"method": "platt", "a": 1.3, "b": -0.2, "threshold": 0.41}

``threshold`` is the calibrated-probability threshold with the best F1 on validation;
``{"method": "identity"}`` leaves probabilities unchanged (one-class validation labels,
or a fit whose slope is not positive). :func:`apply_calibration` is the only function a
serving path needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from evaluation.metrics import f1_at

EPS = 1e-6
IDENTITY: dict[str, Any] = {"method": "identity", "threshold": 0.5}


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)
    return np.log(p / (1.0 - p))


def apply_calibration(probabilities: np.ndarray, params: Mapping[str, Any] | None) -> np.ndarray:
    """Map raw probabilities through fitted calibration ``params`` (shape kept).

    Args:
        probabilities: raw model probabilities, any shape.
        params: what :func:`fit_calibration` returned; ``None`` or identity: unchanged.

    Returns:
        Calibrated probabilities, float64, same shape.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if not params or params.get("method", "identity") == "identity":
        return p
    if params["method"] != "platt":
        raise ValueError(f"unknown calibration method {params['method']!r}")
    z = float(params["a"]) * _logit(p) + float(params["b"])
    return 1.0 / (1.0 + np.exp(-z))


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """ECE over ``n_bins`` equal-width bins: sum of bin share x |mean p - positive rate|."""
    y = np.asarray(y, dtype=np.float64).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    if y.size == 0:
        return float("nan")
    bins = np.clip((p * n_bins).astype(int), 0, n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        mask = bins == b
        total += mask.mean() * abs(p[mask].mean() - y[mask].mean())
    return float(total)


def best_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The threshold on ``p`` with the highest F1 against ``y`` (ties: the higher one)."""
    candidates = np.unique(np.round(np.asarray(p, dtype=np.float64).ravel(), 6))
    if candidates.size > 200:
        candidates = np.unique(np.quantile(candidates, np.linspace(0, 1, 201)))
    best, best_f1 = 0.5, -1.0
    for t in candidates:
        f1 = f1_at(y, p, float(t))
        if f1 >= best_f1:
            best, best_f1 = float(t), f1
    return best


def fit_calibration(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """Fit Platt scaling of ``p`` to labels ``y`` (validation) and its F1 threshold.

    Returns:
        Parameters for :func:`apply_calibration` (identity when labels have one class).
    """
    from sklearn.linear_model import LogisticRegression

    y = (np.asarray(y).ravel() > 0.5).astype(int)
    p = np.asarray(p, dtype=np.float64).ravel()
    if y.min() == y.max():
        return dict(IDENTITY)
    model = LogisticRegression(C=1e4, max_iter=1000)
    model.fit(_logit(p)[:, None], y)
    a, b = float(model.coef_[0, 0]), float(model.intercept_[0])
    params: dict[str, Any] = {"method": "platt", "a": a, "b": b} if a > 0 else dict(IDENTITY)
    params["threshold"] = best_threshold(y, apply_calibration(p, params))
    return params


def calibrate_heads(
    val_pred: Mapping[str, np.ndarray],
    val_labels: Mapping[str, np.ndarray],
    test_pred: Mapping[str, np.ndarray],
    test_labels: Mapping[str, np.ndarray],
    heads: tuple[str, ...] = ("buy", "churn"),
) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray], dict[str, float]]:
    """Fit each head's calibration on validation and report it on test.

    Returns:
        ``(params by head, test predictions with calibrated heads, metrics)`` where metrics
        are ``{head}_ece_raw``, ``{head}_ece`` (calibrated), ``{head}_f1`` at the validation
        threshold and ``{head}_threshold``, all on test.
    """
    params: dict[str, dict[str, Any]] = {}
    calibrated = dict(test_pred)
    metrics: dict[str, float] = {}
    for head in heads:
        fitted = fit_calibration(val_labels[head], np.ravel(val_pred[head]))
        params[head] = fitted
        raw = np.ravel(test_pred[head])
        cal = apply_calibration(raw, fitted)
        calibrated[head] = cal.reshape(np.shape(test_pred[head]))
        y = np.ravel(test_labels[head])
        metrics[f"{head}_ece_raw"] = expected_calibration_error(y, raw)
        metrics[f"{head}_ece"] = expected_calibration_error(y, cal)
        metrics[f"{head}_threshold"] = float(fitted["threshold"])
        metrics[f"{head}_f1"] = f1_at(y, cal, fitted["threshold"])
    return params, calibrated, metrics
