"""Tests for the synthetic event generator and its CLI command."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from core.schema import EVENT_COLUMNS, conform
from interest.cli import app
from interest.synth_cmd import truth_path
from synthlogs.generator import SynthConfig, SynthResult, config_for_events, generate_events

SMALL = SynthConfig(n_users=300, n_days=20, seed=3, n_items=3_000)
SHIFTED = SynthConfig(
    n_users=600, n_days=20, seed=5, n_items=3_000, shift_at="2024-01-11", shift_fraction=0.3
)


@pytest.fixture(scope="module")
def small() -> SynthResult:
    return generate_events(SMALL)


@pytest.fixture(scope="module")
def shifted() -> SynthResult:
    return generate_events(SHIFTED)


def test_same_config_gives_identical_frames(small):
    again = generate_events(SMALL)
    pd.testing.assert_frame_equal(small.events, again.events)
    np.testing.assert_array_equal(small.truth.interests, again.truth.interests)
    pd.testing.assert_frame_equal(small.truth.users, again.truth.users)


def test_seed_changes_output(small):
    other = generate_events(SynthConfig(n_users=300, n_days=20, seed=4, n_items=3_000))
    assert not small.events["item_id"].head(500).equals(other.events["item_id"].head(500))


def test_frame_is_canonical_and_sorted(small):
    events = small.events
    assert tuple(events.columns) == EVENT_COLUMNS
    pd.testing.assert_frame_equal(conform(events), events)
    assert events["timestamp"].is_monotonic_increasing
    assert str(events["timestamp"].dt.tz) == "UTC"
    assert events["category_id"].str.fullmatch(r"g\d\d-c\d\d").all()
    assert set(events["behavior"].unique()) == {"view", "fav", "cart", "buy"}
    assert events["price"].gt(0).all()


def test_arrow_string_storage_matches_conform():
    with pd.option_context("mode.string_storage", "pyarrow"):
        events = generate_events(SynthConfig(n_users=50, n_days=5, n_items=500)).events
        pd.testing.assert_frame_equal(conform(events), events)


def test_funnel_buys_follow_views(small):
    events = small.events.reset_index(drop=True)
    counts = events["behavior"].value_counts()
    assert counts["view"] > 10 * counts["buy"]
    assert counts["buy"] <= 1.5 * counts["cart"]
    key = events["user_id"] + "|" + events["item_id"]
    first_view = pd.Series(
        events.index[events["behavior"] == "view"], index=key[events["behavior"] == "view"]
    )
    first_view = first_view.groupby(level=0).min()
    buys = events.index[events["behavior"] == "buy"]
    seen = first_view.reindex(key[buys]).to_numpy() < buys.to_numpy()
    assert seen.mean() > 0.8


def test_sessions_are_short_bursts(small):
    stamps = small.events.groupby("session_id")["timestamp"]
    span = stamps.max() - stamps.min()
    assert span.median() < pd.Timedelta(minutes=30)
    assert small.events.groupby("session_id")["user_id"].nunique().max() == 1


def test_item_popularity_is_heavy_tailed(small):
    counts = small.events["item_id"].value_counts()
    top = counts.iloc[: max(1, len(counts) // 10)].sum() / counts.sum()
    assert top > 0.4


def test_activity_is_heavy_tailed(small):
    per_user = small.events["user_id"].value_counts()
    assert per_user.max() > 5 * per_user.median()


def _trend_share(result: SynthResult, shifted_users: bool, after: bool) -> float:
    events, truth = result.events, result.truth
    moved = set(truth.users.loc[truth.users["shifted"], "user_id"])
    is_moved = events["user_id"].isin(moved)
    shift_at = pd.Timestamp(result.config.shift_at, tz="UTC")
    rows = events[(is_moved == shifted_users) & ((events["timestamp"] >= shift_at) == after)]
    return rows["category_id"].str[:3].isin(truth.shift_groups).mean()


def test_shift_moves_shifted_users_only_after_shift_at(shifted):
    assert shifted.truth.users["shifted"].mean() == pytest.approx(0.3, abs=0.05)
    before = _trend_share(shifted, shifted_users=True, after=False)
    after = _trend_share(shifted, shifted_users=True, after=True)
    stayed_before = _trend_share(shifted, shifted_users=False, after=False)
    stayed_after = _trend_share(shifted, shifted_users=False, after=True)
    assert after > before + 0.3
    assert abs(before - stayed_before) < 0.1
    assert abs(stayed_after - stayed_before) < 0.1


def test_no_shift_without_shift_at(small):
    assert not small.truth.users["shifted"].any()
    assert small.truth.shift_groups == []


def test_behavior_shift_lowers_conversion():
    config = SynthConfig(
        n_users=400, n_days=10, seed=2, n_items=2_000, shift_at="2024-01-01",
        shift_fraction=1.0, behavior_shift=3.0,
    )  # fmt: skip
    shares = generate_events(config).behavior_shares()
    base = generate_events(SynthConfig(n_users=400, n_days=10, seed=2, n_items=2_000))
    assert (
        shares["view"] / shares["buy"]
        > 1.5 * base.behavior_shares()["view"] / base.behavior_shares()["buy"]
    )


def test_churned_users_stop_and_joiners_start_late(small):
    users = small.truth.users.set_index("user_id")
    assert users["churn_day"].notna().sum() > 10
    last = small.events.groupby("user_id")["timestamp"].max()
    first = small.events.groupby("user_id")["timestamp"].min()
    churn = users["churn_date"].reindex(last.index)
    assert not (last[churn.notna()] >= churn[churn.notna()]).any()
    assert (first >= users["join_date"].reindex(first.index)).all()


def test_truth_shapes_and_distributions(small):
    truth = small.truth
    assert truth.interests.shape == (300, 20, 10)
    np.testing.assert_allclose(truth.interests.sum(axis=2), 1.0, atol=1e-4)
    np.testing.assert_allclose(truth.category_mix(5).sum(axis=1), 1.0, atol=1e-4)
    frame = truth.to_frame()
    assert len(frame) == 300 * 20
    assert {"user_id", "date", "shifted", "churn_date", "g00"} <= set(frame.columns)


def test_interests_predict_categories(small):
    """Users' most-liked group in the truth is their most-visited group in the events."""
    events, truth = small.events, small.truth
    observed = events.groupby("user_id")["category_id"].agg(lambda c: c.str[:3].mode().iloc[0])
    latent = pd.Series(
        np.array(truth.groups)[truth.interests.mean(axis=1).argmax(axis=1)],
        index=truth.users["user_id"],
    )
    busy = events["user_id"].value_counts()
    busy = busy.index[busy >= 30]
    assert (observed[busy] == latent[busy]).mean() > 0.6


