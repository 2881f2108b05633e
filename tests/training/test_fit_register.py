"""``interest fit --register``: a shard fit becomes a registered version, the gate decides."""

from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import mlflow
import pytest
import yaml
from typer.testing import CliRunner

from core.config import ProjectConfig
from eventlogs.stream import prepare_streaming
from interest.cli import app
from synthlogs.generator import SynthConfig, generate_events

pytestmark = pytest.mark.slow
PLAN = {"units": 16, "cat_embed_dim": 8, "head_units": 16, "period_units": 8}


def _settings(tmp_path, min_improvement: float) -> dict:
    return {
        "data": {"format": "canonical"},
        "train": {"epochs": 1, "batch_size": 64, "seed": 7, "study_name": "shard-fit"},
        "features": {"max_events": 20, "top_categories": 8, "n_periods": 5},
        "split": {"n_train_cutoffs": 2},
        "paths": {"state_dir": str(tmp_path / "state")},
        "registry": {"min_improvement": min_improvement, "bootstrap_resamples": 200},
    }


def test_fit_registers_a_version_the_gate_promotes(tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv("INTEREST_TRACKING_URI", raising=False)
    events = generate_events(SynthConfig(n_users=150, n_days=14, seed=3)).events
    log = tmp_path / "events.parquet"
    events.to_parquet(log)
    settings = _settings(tmp_path, -1.0)  # any point gain promotes: the path is under test
    prepare_streaming(log, ProjectConfig.model_validate(settings), "fit", tmp_path / "shards")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(settings))
    (tmp_path / "plan.json").write_text(json.dumps(PLAN))
    args = ["--config", str(tmp_path / "config.yaml"), "fit", str(tmp_path / "shards")]
    args += ["--out", str(tmp_path / "model"), "--params", str(tmp_path / "plan.json")]
    result = CliRunner().invoke(app, [*args, "--register"])  # log from shards/report.json
    assert result.exit_code == 0, result.output
    assert "version 1: PROMOTED to champion" in result.output
    uri = f"sqlite:///{tmp_path / 'state' / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = client.get_model_version_by_alias("interest-evolution", "champion")
    assert str(version.version) == "1"
    run = client.get_run(version.run_id)
    assert run.data.tags["role"] == "fit" and run.data.params["units"] == "16"
    assert 0.0 < run.data.metrics["recall_at_10"] <= 1.0
    assert "baseline.popularity.recall_at_10" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(version.run_id)}
    assert {"bundle", "card"} <= artifacts
    # The registered model is the events-in pyfunc: raw events in, predictions out.
    model = mlflow.pyfunc.load_model("models:/interest-evolution@champion")
    assert model.metadata.get_input_schema() is not None
    # A second fit that must beat the champion by 50 % stays challenger.
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(_settings(tmp_path, 0.5)))
    again = CliRunner().invoke(app, [*args, "--register", "--data", str(log)])
    assert again.exit_code == 0, again.output
    assert "version 2: kept as challenger" in again.output
    assert str(client.get_model_version_by_alias("interest-evolution", "champion").version) == "1"


def test_register_needs_a_log(tmp_path):
    (tmp_path / "shards").mkdir()
    for name in ("train", "val", "test"):
        (tmp_path / "shards" / name).mkdir()
    (tmp_path / "shards" / "feature_spec.json").write_text("{}")
    args = ["fit", str(tmp_path / "shards"), "--out", str(tmp_path / "m"), "--register"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    assert "report.json" in result.output and "--data" in result.output
