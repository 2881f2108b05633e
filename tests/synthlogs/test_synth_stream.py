"""Tests for the sharded, streaming Parquet writer of the synthetic generator."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from core.config import DataConfig
from core.schema import EVENT_COLUMNS
from eventlogs.loaders import load_events
from synthlogs.generator import SynthConfig, draw_world, generate_events, generate_shard
from synthlogs.stream import SynthStreamSummary, truth_file, write_synthetic_parquet

CONFIG = SynthConfig(
    n_users=300, n_days=8, seed=5, n_items=1_500, shift_at="2024-01-05", shift_fraction=0.3
)
SHARD = 70  # five shards, the last one short


@pytest.fixture(scope="module")
def sharded(tmp_path_factory) -> SynthStreamSummary:
    path = tmp_path_factory.mktemp("stream") / "log.parquet"
    return write_synthetic_parquet(CONFIG, path, users_per_shard=SHARD, row_group_rows=1_000)


@pytest.fixture(scope="module")
def frame(sharded) -> pd.DataFrame:
    return pd.read_parquet(sharded.path)


def test_same_config_and_shards_give_identical_files(sharded, tmp_path):
    path = tmp_path / "again.parquet"
    again = write_synthetic_parquet(CONFIG, path, users_per_shard=SHARD, row_group_rows=1_000)
    assert again.path.read_bytes() == sharded.path.read_bytes()
    assert truth_file(again.path).read_bytes() == truth_file(sharded.path).read_bytes()


def test_ids_are_global_and_unique_across_shards(sharded, frame):
    truth = pd.read_parquet(sharded.truth_path)
    assert truth["user_id"].tolist() == CONFIG.user_ids().tolist()
    assert set(frame["user_id"]) <= set(truth["user_id"])
    # A session id reused by two shards would join two users.
    assert frame.groupby("session_id")["user_id"].nunique().max() == 1
    assert frame["session_id"].str.fullmatch(r"s\d{8}").all()
    n_sessions = frame["session_id"].nunique()
    assert sorted(frame["session_id"].unique())[-1] == f"s{n_sessions - 1:08d}"


def test_world_is_shared_across_shards(frame):
    shard = frame["user_id"].str[1:].astype(int) // SHARD
    assert shard.nunique() == math.ceil(CONFIG.n_users / SHARD)
    world = draw_world(CONFIG)
    n_cats = CONFIG.n_groups * CONFIG.cats_per_group
    item_category = np.repeat(np.arange(n_cats), world.catalog.sizes)
    index = pd.Series(np.arange(CONFIG.n_items), index=world.item_names)[frame["item_id"]]
    categories = np.array(world.interests.categories)[item_category[index]]
    np.testing.assert_array_equal(frame["category_id"].to_numpy(), categories)
    np.testing.assert_array_equal(frame["price"].to_numpy(), world.prices[index])
    assert frame.groupby(shard)["item_id"].nunique().min() > 100


def test_loads_as_canonical_and_sorted_within_shards(sharded):
    events = load_events(sharded.path, DataConfig(format="canonical")).events
    assert tuple(events.columns) == EVENT_COLUMNS
    assert len(events) == sharded.events
    shard = events["user_id"].str[1:].astype(int) // SHARD
    assert (shard.diff().dropna() >= 0).all()  # shards follow each other
    assert events.groupby(shard)["timestamp"].apply(lambda t: t.is_monotonic_increasing).all()
    assert not events["timestamp"].is_monotonic_increasing  # documented: not globally sorted


def test_summary_matches_rows(sharded, frame):
    assert sharded.events == len(frame) == pq.ParquetFile(sharded.path).metadata.num_rows
    assert sharded.shards == 5 and sharded.users == CONFIG.n_users
    assert sharded.active_users == frame["user_id"].nunique()
    assert sharded.categories == frame["category_id"].nunique()
    assert sharded.first == frame["timestamp"].min() and sharded.last == frame["timestamp"].max()
    shares = frame["behavior"].value_counts(normalize=True)
    for behavior, share in sharded.behavior_shares.items():
        assert share == pytest.approx(shares.get(behavior, 0.0))
    assert sharded.bytes == sharded.path.stat().st_size
    truth = pd.read_parquet(sharded.truth_path)
    assert sharded.shifted == truth["shifted"].sum() > 0
    assert max(g.num_rows for g in _row_groups(sharded.path)) <= 1_000


def _row_groups(path):
    meta = pq.ParquetFile(path).metadata
    return [meta.row_group(i) for i in range(meta.num_row_groups)]


def test_one_shard_is_generate_shard_with_the_in_memory_schema(tmp_path):
    path = tmp_path / "one.parquet"
    summary = write_synthetic_parquet(CONFIG, path, users_per_shard=CONFIG.n_users)
    expected = generate_shard(CONFIG, draw_world(CONFIG), 0, 0, CONFIG.n_users)
    assert summary.shards == 1
    pd.testing.assert_frame_equal(pd.read_parquet(path), expected.events)
    pd.testing.assert_frame_equal(pd.read_parquet(truth_file(path)), expected.truth.users)
    generate_events(CONFIG).events.to_parquet(tmp_path / "ref.parquet", index=False)
    assert pq.read_schema(path).equals(pq.read_schema(tmp_path / "ref.parquet"), True)


def test_shards_match_generate_events_in_distribution(tmp_path):
    config = SynthConfig(n_users=16_000, n_days=2, seed=1, n_items=2_000)
    one_go = generate_events(config)
    many = write_synthetic_parquet(config, tmp_path / "b.parquet", users_per_shard=4_000)
    assert many.shards == 4
    assert many.events == pytest.approx(len(one_go.events), rel=0.06)
    assert many.active_users == pytest.approx(one_go.events["user_id"].nunique(), rel=0.02)
    for behavior, share in one_go.behavior_shares().items():
        assert many.behavior_shares[behavior] == pytest.approx(share, abs=0.005)
    per_user = pd.read_parquet(many.path, columns=["user_id"])["user_id"].value_counts()
    expected = one_go.events["user_id"].value_counts()
    assert per_user.median() == pytest.approx(expected.median(), rel=0.1)


def test_without_truth_writes_no_truth_file(tmp_path):
    summary = write_synthetic_parquet(
        SynthConfig(n_users=20, n_days=3), tmp_path / "x.parquet", truth=False
    )
    assert summary.truth_path is None and not truth_file(tmp_path / "x.parquet").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.parquet"]


@pytest.mark.parametrize(
    "name,kwargs,match",
    [
        ("x.csv", {}, "suffix"),
        ("x.parquet", {"users_per_shard": 0}, "users_per_shard"),
        ("x.parquet", {"row_group_rows": 0}, "row_group_rows"),
    ],
)
def test_bad_arguments_name_the_problem(tmp_path, name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        write_synthetic_parquet(CONFIG, tmp_path / name, **kwargs)
