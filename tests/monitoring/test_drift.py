"""check_drift on small seeded profile frames: the FDR rule, effect floors, bucket shares."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.config import MonitoringConfig
from core.predlog import PREDICTION_COLUMNS
from core.profile import LEGACY_COLUMNS, NUMERIC_FEATURES, PROFILE_COLUMNS
from monitoring.drift import benjamini_hochberg, check_drift

CATS = [f"g{g:02d}-c{c:02d}" for g in range(4) for c in range(5)]
BUCKETS = np.array([3.0, 2.0, 1.5, 1.0, 0.5, 4.0])  # last: "other"


def make_profile(n: int, seed: int, shift: float = 0.0, bucket_shift: float = 0.0) -> pd.DataFrame:
    """Profile rows; ``shift`` moves interest towards the last categories and raises p_buy,
    ``bucket_shift`` moves only the per-user category-bucket shares."""
    rng = np.random.default_rng(seed)
    frame: dict[str, object] = {c: rng.gamma(2.0, 1.0, n) for c in NUMERIC_FEATURES}
    frame["seq_len"] = np.minimum(rng.geometric(1 / 14, n), 50).astype(np.float64)
    weights = np.linspace(2.0, 0.2, len(CATS)) + shift * np.linspace(0.0, 6.0, len(CATS))
    frame["top_category"] = rng.choice(CATS, n, p=weights / weights.sum())
    base = BUCKETS + bucket_shift * np.array([0.0, 0.0, 0.0, 0.0, 3.0, 0.0])
    frame["bucket_shares"] = rng.dirichlet(base, n).round(4).tolist()
    frame["p_buy"] = rng.beta(1 + 3 * shift, 10, n)
    frame["p_churn"] = rng.beta(2, 5, n)
    frame["top_pred"] = frame["top_category"]
    return pd.DataFrame(frame)


CONFIG = MonitoringConfig(min_rows=300)


def test_same_distribution_is_ok() -> None:
    result = check_drift(make_profile(3000, 0), make_profile(3000, 1), CONFIG)
    assert result.status == "ok"
    assert not result.should_retrain
    assert result.drifted_columns == []
    assert {c.column for c in result.columns} == set(PROFILE_COLUMNS) | set(PREDICTION_COLUMNS)
    assert result.snapshot is None  # the Evidently report is built after the decision
    summary = json.loads(json.dumps(result.to_dict()))
    assert "snapshot" not in summary and summary["n_current"] == 3000


def test_shifted_sample_drifts_and_names_its_evidence() -> None:
    result = check_drift(make_profile(3000, 0), make_profile(3000, 2, shift=1.0), CONFIG)
    assert result.status == "drift" and result.should_retrain
    drifted = [c.column for c in result.drifted_columns]
    assert {"top_category", "p_buy", "top_pred"} <= set(drifted)
    assert "seq_len" not in drifted
    p_values = [c.p_value for c in result.drifted_columns]
    assert p_values == sorted(p_values)  # ordered by evidence
    assert result.share_drifted == pytest.approx(len(drifted) / len(result.columns))
    first = result.drifted_columns[0]
    assert f"{first.column} ({first.method} p=" in result.reason


def test_category_share_shift_with_unchanged_summaries_is_detected() -> None:
    reference = make_profile(3000, 0)
    current = make_profile(3000, 1, bucket_shift=0.2)
    result = check_drift(reference, current, CONFIG)
    assert result.status == "drift"
    assert [c.column for c in result.drifted_columns] == ["bucket_shares"]
    assert "bucket_shares (wald p=" in result.reason


def test_demo_sized_seq_len_fluctuation_does_not_fire() -> None:
    reference = make_profile(20_000, 0)
    current = make_profile(20_000, 1)
    current["seq_len"] = np.minimum(np.round(current["seq_len"] * 1.05), 50)
    result = check_drift(reference, current, CONFIG)
    seq_len = next(c for c in result.columns if c.column == "seq_len")
    assert seq_len.q_value <= CONFIG.fdr  # significant on 20k rows ...
    assert seq_len.effect < CONFIG.min_ks_effect and not seq_len.drifted  # ... but tiny
    assert result.status == "ok"
    assert "below the effect floor: seq_len" in result.reason


def test_benjamini_hochberg_step_up() -> None:
    p = [0.01, 0.04, 0.03, 0.005, 0.5]
    rejected, q = benjamini_hochberg(p, 0.05)
    # Sorted 0.005, 0.01, 0.03, 0.04 against k * 0.05 / 5 = .01, .02, .03, .04: all four pass.
    assert rejected == [True, True, True, True, False]
    assert q == pytest.approx([0.025, 0.05, 0.05, 0.025, 0.5])
    rejected, _ = benjamini_hochberg([0.02, 0.03, 0.04, 0.9], 0.05)
    assert rejected == [False, False, False, False]  # 0.04 > 3 * .05 / 4, 0.02 > .0125
    assert benjamini_hochberg([], 0.05) == ([], [])


def test_bh_keeps_a_single_column_wobble_from_firing() -> None:
    """Fifteen columns at alpha 0.05 each fire often; one p of 0.01 is not a discovery."""
    rejected, _ = benjamini_hochberg([0.01] + [0.5] * 14, 0.05)
    assert not any(rejected)


def test_tiny_window_is_not_enough_data() -> None:
    result = check_drift(make_profile(3000, 0), make_profile(50, 1, shift=1.0), CONFIG)
    assert result.status == "not_enough_data"
    assert not result.should_retrain
    assert "50" in result.reason


def test_missing_feature_column_is_named() -> None:
    current = make_profile(500, 1).drop(columns=["share_buy"])
    with pytest.raises(ValueError, match="current.*share_buy"):
        check_drift(make_profile(500, 0), current, CONFIG)


def test_reference_without_predictions_checks_features_only() -> None:
    reference = make_profile(1000, 0).drop(columns=list(PREDICTION_COLUMNS))
    result = check_drift(reference, make_profile(1000, 1), CONFIG)
    assert {c.column for c in result.columns} == set(PROFILE_COLUMNS)


def test_legacy_profile_without_interest_columns_is_checked() -> None:
    reference = make_profile(1000, 0)[list(LEGACY_COLUMNS)]
    result = check_drift(reference, make_profile(1000, 1, shift=1.0), CONFIG)
    assert {c.column for c in result.columns} == set(LEGACY_COLUMNS)
    assert result.status == "drift"
