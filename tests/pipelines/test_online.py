"""Promotion on online evidence: a shadow's realised per-request scores vs the champion's.

Real MLflow (SQLite) registry; the evidence is what ``interest monitor performance`` saves
(:func:`monitoring.online.save_evidence`), built here from per-request scores.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from core.config import PathsConfig, ProjectConfig, RegistryConfig
from evaluation.samples import SampleScores
from modelkit.registry import registered_champion
from monitoring.online import compare_shadows, load_evidence, save_evidence
from pipelines.online import promote_online
from training.registry import model_history

METRIC = "recall_at_10"


@pytest.fixture()
def config(empty_db: Path, tmp_path: Path) -> ProjectConfig:
    state = tmp_path / "state"
    state.mkdir()
    shutil.copy(empty_db, state / "mlflow.db")
    cfg = ProjectConfig(paths=PathsConfig(state_dir=state), registry=RegistryConfig(model_name="m"))
    uri = cfg.paths.resolved().tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("m")
    exp = client.create_experiment("runs", artifact_location=cfg.paths.resolved().artifact_root)
    for _ in range(2):
        run = client.create_run(exp)
        client.create_model_version("m", f"runs:/{run.info.run_id}/model", run.info.run_id)
    client.set_registered_model_alias("m", "champion", "1")
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    yield cfg
    mlflow.set_tracking_uri(previous[0])
    mlflow.set_registry_uri(previous[1])


def requests(mean: float, n: int, seed: int) -> SampleScores:
    """Per-request recall of ``n`` users (one request each) around ``mean``."""
    values = np.clip(mean + np.random.default_rng(seed).normal(0.0, 0.15, n), 0.0, 1.0)
    return SampleScores(
        np.array([f"h{i}" for i in range(n)], dtype=object),
        np.full(n, np.datetime64("2024-02-01"), dtype="datetime64[ns]"),
        {METRIC: values},
    )


def test_clear_online_gain_promotes_the_shadow(config: ProjectConfig) -> None:
    served = requests(0.30, 400, 1)
    shadow = SampleScores(served.user_id, served.cutoff, {METRIC: served.values[METRIC] + 0.05})
    (found,) = compare_shadows({"1": served, "2-shadow": shadow}, config.registry, METRIC)
    assert (found.shadow_version, found.served_version) == ("2", "1")
    assert found.interval.lower > 0.1 and found.interval.n_users == 400
    save_evidence(config, found)
    meta, saved = load_evidence(config, "2")
    assert meta["served_version"] == "1" and len(saved["challenger"]) == 400

    decision = promote_online(config, "2", command="interest promote 2 --online")

    assert decision.promote, decision.reasons
    assert registered_champion(config)[0] == "2"
    assert any("CI [" in r for r in decision.reasons)
    assert model_history(config)[-1].command == "interest promote 2 --online"


def test_gain_inside_noise_is_refused_with_its_interval(config: ProjectConfig) -> None:
    served = requests(0.30, 300, 2)
    noise = np.random.default_rng(3).normal(0.0015, 0.15, 300)
    shadow = SampleScores(served.user_id, served.cutoff, {METRIC: served.values[METRIC] + noise})
    save_evidence(
        config, compare_shadows({"1": served, "2-shadow": shadow}, config.registry, METRIC)[0]
    )

    decision = promote_online(config, "2", command="interest promote 2 --online")

    assert not decision.promote
    assert registered_champion(config)[0] == "1"
    assert any("CI [" in r and "not above" in r for r in decision.reasons), decision.reasons


def test_no_evidence_names_what_to_run(config: ProjectConfig) -> None:
    with pytest.raises(FileNotFoundError, match="monitor performance"):
        promote_online(config, "2", command="x")
