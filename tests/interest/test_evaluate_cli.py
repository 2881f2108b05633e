"""`interest evaluate` and `interest promote --data`: real bundles re-scored on one split."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.config import load_config
from evaluation.baselines import BASELINE_NAMES
from interest.cli import app
from interest.exit_codes import exit_code

pytestmark = pytest.mark.slow
runner = CliRunner()
CONFIG = """
features: {max_events: 20, top_categories: 8, n_periods: 5}
split: {n_train_cutoffs: 1}
"""


def register_bundle(env: dict[str, str], seed: int, split_hash: str) -> None:
    """Register an untrained tiny model's bundle (its run holds no per-sample scores)."""
    import keras
    import mlflow

    from core.dataset import prepare_dataset
    from eventlogs.loaders import load_events
    from modelkit.builder import build_model
    from modelkit.bundle import save_bundle
    from modelkit.model_config import ModelConfig
    from modelkit.registry import registry_client
    from training.promotion import ensure_experiment
    from training.registry import register_run

    config = load_config(env=env)
    paths = config.paths.resolved()
    events = load_events(env["LOG"], config.data.model_copy(update={"format": "canonical"}))
    data = prepare_dataset(events.events, config, "synthetic")
    keras.utils.set_random_seed(seed)
    small = ModelConfig(units=8, cat_embed_dim=8, period_units=4, head_units=8)
    folder = paths.state_dir / f"bundle-{seed}"
    save_bundle(folder, build_model(small, data.spec), data.vocab, config.features, data.spec, {})
    mlflow.set_tracking_uri(paths.tracking_uri)
    exp = ensure_experiment(registry_client(config), "train", paths.artifact_root)
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_artifacts(str(folder), "bundle")
        mlflow.log_metric("recall_at_10", 0.5)
        mlflow.set_tag("data.split_hash", split_hash)
    register_run(config, run.info.run_id)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, empty_db: Path):
    import mlflow

    from eventlogs.loaders import write_events
    from synthlogs.generator import SynthConfig, generate_events

    root = tmp_path_factory.mktemp("evaluate-cli")
    (root / "state").mkdir()
    shutil.copy(empty_db, root / "state" / "mlflow.db")
    (root / "config.yaml").write_text(CONFIG)
    log = root / "events.parquet"
    write_events(generate_events(SynthConfig(n_users=80, n_days=12, seed=1)).events, log)
    values = {
        "INTEREST_STATE_DIR": str(root / "state"),
        "INTEREST_TRACKING_URI": f"sqlite:///{root / 'state' / 'mlflow.db'}",
        "INTEREST_CONFIG": str(root / "config.yaml"),
        "LOG": str(log),
    }
    previous = mlflow.get_tracking_uri()
    register_bundle(values, seed=1, split_hash="old-split-1")
    register_bundle(values, seed=2, split_hash="old-split-2")
    yield values
    mlflow.set_tracking_uri(previous)


def invoke(env: dict[str, str], *args: str):
    return runner.invoke(app, list(args), env=env)


def data_args(env: dict[str, str]) -> list[str]:
    return ["--data", env["LOG"], "--format", "canonical"]


def test_evaluate_prints_the_version_and_baselines_on_the_current_split(env):
    table = invoke(env, "evaluate", "1", *data_args(env))
    assert table.exit_code == 0, table.output
    assert "v1 on test cutoff" in table.stdout and "baseline personal_decay" in table.stdout
    assert "explore_recall_at_10" in table.stdout
    out = json.loads(invoke(env, "evaluate", "1", *data_args(env), "--json").stdout)
    assert out["version"] == "1" and out["n_users"] > 0
    assert set(out["baselines"]) == set(BASELINE_NAMES)
    assert {"recall_at_10", "repeat_recall_at_10", "explore_recall_at_10"} <= set(out["metrics"])
    missing = invoke(env, "evaluate", "9", *data_args(env))
    assert missing.exit_code == 1 and "no version 9" in missing.output


def test_promote_rescores_champion_and_challenger_on_the_same_split(env):
    first = invoke(env, "promote", "1")
    assert first.exit_code == exit_code("refused")
    assert "--data" in first.stdout  # stored scores lack per-sample values
    assert invoke(env, "promote", "1", "--force").exit_code == 0

    stored = invoke(env, "promote", "2")
    assert stored.exit_code == exit_code("refused")
    assert "split fingerprints differ" in stored.stdout and "--data" in stored.stdout

    rescored = invoke(env, "promote", "2", *data_args(env), "--json")
    assert rescored.exit_code in (exit_code("ok"), exit_code("refused")), rescored.output
    decision = json.loads(rescored.stdout)
    assert not any("fingerprints differ" in r for r in decision["reasons"])
    champion = decision["opponents"]["champion"]
    assert champion["label"] == "champion v1"
    assert champion["interval"]["n_users"] == decision["n_users"] > 0
    assert decision["opponents"]["baseline"]["interval"] is not None
    assert set(decision["recall_split"]) >= {"challenger v2", "champion v1"}
