"""Sequence features on a hand-written 3-user log, with exact expected arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core import encoding, features
from core.config import FeatureConfig
from core.features import build_features, encode_events, feature_spec
from core.schema import conform
from core.vocab import Vocabulary

CUTOFF = pd.Timestamp("2024-01-03", tz="UTC")
CONFIG = FeatureConfig(
    max_events=3, period="day", n_periods=2, top_categories=2, horizon="2D", future_periods=2
)
VOCAB = Vocabulary(["x", "y", "z"], top_categories=2)  # x=2, y=3, z=4; buckets x, y, other
L2 = np.log1p(1.0)
ROWS = [  # user, category, behaviour, time (UTC)
    ("a", "z", "view", "2023-12-31 08:00"),  # 4th most recent: truncated, too old for periods
    ("a", "x", "view", "2024-01-01 10:00"),
    ("a", "y", "cart", "2024-01-02 12:30"),
    ("a", "x", "view", "2024-01-02 13:30"),
    ("a", "y", "buy", "2024-01-03 05:00"),  # horizon, future period 0
    ("a", "x", "view", "2024-01-04 01:00"),  # horizon, future period 1
    ("b", "z", "view", "2023-12-31 22:00"),  # in the sequence, outside the 2 periods
    ("b", "x", "fav", "2024-01-02 23:00"),  # b has nothing in the horizon: churn
    ("c", "y", "view", "2024-01-05 00:00"),  # c has no history: no sample
]


def _frame(rows: list[tuple[str, str, str, str]] = ROWS) -> pd.DataFrame:
    user, cat, beh, ts = zip(*rows, strict=True)
    return conform(
        pd.DataFrame(
            {
                "user_id": user,
                "item_id": [f"i-{c}" for c in cat],
                "category_id": cat,
                "behavior": beh,
                "timestamp": pd.to_datetime(list(ts), utc=True),
            }
        )
    )


@pytest.fixture()
def arrays():
    return build_features(_frame(), [CUTOFF], VOCAB, CONFIG)


def test_one_sample_per_user_with_history(arrays):
    assert arrays.user_id.tolist() == ["a", "b"]
    assert (arrays.cutoff == np.datetime64("2024-01-03T00:00", "ns")).all()


def test_sequence_is_left_padded_most_recent_last(arrays):
    np.testing.assert_array_equal(arrays.cat, [[2, 3, 2], [0, 4, 2]])
    np.testing.assert_array_equal(arrays.beh, [[1, 3, 1], [0, 1, 2]])
    np.testing.assert_array_equal(arrays.hour, [[11, 13, 14], [0, 23, 24]])
    expected_gap = np.log1p([[0, 26.5, 1.0], [0, 0, 49.0]])
    np.testing.assert_allclose(arrays.gap, expected_gap, rtol=1e-6)
    expected_age = np.log1p([[38.0, 11.5, 10.5], [0, 50.0, 1.0]])
    np.testing.assert_allclose(arrays.age, expected_age, rtol=1e-6)
    assert arrays.cat.dtype == np.int32 and arrays.gap.dtype == np.float32


def test_period_features_oldest_first(arrays):
    expected_dist = [[[1, 0, 0], [0.5, 0.5, 0]], [[0, 0, 0], [1, 0, 0]]]
    np.testing.assert_allclose(arrays.period_dist, expected_dist)
    expected_counts = [[[L2, 0, 0, 0], [L2, 0, L2, 0]], [[0, 0, 0, 0], [0, L2, 0, 0]]]
    np.testing.assert_allclose(arrays.period_counts, expected_counts, rtol=1e-6)


def test_labels(arrays):
    np.testing.assert_array_equal(arrays.next_cats, [[0, 0, 1, 1, 0], [0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(arrays.buy, [1, 0])
    np.testing.assert_array_equal(arrays.churn, [0, 1])
    expected_traj = [[[0, 1, 0], [1, 0, 0]], [[0, 0, 0], [0, 0, 0]]]
    np.testing.assert_array_equal(arrays.trajectory, expected_traj)


def test_history_cap_limits_sequence_and_periods():
    config = CONFIG.model_copy(update={"history": "1D"})
    out = build_features(_frame(), [CUTOFF], VOCAB, config)
    np.testing.assert_array_equal(out.cat, [[0, 3, 2], [0, 0, 2]])
    np.testing.assert_allclose(out.period_dist[0], [[0, 0, 0], [0.5, 0.5, 0]])


def test_without_labels_for_serving():
    out = build_features(_frame(), [CUTOFF], VOCAB, CONFIG, with_labels=False)
    assert out.next_cats is None and out.trajectory is None
    with pytest.raises(ValueError, match="without labels"):
        out.labels()


def test_single_user_request_equals_batch_row(arrays):
    frame = _frame()
    request = frame[frame["user_id"] == "a"].sample(frac=1.0, random_state=3)
    single = build_features(request, [CUTOFF], VOCAB, CONFIG, with_labels=False)
    for name, value in single.inputs().items():
        np.testing.assert_array_equal(value[0], getattr(arrays, name)[0], err_msg=name)


def test_small_and_large_paths_and_chunking_agree(monkeypatch):
    rng = np.random.default_rng(0)
    n = 3000
    start = pd.Timestamp("2024-01-01", tz="UTC")
    frame = conform(
        pd.DataFrame(
            {
                "user_id": rng.integers(0, 40, n).astype(str),
                "item_id": "i",
                "category_id": rng.choice(["x", "y", "z", "w"], n),
                "behavior": rng.choice(["view", "fav", "cart", "buy", "search"], n),
                "timestamp": start + pd.to_timedelta(rng.integers(0, 10 * 86400, n), unit="s"),
            }
        )
    )
    cutoffs = [start + pd.Timedelta(days=d) for d in (4, 6)]
    small = build_features(frame, cutoffs, VOCAB, CONFIG)
    monkeypatch.setattr(encoding, "SMALL_EVENTS", 0)
    monkeypatch.setattr(features, "CHUNK_SAMPLES", 7)
    large = build_features(frame, cutoffs, VOCAB, CONFIG)
    assert len(small) > 40
    for name in ("user_id", "cutoff", *small.inputs(), *small.labels()):
        np.testing.assert_array_equal(getattr(small, name), getattr(large, name), err_msg=name)
    # period and trajectory rows are distributions or empty
    sums = small.period_dist.sum(-1)
    assert np.all(np.isclose(sums, 1) | (sums == 0))


def test_unknown_behavior_and_vocab_mismatch_raise():
    bad = _frame()
    bad.loc[0, "behavior"] = "teleport"
    with pytest.raises(ValueError, match="teleport"):
        build_features(bad, [CUTOFF], VOCAB, CONFIG)
    encoded = encode_events(_frame(), VOCAB)
    with pytest.raises(ValueError, match="different vocabulary"):
        build_features(encoded, [CUTOFF], Vocabulary(["x"], 2), CONFIG)


@pytest.mark.parametrize("small", [True, False])
def test_missing_user_id_raises(monkeypatch, small):
    if not small:
        monkeypatch.setattr(encoding, "SMALL_EVENTS", 0)
    bad = _frame()
    bad.loc[1, "user_id"] = pd.NA
    with pytest.raises(ValueError, match="'user_id' has 1 missing"):
        build_features(bad, [CUTOFF], VOCAB, CONFIG)


def test_no_history_gives_empty_arrays_with_shapes():
    out = build_features(_frame(), [pd.Timestamp("2020-01-01", tz="UTC")], VOCAB, CONFIG)
    assert len(out) == 0
    assert out.period_dist.shape == (0, 2, 3) and out.next_cats.shape == (0, VOCAB.size)


def test_feature_spec_matches_arrays(arrays):
    spec = feature_spec(VOCAB, CONFIG)
    assert spec.n_categories == arrays.next_cats.shape[1] == 5
    assert spec.n_buckets == arrays.period_dist.shape[2] == 3
    assert spec.n_core_behaviors == arrays.period_counts.shape[2]
    assert spec.vocab_hash == VOCAB.hash
