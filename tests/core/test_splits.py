"""Temporal splits: defaults, rolling train cutoffs, and leakage errors."""

from __future__ import annotations

import pandas as pd
import pytest

from core.config import FeatureConfig, SplitConfig
from core.splits import Splits, check_splits, label_span, make_splits

START = pd.Timestamp("2024-01-01", tz="UTC")
LAST = pd.Timestamp("2024-01-31 12:00", tz="UTC")


def _events() -> pd.DataFrame:
    return pd.DataFrame({"timestamp": pd.to_datetime([START, START + pd.Timedelta(days=5), LAST])})


def test_defaults_follow_the_documented_rule():
    splits = make_splits(_events(), SplitConfig(), FeatureConfig(horizon="3D"))
    day = pd.Timedelta(days=1)
    assert splits.test == LAST - 3 * day
    assert splits.val == splits.test - 3 * day
    assert splits.train == [splits.val - 3 * day - k * day for k in (2, 1, 0)]
    assert splits.horizon == 3 * day


def test_rolling_cutoff_count_and_step():
    split = SplitConfig(n_train_cutoffs=5, train_step="12h")
    splits = make_splits(_events(), split, FeatureConfig())
    assert len(splits.train) == 5
    assert {b - a for a, b in zip(splits.train, splits.train[1:], strict=False)} == {
        pd.Timedelta(hours=12)
    }


def test_explicit_cutoffs_are_used():
    split = SplitConfig(test_cutoff="2024-01-25T00:00:00Z", val_cutoff="2024-01-20")
    splits = make_splits(_events(), split, FeatureConfig())
    assert splits.test == pd.Timestamp("2024-01-25", tz="UTC")
    assert splits.val == pd.Timestamp("2024-01-20", tz="UTC")


def test_val_labels_overlapping_test_raise():
    split = SplitConfig(test_cutoff="2024-01-25", val_cutoff="2024-01-24")
    with pytest.raises(ValueError, match="leakage: validation"):
        make_splits(_events(), split, FeatureConfig(horizon="3D"))


def test_train_labels_overlapping_val_raise():
    splits = Splits(
        train=[pd.Timestamp("2024-01-19", tz="UTC")],
        val=pd.Timestamp("2024-01-20", tz="UTC"),
        test=pd.Timestamp("2024-01-25", tz="UTC"),
        horizon=pd.Timedelta(days=3),
    )
    with pytest.raises(ValueError, match="leakage: train"):
        check_splits(splits, START, FeatureConfig(horizon="3D"))


def test_trajectory_window_counts_as_label_window():
    config = FeatureConfig(horizon="1D", period="day", future_periods=4)
    assert label_span(config) == pd.Timedelta(days=4)
    split = SplitConfig(test_cutoff="2024-01-25", val_cutoff="2024-01-23")
    with pytest.raises(ValueError, match="leakage"):
        make_splits(_events(), split, config)


def test_cutoff_without_history_raises():
    with pytest.raises(ValueError, match="no history"):
        make_splits(_events(), SplitConfig(n_train_cutoffs=40), FeatureConfig())


def test_bad_inputs_name_the_field():
    with pytest.raises(ValueError, match="empty"):
        make_splits(_events().iloc[:0], SplitConfig(), FeatureConfig())
    with pytest.raises(ValueError, match="split.train_step"):
        make_splits(_events(), SplitConfig(train_step="soon"), FeatureConfig())


def test_overlapping_train_labels_reach_the_protocol_cutoff_on_a_short_log():
    # Taobao's shape: 9 days, the 3-day protocol at the 7th; strictly temporal, the last train
    # cutoff would sit at the log's first hour (no history).
    first = pd.Timestamp("2017-11-24T16:00", tz="UTC")
    events = pd.DataFrame({"timestamp": [first, pd.Timestamp("2017-12-03T15:00", tz="UTC")]})
    features = FeatureConfig(horizon="3D", future_periods=3)
    split = {"test_cutoff": "2017-11-30T16:00:00Z", "n_train_cutoffs": 4, "train_step": "12h"}
    with pytest.raises(ValueError, match="no history"):
        make_splits(events, SplitConfig(**split), features)
    splits = make_splits(events, SplitConfig(**split, overlap_train_labels=True), features)
    val = pd.Timestamp("2017-11-27T16:00", tz="UTC")
    assert splits.test == pd.Timestamp("2017-11-30T16:00", tz="UTC") and splits.val == val
    assert splits.train == [val - pd.Timedelta(hours=h) for h in (48, 36, 24, 12)]
    # Validation labels still never reach the test window.
    late = SplitConfig(**split, val_cutoff="2017-11-28T16:00:00Z", overlap_train_labels=True)
    with pytest.raises(ValueError, match="leakage: validation"):
        make_splits(events, late, features)
