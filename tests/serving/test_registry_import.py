"""Registry -> BentoML store import, against a real MLflow SQLite registry (no TensorFlow)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from core.arrays import FeatureSpec
from core.config import PathsConfig, ProjectConfig
from modelkit.registry import registry_client

SPEC = FeatureSpec(20, 3, 6, 5, 4, 40, 2, "day", "3D", "vocabhash0001")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory):
    """Two registered versions of a stub model with a ``bundle/``; v1 is champion."""
    import mlflow

    from training.promotion import ensure_experiment
    from training.registry import promote_version, register_run

    class Echo(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    state = tmp_path_factory.mktemp("registry") / "state"
    config = ProjectConfig(paths=PathsConfig(state_dir=state))
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(config.paths.resolved().tracking_uri)
    client = registry_client(config)
    exp = ensure_experiment(client, "train", config.paths.resolved().artifact_root)
    runs = []
    for content in ("aaaa", "bbbb"):
        with mlflow.start_run(experiment_id=exp) as run:
            mlflow.pyfunc.log_model(name="model", python_model=Echo(), pip_requirements=[])
            mlflow.log_metrics({"recall_at_10": 0.3})
            meta = {
                "model_name": "interest-evolution",
                "run_id": run.info.run_id,
                "metrics": {"recall_at_10": 0.3, "buy_auc": float("nan")},
                "fingerprint": {"dataset": "stub", "rows": 9, "content_hash": content},
            }
            mlflow.log_dict(meta, "bundle/metadata.json")
            mlflow.log_text(SPEC.to_json(), "bundle/feature_spec.json")
            runs.append(run.info.run_id)
        register_run(config, run.info.run_id)
    promote_version(config, "1", force=True)
    mlflow.set_tracking_uri(previous)
    return config, runs


def test_import_champion_labels_it_with_its_registry_identity(registry, tmp_path):
    from serving.registry_import import import_from_registry
    from serving.store import bundle_path, get_stored_model

    config, runs = registry
    imported = import_from_registry(config, alias="champion", home=tmp_path / "home")
    stored = get_stored_model(imported.tag, home=tmp_path / "home")
    assert imported.tag.startswith("interest-evolution:")
    assert stored.info.labels == {
        "model_name": "interest-evolution",
        "version": "1",
        "alias": "champion",
        "aliases": "champion",
        "run_id": runs[0],
        "source": "mlflow-registry",
        "feature_spec_hash": SPEC.spec_hash,
        "vocab_hash": "vocabhash0001",
        "data_content_hash": "aaaa",
        "dataset": "stub",
    }
    meta = json.loads((bundle_path(stored) / "metadata.json").read_text())
    assert meta["version"] == "1" and meta["run_id"] == runs[0]
    assert stored.info.metadata["metrics"] == {"recall_at_10": 0.3}


def test_import_by_version_wins_over_alias(registry, tmp_path):
    from serving.registry_import import import_from_registry

    config, runs = registry
    imported = import_from_registry(config, alias="champion", version="2", home=tmp_path / "h")
    assert imported.labels["version"] == "2" and imported.labels["run_id"] == runs[1]
    assert imported.labels["alias"] == "challenger"  # v2 is still the challenger
    assert imported.labels["data_content_hash"] == "bbbb"


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--alias", "nope"], "no alias 'nope'"), (["--version", "9"], "no version 9")],
)
def test_cli_names_a_missing_alias_or_version(registry, args, message):
    from typer.testing import CliRunner

    from interest.cli import app

    config, _ = registry
    env = {"INTEREST_STATE_DIR": str(config.paths.state_dir)}
    result = CliRunner().invoke(app, ["bento", "import", *args], env=env)
    assert result.exit_code == 1
    assert message in result.output


def test_cli_import_prints_the_tag_into_the_configured_home(registry):
    from typer.testing import CliRunner

    from interest.cli import app
    from serving.store import get_stored_model

    config, _ = registry
    env = {"INTEREST_STATE_DIR": str(config.paths.state_dir)}
    result = CliRunner().invoke(app, ["bento", "import"], env=env)
    assert result.exit_code == 0, result.output
    tag = result.stdout.strip().splitlines()[-1]
    home = config.paths.resolved().bentoml_home
    assert get_stored_model(tag, home=home).info.labels["version"] == "1"
    assert "next: interest bento build" in result.output


def test_bentoml_env_points_children_at_the_configured_store(tmp_path, monkeypatch):
    from serving.launch import REPO
    from serving.package import bentoml_env

    monkeypatch.delenv("INTEREST_CONFIG", raising=False)
    config = ProjectConfig(paths=PathsConfig(state_dir=tmp_path / "s"))
    env = bentoml_env(config)
    assert env["BENTOML_HOME"] == str((tmp_path / "s" / "bentoml").resolve())
    assert env["INTEREST_BENTO_MODEL"] == "interest-evolution:latest"
    assert env["INTEREST_STATE_DIR"] == str((tmp_path / "s").resolve())
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(REPO)
    assert Path(REPO, "bentofile.yaml").is_file()
    assert bentoml_env(config, "m:v1")["INTEREST_BENTO_MODEL"] == "m:v1"


@pytest.mark.slow
def test_cli_build_packs_a_bento_that_references_the_imported_model(registry):
    from typer.testing import CliRunner

    from interest.cli import app

    config, _ = registry
    env = {"INTEREST_STATE_DIR": str(config.paths.state_dir)}
    runner = CliRunner()
    imported = runner.invoke(app, ["bento", "import", "--version", "2"], env=env)
    model_tag = imported.stdout.strip().splitlines()[-1]
    result = runner.invoke(app, ["bento", "build"], env=env)
    assert result.exit_code == 0, result.output
    name, version = result.stdout.strip().splitlines()[-1].split(":")
    home = config.paths.resolved().bentoml_home
    manifest = (home / "bentos" / name / version / "bento.yaml").read_text()
    assert "serving.service:InterestService" in manifest and model_tag in manifest
    assert "bentoml containerize" in result.output
