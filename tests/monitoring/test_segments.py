"""Segments of the drift check: a shift confined to one segment is found and attributed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.config import MonitoringConfig
from monitoring.drift import check_drift
from monitoring.segments import Segmenter, history_hours, segment_pairs
from tests.monitoring.test_drift import CATS, make_profile

CONFIG = MonitoringConfig(min_rows=300, segment_min_rows=150)


def shift_segment(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Raise p_buy for the users whose top category is the most frequent one (~9%)."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    hit = (out["top_category"] == CATS[0]).to_numpy()
    out.loc[hit, "p_buy"] = rng.beta(2.5, 10, int(hit.sum()))
    return out


def test_segment_rules_follow_the_reference() -> None:
    reference = make_profile(3000, 0)
    rules = Segmenter.from_reference(reference, CONFIG)
    assert CATS[0] in rules.categories and len(rules.categories) == 5
    labels = rules.label(reference)
    shares = labels["activity"].value_counts(normalize=True)
    assert set(shares.index) == {"low", "mid", "high"} and shares.min() > 0.2
    frame = pd.DataFrame(
        {
            "seq_len": [1.0, 5.0],
            "mean_gap_hours": [0.0, 10.0],
            "hours_since_last": [3.0, 2.0],
            "top_category": ["", "zz"],
        }
    )
    assert history_hours(frame).tolist() == [3.0, 42.0]
    labels = rules.label(frame)
    assert labels["user"].tolist() == ["new", "returning"]
    assert labels["category"].tolist() == ["none", "other"]
    off = MonitoringConfig(min_rows=300, segment_min_rows=0)
    assert list(segment_pairs(reference, reference, off)) == []


def test_segment_only_shift_is_attributed_to_its_segment() -> None:
    reference = make_profile(4000, 0)
    current = shift_segment(make_profile(4000, 1), 2)
    whole = check_drift(reference, current, MonitoringConfig(min_rows=300, segment_min_rows=0))
    assert whole.status == "ok"  # diluted in the whole window
    result = check_drift(reference, current, CONFIG)
    assert result.columns and [c.column for c in result.drifted_columns] == []
    assert result.status == "drift" and result.should_retrain
    assert result.drifted_segments == [f"category={CATS[0]}"]
    drifted = [c for c in result.segments if c.drifted]
    assert {(c.segment, c.column) for c in drifted} == {(f"category={CATS[0]}", "p_buy")}
    assert f"segment category={CATS[0]} drove it: p_buy (ks p=" in result.reason
    assert result.to_dict()["drifted_segments"] == [f"category={CATS[0]}"]


def test_no_shift_fires_in_no_segment() -> None:
    result = check_drift(make_profile(4000, 0), make_profile(4000, 3), CONFIG)
    assert result.status == "ok" and result.drifted_segments == []
    assert {c.segment.split("=")[0] for c in result.segments} == {"user", "activity", "category"}
