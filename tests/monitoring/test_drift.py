"""check_drift on small seeded profile frames."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.config import MonitoringConfig
from core.predlog import PREDICTION_COLUMNS
from core.profile import NUMERIC_FEATURES, PROFILE_COLUMNS
from monitoring.drift import check_drift

CATS = [f"g{g:02d}-c{c:02d}" for g in range(4) for c in range(5)]


def make_profile(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Profile rows; ``shift`` moves interest towards the last categories and raises p_buy."""
    rng = np.random.default_rng(seed)
    frame = {c: rng.gamma(2.0, 1.0, n) for c in NUMERIC_FEATURES}
    weights = np.linspace(2.0, 0.2, len(CATS)) + shift * np.linspace(0.0, 6.0, len(CATS))
    frame["top_category"] = rng.choice(CATS, n, p=weights / weights.sum())
    frame["p_buy"] = rng.beta(1 + 3 * shift, 10, n)
    frame["p_churn"] = rng.beta(2, 5, n)
    frame["top_pred"] = frame["top_category"]
    return pd.DataFrame(frame)


CONFIG = MonitoringConfig(stattest="psi", stattest_threshold=0.1, drift_share=0.05, min_rows=300)


def test_same_distribution_is_ok() -> None:
    result = check_drift(make_profile(3000, 0), make_profile(3000, 1), CONFIG)
    assert result.status == "ok"
    assert not result.should_retrain
    assert result.drifted_columns == []
    assert {c.column for c in result.columns} == set(PROFILE_COLUMNS) | set(PREDICTION_COLUMNS)
    assert result.snapshot is not None
    summary = json.loads(json.dumps(result.to_dict()))
    assert "snapshot" not in summary and summary["n_current"] == 3000


def test_shifted_sample_drifts() -> None:
    result = check_drift(make_profile(3000, 0), make_profile(3000, 2, shift=1.0), CONFIG)
    assert result.status == "drift"
    assert result.should_retrain
    drifted = {c.column for c in result.drifted_columns}
    assert {"top_category", "p_buy", "top_pred"} <= drifted
    assert "seq_len" not in drifted
    assert result.share_drifted == pytest.approx(len(drifted) / len(result.columns))


def test_p_value_method_direction() -> None:
    config = CONFIG.model_copy(update={"stattest": "ks", "stattest_threshold": 0.001})
    result = check_drift(make_profile(2000, 0), make_profile(2000, 3, shift=1.0), config)
    by_name = {c.column: c for c in result.columns}
    assert by_name["p_buy"].drifted and by_name["p_buy"].score < 0.001
    assert not by_name["p_churn"].drifted


def test_tiny_window_is_not_enough_data() -> None:
    result = check_drift(make_profile(3000, 0), make_profile(50, 1, shift=1.0), CONFIG)
    assert result.status == "not_enough_data"
    assert not result.should_retrain
    assert result.snapshot is None
    assert "50" in result.reason


def test_missing_feature_column_is_named() -> None:
    current = make_profile(500, 1).drop(columns=["share_buy"])
    with pytest.raises(ValueError, match="current.*share_buy"):
        check_drift(make_profile(500, 0), current, CONFIG)


def test_reference_without_predictions_checks_features_only() -> None:
    reference = make_profile(1000, 0).drop(columns=list(PREDICTION_COLUMNS))
    result = check_drift(reference, make_profile(1000, 1), CONFIG)
    assert {c.column for c in result.columns} == set(PROFILE_COLUMNS)
