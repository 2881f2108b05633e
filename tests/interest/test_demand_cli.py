"""`interest demand`: a real (untrained, mixture-head) bundle forecasts a synthetic log."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from core.config import ProjectConfig
from core.dataset import prepare_dataset
from interest.cli import app
from modelkit.builder import build_model
from modelkit.bundle import save_bundle
from modelkit.model_config import ModelConfig
from synthlogs.config import SynthConfig
from synthlogs.generator import generate_events

runner = CliRunner()


@pytest.fixture(scope="module")
def log_and_bundle(tmp_path_factory) -> tuple[Path, Path, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("demand")
    events = generate_events(SynthConfig(n_users=40, n_days=12, seed=3)).events
    log = folder / "events.parquet"
    events.to_parquet(log)
    config = ProjectConfig.model_validate(
        {"features": {"max_events": 20, "top_categories": 6, "n_periods": 4, "horizon": "1D"}}
    )
    data = prepare_dataset(events, config, "synthetic")
    small = ModelConfig(
        next_cats_head="mixture", units=8, cat_embed_dim=8, period_units=4, head_units=8
    )
    bundle = save_bundle(
        folder / "bundle", build_model(small, data.spec), data.vocab, config.features, data.spec, {}
    )
    return log, bundle, events


def test_demand_prints_forecast_persistence_actual_and_wape(log_and_bundle, tmp_path, monkeypatch):
    log, bundle, events = log_and_bundle
    monkeypatch.setattr("modelkit.registry.download_bundle", lambda _c, _v, _d: bundle)
    cutoff = (pd.Timestamp(events["timestamp"].max()) - pd.Timedelta("2D")).floor("D")
    out = tmp_path / "demand.csv"
    args = ["demand", "--data", str(log), "--format", "canonical", "--cutoff", str(cutoff)]
    result = runner.invoke(app, [*args, "--version", "3", "--out", str(out), "--top", "4"])
    assert result.exit_code == 0, result.output
    assert "persistence" in result.output and "WAPE over all 7 categories" in result.output
    table = pd.read_csv(out)
    assert list(table.columns) == ["category", "forecast", "persistence", "actual"]
    assert len(table) == 7 and (table["forecast"] > 0).all() and table["actual"].sum() > 0


def test_demand_fails_cleanly_before_any_history(log_and_bundle, monkeypatch):
    log, bundle, _ = log_and_bundle
    monkeypatch.setattr("modelkit.registry.download_bundle", lambda _c, _v, _d: bundle)
    args = ["demand", "--data", str(log), "--format", "canonical", "--cutoff", "2000-01-01"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
