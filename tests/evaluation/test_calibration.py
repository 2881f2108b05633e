"""Platt calibration of purchase/churn probabilities: monotone, better ECE, stored as JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evaluation.calibration import (
    apply_calibration,
    best_threshold,
    calibrate_heads,
    expected_calibration_error,
    fit_calibration,
)
from evaluation.metrics import auc, f1_at


def _miscalibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from sigmoid(z); the 'model' says sigmoid(3z + 1): overconfident, biased."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(float)
    return y, 1 / (1 + np.exp(-(3 * z + 1)))


def test_calibration_improves_ece_and_keeps_the_order():
    y_val, p_val = _miscalibrated(3000, 0)
    y_test, p_test = _miscalibrated(3000, 1)
    params = fit_calibration(y_val, p_val)
    assert params["method"] == "platt" and params["a"] == pytest.approx(1 / 3, abs=0.05)
    cal = apply_calibration(p_test, params)
    before = expected_calibration_error(y_test, p_test)
    after = expected_calibration_error(y_test, cal)
    assert before > 0.1 and after < 0.03
    grid = np.linspace(0.001, 0.999, 500)
    assert (np.diff(apply_calibration(grid, params)) > 0).all()
    assert auc(y_test, cal) == pytest.approx(auc(y_test, p_test))
    assert json.loads(json.dumps(params)) == params  # fits in bundle metadata


def test_identity_when_validation_has_one_class():
    params = fit_calibration(np.zeros(10), np.linspace(0.1, 0.9, 10))
    assert params["method"] == "identity"
    p = np.array([0.2, 0.7])
    np.testing.assert_array_equal(apply_calibration(p, params), p)
    np.testing.assert_array_equal(apply_calibration(p, None), p)


def test_threshold_is_the_best_f1_on_validation():
    y, p = _miscalibrated(500, 2)
    t = best_threshold(y, p)
    assert f1_at(y, p, t) >= max(f1_at(y, p, c) for c in np.linspace(0.05, 0.95, 19)) - 1e-12


def test_ece_of_a_perfect_forecaster_is_small():
    rng = np.random.default_rng(3)
    p = rng.random(20000)
    y = (rng.random(20000) < p).astype(float)
    assert expected_calibration_error(y, p) < 0.02


def test_calibrate_heads_reports_test_ece_before_and_after():
    y_val, p_val = _miscalibrated(2000, 4)
    y_test, p_test = _miscalibrated(2000, 5)
    params, pred, metrics = calibrate_heads(
        {"buy": p_val[:, None]}, {"buy": y_val}, {"buy": p_test[:, None]}, {"buy": y_test}, ("buy",)
    )
    assert pred["buy"].shape == (2000, 1)
    assert metrics["buy_ece"] < metrics["buy_ece_raw"]
    assert metrics["buy_threshold"] == params["buy"]["threshold"]
