"""``interest data generate`` picks the streaming writer for big Parquet runs."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from interest.cli import app
from interest.synth_cmd import truth_path
from synthlogs.generator import SynthConfig, generate_events
from synthlogs.stream import write_synthetic_parquet

ARGS = ["data", "generate", "--users", "120", "--days", "4", "--seed", "2"]


def test_parquet_with_more_users_than_a_shard_streams(tmp_path):
    out = tmp_path / "big.parquet"
    result = CliRunner().invoke(app, [*ARGS, "--out", str(out), "--users-per-shard", "50"])
    assert result.exit_code == 0, result.output
    assert "shards      3" in result.output and "behaviours" in result.output
    expected = write_synthetic_parquet(
        SynthConfig(n_users=120, n_days=4, seed=2), tmp_path / "ref.parquet", users_per_shard=50
    )
    assert f"events      {expected.events:,}" in result.output
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(expected.path))
    truth = pd.read_parquet(truth_path(out))
    assert len(truth) == 120 and "date" not in truth.columns  # one row per user


def test_csv_and_small_runs_stay_in_memory(tmp_path):
    for name in ("small.parquet", "big.csv"):
        out = tmp_path / name
        args = [*ARGS, "--out", str(out), "--users-per-shard", "500" if "small" in name else "50"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert "shards" not in result.output
        assert "date" in pd.read_parquet(truth_path(out)).columns  # per (user, day)
    expected = generate_events(SynthConfig(n_users=120, n_days=4, seed=2)).events
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "small.parquet"), expected)
    assert len(pd.read_csv(tmp_path / "big.csv")) == len(expected)


def test_help_says_csv_stays_in_memory():
    result = CliRunner().invoke(app, ["data", "generate", "--help"])
    assert "--users-per-shard" in result.output and "CSV" in result.output
