"""Category demand forecast: the aggregation against a hand-computed 3-user example."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from core.config import FeatureConfig
from core.schema import conform
from core.vocab import Vocabulary
from evaluation.demand import aggregate_demand, demand_wapes, expected_activity, wape
from pipelines.demand import forecast_demand

CUTOFF = pd.Timestamp("2024-01-04", tz="UTC")
# Buckets: a -> 0, b -> 1, c -> 2 ("other": top_categories=2).
VOCAB = Vocabulary(["a", "b", "c"], top_categories=2)
FEATURES = FeatureConfig(period="day", n_periods=3, top_categories=2, horizon="1D")
# u1: Jan 1 two views of a, Jan 3 a view of a and a cart of b -> 4 events, 2 active days.
# u2: Jan 3 three views of b -> 3 per active day. u3: Jan 2 a buy of c, Jan 3 a view of c
# and a search (not a core behaviour) -> 1 per active day.
# Next day: u1 views a twice, u2 views b once, new user u4 views c once.
HISTORY = [
    ("u1", "a", "view", "2024-01-01 10:00"),
    ("u1", "a", "view", "2024-01-01 11:00"),
    ("u1", "a", "view", "2024-01-03 09:00"),
    ("u1", "b", "cart", "2024-01-03 09:30"),
    ("u2", "b", "view", "2024-01-03 12:00"),
    ("u2", "b", "view", "2024-01-03 12:10"),
    ("u2", "b", "view", "2024-01-03 12:20"),
    ("u3", "c", "buy", "2024-01-02 08:00"),
    ("u3", "c", "view", "2024-01-03 08:00"),
    ("u3", "c", "search", "2024-01-03 08:05"),
]
NEXT_DAY = [
    ("u1", "a", "view", "2024-01-04 10:00"),
    ("u1", "a", "view", "2024-01-04 11:00"),
    ("u2", "b", "view", "2024-01-04 12:00"),
    ("u4", "c", "view", "2024-01-04 23:30"),
]


def _events(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["user_id", "category_id", "behavior", "timestamp"])
    frame["item_id"] = "i" + frame.index.astype(str)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return conform(frame)


class _StubBundle(SimpleNamespace):
    """Fixed heads for u1, u2, u3 (samples come sorted by user id)."""

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        assert len(inputs["cat"]) == 3
        shares = np.array([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        trajectory = np.stack([shares, shares], axis=1)  # (3, K=2, C1=3)
        return {"churn": np.array([0.5, 0.0, 0.2]), "trajectory": trajectory}


def _bundle() -> _StubBundle:
    return _StubBundle(vocab=VOCAB, feature_config=FEATURES, spec=SimpleNamespace(n_buckets=3))


def test_aggregation_matches_the_hand_computed_example():
    counts = np.zeros((3, 3, 4))
    counts[0, 0, 0], counts[0, 2, 0], counts[0, 2, 2] = 2, 1, 1
    counts[1, 2, 0] = 3
    counts[2, 1, 3], counts[2, 2, 0] = 1, 1
    activity = expected_activity(np.log1p(counts))
    np.testing.assert_allclose(activity, [2.0, 3.0, 1.0])
    shares = np.array([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    demand = aggregate_demand(np.array([0.5, 1.0, 0.8]), activity, shares)
    # a: 0.5*2*0.5; b: 0.5*2*0.5 + 1*3*1; c: 0.8*1*1
    np.testing.assert_allclose(demand, [0.5, 3.5, 0.8])


def test_forecast_persistence_actual_and_wape():
    table = forecast_demand(_bundle(), _events(HISTORY + NEXT_DAY), CUTOFF, level="model")
    by_cat = table.set_index("category")
    np.testing.assert_allclose(by_cat.loc[["a", "b", "other"], "forecast"], [0.5, 3.5, 0.8])
    # Last day before the cutoff, core behaviours only: a 1, b 1 + 3, c 1 (search left out).
    np.testing.assert_allclose(by_cat.loc[["a", "b", "other"], "persistence"], [1, 4, 1])
    # The next day, new user u4 included.
    np.testing.assert_allclose(by_cat.loc[["a", "b", "other"], "actual"], [2, 1, 1])
    assert list(table["category"]) == ["b", "other", "a"]  # largest forecast first
    assert wape(table["forecast"], table["actual"]) == pytest.approx((1.5 + 2.5 + 0.2) / 4)
    assert wape(table["persistence"], table["actual"]) == pytest.approx((1 + 3 + 0) / 4)
    wapes = demand_wapes(table)
    assert wapes["model_named"] == pytest.approx((1.5 + 2.5) / 3)
    assert wapes["persistence_named"] == pytest.approx((1 + 3) / 3)


def test_persistence_level_keeps_the_mix_and_takes_last_periods_total():
    table = forecast_demand(_bundle(), _events(HISTORY + NEXT_DAY), CUTOFF)
    by_cat = table.set_index("category")
    # Model mix 0.5 : 3.5 : 0.8 (sum 4.8) scaled to last day's 6 core events.
    np.testing.assert_allclose(
        by_cat.loc[["a", "b", "other"], "forecast"], np.array([0.5, 3.5, 0.8]) * 6 / 4.8
    )
    assert table["forecast"].sum() == pytest.approx(table["persistence"].sum())
    with pytest.raises(ValueError, match="demand level"):
        forecast_demand(_bundle(), _events(HISTORY), CUTOFF, level="median")


def test_actual_is_missing_when_the_log_stops_at_the_cutoff():
    table = forecast_demand(_bundle(), _events(HISTORY), CUTOFF)
    assert table["actual"].isna().all()
    assert np.isnan(wape(table["forecast"], table["actual"]))
    with pytest.raises(ValueError, match="no user"):
        forecast_demand(_bundle(), _events(HISTORY), pd.Timestamp("2023-12-01"))
