"""End-to-end tuning on a real Optuna study and a real MLflow store (tiny budgets)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pathlib import Path

import numpy as np
import optuna
import pytest

from core.config import ProjectConfig, load_config
from core.dataset import PreparedData, prepare_dataset
from synthlogs.generator import SynthConfig, generate_events

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[ProjectConfig, object, PreparedData]:
    state = tmp_path_factory.mktemp("tune-state")
    config = load_config(
        overrides={
            "paths": {"state_dir": str(state)},
            "train": {"trials": 1, "epochs": 1, "batch_size": 128, "study_name": "t"},
            "features": {"max_events": 20, "top_categories": 8, "n_periods": 5},
            "split": {"n_train_cutoffs": 2},
        },
        env={},
    )
    events = generate_events(SynthConfig(n_users=150, n_days=14, seed=3)).events
    return config, events, prepare_dataset(events, config, "synthetic-test")


@pytest.fixture(scope="module")
def first_study(setup: tuple) -> object:
    from training.tune import run_study

    config, events, data = setup
    return run_study(config, events, data, source="synthetic", show_progress=False)


def _client(config: ProjectConfig):
    from mlflow import MlflowClient

    uri = config.paths.resolved().tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_every_trial_is_a_nested_run_with_params_and_epoch_metrics(setup, first_study) -> None:
    config, _, _ = setup
    client = _client(config)
    exp = client.get_experiment_by_name(config.train.experiment)
    runs = client.search_runs([exp.experiment_id])
    parent = [r for r in runs if r.info.run_id == first_study.parent_run_id][0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    trials = [r for r in children if "optuna.trial" in r.data.tags]
    assert len(trials) == first_study.n_complete + first_study.n_pruned == 1
    trial = trials[0]
    assert trial.data.params["cell"] in ("lstm", "gru", "bilstm")
    assert "init" in trial.data.params
    assert trial.data.tags["optuna.state"] == "COMPLETE"
    history = client.get_metric_history(trial.info.run_id, "val_recall_at_10")
    assert len(history) == config.train.epochs
    assert any(r.data.tags.get("role") == "refit" for r in children)
    # Baselines on the same split sit next to the model in the parent's refit child.
    refit = [r for r in children if r.data.tags.get("role") == "refit"][0]
    assert "baseline.personal_decay.recall_at_10" in refit.data.metrics
    assert "recall_at_10" in refit.data.metrics
    assert parent.inputs.dataset_inputs[0].dataset.name == "synthetic-test"
    assert trial.inputs.dataset_inputs[0].dataset.name == "synthetic-test"  # every trial too
    # Integer params stay integers (``epochs 1``, not ``1.0``).
    import dataclasses

    from modelkit.model_config import ModelConfig

    ints = {f.name for f in dataclasses.fields(ModelConfig) if f.type in (int, "int")}
    logged = {k: trial.data.params[k] for k in ints if k in trial.data.params}
    assert logged and all(v.lstrip("-").isdigit() for v in logged.values()), logged
    assert parent.data.params["train.epochs"] == "1"
    assert parent.data.params["train.batch_size"] == "128"
    assert "nested run per trial" in exp.tags["mlflow.note.content"]  # the description
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "optuna")}
    assert "optuna/optimization_history.html" in artifacts


def test_refit_is_registered_as_challenger_with_bundle_and_card(setup, first_study) -> None:
    config, _, _ = setup
    client = _client(config)
    version = client.get_model_version(config.registry.model_name, first_study.version)
    assert version.tags["study"] == "t"
    assert version.tags["data.split_hash"]
    assert not [t for t in version.tags if t.startswith(("metric.", "baseline."))]
    assert "recall_at_10: **" in version.description and "card/model_card.md" in version.description
    bundle = {a.path for a in client.list_artifacts(version.run_id, "bundle")}
    assert {"bundle/model.keras", "bundle/vocab.json", "bundle/reference.parquet"} <= bundle
    card = {a.path for a in client.list_artifacts(version.run_id, "card")}
    assert "card/model_card.md" in card and "card/recall_at_k.png" in card
    assert "card/demand_forecast.png" in card
    # The demand forecast at the test cutoff is scored against persistence and logged.
    metrics = client.get_run(version.run_id).data.metrics
    assert metrics["demand_wape"] >= 0 and metrics["demand_wape_persistence"] >= 0
    import mlflow

    local = mlflow.artifacts.download_artifacts(
        run_id=version.run_id,
        artifact_path="card/model_card.md",
        tracking_uri=config.paths.resolved().tracking_uri,
    )
    text = Path(local).read_text()
    assert "## Category demand forecast" in text and "## Calibration" in text
    assert first_study.decision.reasons


def test_champion_loads_from_registry_and_predicts_like_the_in_memory_model(
    setup, first_study
) -> None:
    import mlflow

    import modelkit.layers  # noqa: F401  (registers the custom layers for deserialisation)
    from training.fit import predict_arrays
    from training.registry import promote_version

    config, _, data = setup
    if not first_study.decision.promote:
        promote_version(config, first_study.version, force=True)
    mlflow.set_tracking_uri(config.paths.resolved().tracking_uri)
    mlflow.set_registry_uri(config.paths.resolved().tracking_uri)
    # The registered model is the events-in pyfunc; its bundle holds the Keras graph.
    loaded = mlflow.pyfunc.load_model(f"models:/{config.registry.model_name}@champion")
    inputs = {k: v[:16] for k, v in data.test.inputs().items()}
    ours = predict_arrays(first_study.refit.model, data.test.select(np.arange(16)))
    theirs = loaded.unwrap_python_model().bundle.predict(inputs)
    for name in ("next_cats", "trajectory"):
        np.testing.assert_allclose(np.asarray(theirs[name]), ours[name], atol=1e-5)
    np.testing.assert_allclose(np.asarray(theirs["buy"]).reshape(-1), ours["buy"], atol=1e-5)


def test_interrupted_study_registers_nothing_and_resumes(setup, first_study, monkeypatch) -> None:
    import training.trials as trials
    import training.tune as tune
    from modelkit.registry import registered_champion

    config, events, data = setup
    champion_before = registered_champion(config)
    client = _client(config)
    versions_before = len(client.search_model_versions(f"name='{config.registry.model_name}'"))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    config2 = config.model_copy(deep=True)
    config2.train.trials = 2
    monkeypatch.setattr(trials, "fit_model", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tune.run_study(config2, events, data, source="synthetic", resume=True, show_progress=False)
    monkeypatch.undo()
    assert registered_champion(config) == champion_before
    versions = client.search_model_versions(f"name='{config.registry.model_name}'")
    assert len(versions) == versions_before

    outcome = tune.run_study(
        config2, events, data, source="synthetic", resume=True, register=False, show_progress=False
    )
    study = optuna.load_study(study_name="t", storage=config.paths.resolved().optuna_storage)
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 2
    assert optuna.trial.TrialState.FAIL in states
    assert outcome.parent_run_id == first_study.parent_run_id
    assert registered_champion(config) == champion_before


def test_existing_study_without_resume_is_refused(setup, first_study) -> None:
    from training.trials import open_study

    config, _, _ = setup
    with pytest.raises(ValueError, match="--resume"):
        open_study(config, "t", resume=False, seed=0)
    with pytest.raises(ValueError, match="no study named"):
        open_study(config, "missing", resume=True, seed=0)


def test_study_cli_help_lists_every_option() -> None:
    from typer.testing import CliRunner

    from interest.cli import app

    result = CliRunner().invoke(app, ["tune", "--help"])
    assert result.exit_code == 0
    for option in ("--trials", "--timeout", "--resume", "--storage", "--seed", "--data"):
        assert option in result.output


def test_tune_rejects_unreadable_data(tmp_path: Path, state_dir: Path) -> None:
    from typer.testing import CliRunner

    from interest.cli import app

    bad = tmp_path / "bad.csv"
    bad.write_text("")
    result = CliRunner().invoke(app, ["tune", "--data", str(bad), "--format", "taobao"])
    assert result.exit_code == 1
    assert "bad.csv" in result.output