@pytest.mark.parametrize("target", [30_000, 150_000])
def test_for_events_sizes_close_to_target(target):
    config = config_for_events(target, seed=11, n_days=14)
    assert config.n_days == 14
    assert len(generate_events(config).events) == pytest.approx(target, rel=0.15)


@pytest.mark.parametrize(
    "field,value", [("shift_fraction", 1.5), ("n_users", 0), ("n_items", 5), ("start", "nope")]
)
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        SynthConfig(**{field: value})


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_cli_writes_events_and_truth(tmp_path, suffix):
    out = tmp_path / f"log{suffix}"
    args = [
        "data",
        "generate",
        "--out",
        str(out),
        "--users",
        "40",
        "--days",
        "5",
        "--shift-at",
        "2024-01-03",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "events" in result.output and "behaviours" in result.output
    frame = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert list(frame.columns) == list(EVENT_COLUMNS)
    expected = generate_events(SynthConfig(n_users=40, n_days=5, shift_at="2024-01-03")).events
    assert len(frame) == len(expected)
    pd.testing.assert_series_equal(
        pd.to_datetime(frame["timestamp"], utc=True), expected["timestamp"]
    )
    assert len(pd.read_parquet(truth_path(out))) == 40 * 5


def test_cli_rejects_unknown_suffix(tmp_path):
    result = CliRunner().invoke(app, ["data", "generate", "--out", str(tmp_path / "log.txt")])
    assert result.exit_code != 0
    assert "suffix" in result.output
