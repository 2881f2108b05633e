"""Segments of the drift check: a shift confined to one segment is found and attributed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.config import MonitoringConfig
from monitoring.drift import check_drift, monitored_columns
from monitoring.segments import Segmenter, history_hours, segment_pairs
from monitoring.stats import cached_stats
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


def test_cached_segment_statistics_decide_as_the_reference_rows_do(tmp_path: Path) -> None:
    reference = make_profile(4000, 0)
    current = shift_segment(make_profile(4000, 1), 2)
    columns = monitored_columns(reference, current)
    path = tmp_path / "reference.parquet"
    reference.to_parquet(path)
    stats = cached_stats(path, reference, *columns, segments=CONFIG)
    assert f"category={CATS[0]}" in stats.segments and stats.segmenter(CONFIG) is not None
    uncached = check_drift(reference, current, CONFIG)
    cached = check_drift(reference, current, CONFIG, stats=stats)
    assert cached.to_dict() == uncached.to_dict() and cached.drifted_segments
    # Read back from the file, the statistics are used as they are: other reference rows
    # given beside them change nothing (the rows are neither re-segmented nor re-binned).
    reread = cached_stats(path, make_profile(4000, 7), *columns, segments=CONFIG)
    assert reread == stats
    other_rows = check_drift(make_profile(4000, 7), current, CONFIG, stats=reread)
    assert other_rows.to_dict() == {**uncached.to_dict(), "n_reference": 4000}
    assert check_drift(make_profile(4000, 7), current, CONFIG).to_dict() != uncached.to_dict()


def test_segment_cache_is_recut_when_the_segment_rules_change(tmp_path: Path) -> None:
    reference = make_profile(2000, 0)
    columns = monitored_columns(reference, reference)
    path = tmp_path / "reference.parquet"
    reference.to_parquet(path)
    first = cached_stats(path, reference, *columns, segments=CONFIG)
    fewer = CONFIG.model_copy(update={"segment_categories": 2})
    assert first.segmenter(fewer) is None
    recut = cached_stats(path, reference, *columns, segments=fewer)
    categories = {s for s in recut.segments if s.startswith("category=")}
    assert len(categories) == 2 + 1  # the two most frequent and "other"
    assert cached_stats(path, reference, *columns, segments=fewer) == recut  # now cached
