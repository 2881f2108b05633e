"""Registration, promotion, rollback and status against a real MLflow SQLite store."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from core.config import PathsConfig, ProjectConfig, RegistryConfig
from modelkit.registry import download_bundle, registered_champion, registry_client
from pipelines.status import status
from training.promotion import Candidate
from training.registry import promote_version, register_run, rollback

METRIC = "recall_at_10"


@pytest.fixture()
def config(empty_db: Path, tmp_path: Path):
    import mlflow

    state = tmp_path / "state"
    state.mkdir()
    shutil.copy(empty_db, state / "mlflow.db")
    cfg = ProjectConfig(paths=PathsConfig(state_dir=state), registry=RegistryConfig(model_name="m"))
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    # Both: an earlier test in the process may have pointed the registry elsewhere.
    mlflow.set_tracking_uri(cfg.paths.resolved().tracking_uri)
    mlflow.set_registry_uri(cfg.paths.resolved().tracking_uri)
    yield cfg
    mlflow.set_tracking_uri(previous[0])
    mlflow.set_registry_uri(previous[1])


def log_run(config: ProjectConfig, value: float, split: str = "split-a", base: float = 0.1) -> str:
    """Log a run with a tiny pyfunc model, metrics, a baseline metric and a bundle/ folder."""
    import mlflow

    from training.promotion import ensure_experiment

    class Echo(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    client = registry_client(config)
    exp = ensure_experiment(client, "train", config.paths.resolved().artifact_root)
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.pyfunc.log_model(name="model", python_model=Echo(), pip_requirements=[])
        mlflow.log_metrics({METRIC: value, "buy_auc": 0.7, f"baseline.popularity.{METRIC}": base})
        mlflow.set_tags({"data.split_hash": split, "data.rows": "1000"})
        mlflow.log_dict({"value": value}, "bundle/metadata.json")
    return run.info.run_id


def aliases(config: ProjectConfig) -> dict[str, str]:
    model = registry_client(config).get_registered_model(config.registry.model_name)
    return {a: str(v) for a, v in model.aliases.items()}


def test_register_tags_and_challenger_alias(config):
    run_id = log_run(config, 0.3)
    mv = register_run(
        config, run_id, study_name="s1", data_fingerprint={"split_hash": "h", "rows": 5}
    )
    assert str(mv.version) == "1" and mv.run_id == run_id
    assert mv.tags["study"] == "s1"
    assert mv.tags["data.split_hash"] == "h" and mv.tags["data.rows"] == "5"
    assert float(mv.tags[f"metric.{METRIC}"]) == 0.3
    assert float(mv.tags[f"baseline.popularity.{METRIC}"]) == 0.1
    assert aliases(config) == {"challenger": "1"}
    assert registered_champion(config) is None


def test_first_promotion_then_better_and_worse_challengers(config):
    import mlflow

    v1 = str(register_run(config, log_run(config, 0.30)).version)
    first = promote_version(config, "challenger")
    assert first.promote and first.champion is None
    assert aliases(config) == {"champion": v1}

    run2 = log_run(config, 0.40)
    v2 = str(register_run(config, run2).version)
    assert promote_version(config, v2).promote
    assert aliases(config) == {"champion": v2, "previous": v1}
    assert registered_champion(config) == (v2, run2)
    loaded = mlflow.pyfunc.load_model(f"models:/{config.registry.model_name}@champion")
    assert loaded.metadata.run_id == run2

    v3 = str(register_run(config, log_run(config, 0.35)).version)
    worse = promote_version(config, v3)
    assert not worse.promote
    assert aliases(config) == {"champion": v2, "previous": v1, "challenger": v3}
    mv3 = registry_client(config).get_model_version(config.registry.model_name, v3)
    assert mv3.tags["promotion.decision"] == "refused"
    assert "0.3500" in mv3.tags["promotion.reasons"] and "0.4000" in mv3.tags["promotion.reasons"]


def test_baseline_blocks_first_model(config):
    register_run(config, log_run(config, 0.05, base=0.10))
    decision = promote_version(config, "challenger")
    assert not decision.promote
    assert "champion" not in aliases(config)


def test_mismatched_split_refused_unless_reevaluated(config):
    register_run(config, log_run(config, 0.30, split="split-a"))
    promote_version(config, "challenger")
    v2 = str(register_run(config, log_run(config, 0.50, split="split-b")).version)
    refused = promote_version(config, v2)
    assert not refused.promote
    assert any("split fingerprints differ" in r for r in refused.reasons)

    calls = []

    def evaluate(champion: str, challenger: str) -> Candidate:
        calls.append((champion, challenger))
        return Candidate(f"champion v{champion}", {METRIC: 0.45}, "split-b", champion)

    accepted = promote_version(config, v2, evaluate=evaluate)
    assert calls == [("1", v2)]
    assert accepted.promote and accepted.champion == 0.45
    assert aliases(config)["champion"] == v2


def test_force_and_rollback(config):
    v1 = str(register_run(config, log_run(config, 0.30)).version)
    promote_version(config, v1)
    with pytest.raises(LookupError, match="no 'previous' alias"):
        rollback(config)
    v2 = str(register_run(config, log_run(config, 0.20)).version)
    forced = promote_version(config, v2, force=True)
    assert forced.promote and forced.forced
    assert forced.reasons[0] == "forced by user"
    assert any("gate refused" in r for r in forced.reasons)
    assert aliases(config) == {"champion": v2, "previous": v1}

    result = rollback(config)
    assert (result.from_version, result.to_version) == (v2, v1)
    assert aliases(config) == {"champion": v1}
    client = registry_client(config)
    assert client.get_model_version("m", v2).tags["rolled_back"] == "true"
    assert client.get_run(result.run_id).data.params["to_version"] == v1


def test_nan_metric_refused(config):
    register_run(config, log_run(config, 0.3), metrics={METRIC: math.nan})
    decision = promote_version(config, "challenger")
    assert not decision.promote
    assert any("no finite" in r for r in decision.reasons)


def test_download_bundle_and_errors(config, tmp_path):
    with pytest.raises(LookupError, match="does not exist"):
        download_bundle(config, "champion", tmp_path / "x")
    register_run(config, log_run(config, 0.3))
    with pytest.raises(LookupError, match="no alias 'champion'"):
        download_bundle(config, "champion", tmp_path / "x")
    bundle = download_bundle(config, "challenger", tmp_path / "dl")
    assert json.loads((bundle / "metadata.json").read_text()) == {"value": 0.3}


def test_status_lists_versions_and_empty_stores(config):
    empty = status(config)
    assert empty["registered_models"] == [] and empty["studies"] == []
    assert empty["bento_models"] == []
    register_run(config, log_run(config, 0.3))
    promote_version(config, "challenger")
    state = status(config)
    (model,) = state["registered_models"]
    (version,) = model["versions"]
    assert version["aliases"] == ["champion"] and version["metrics"][METRIC] == 0.3
    assert version["decision"] == "promoted"
    json.dumps(state)
