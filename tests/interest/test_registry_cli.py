"""`interest register|promote|rollback|status` through typer's CliRunner on a real store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.config import load_config
from interest.cli import app
from interest.registry_cmd import REFUSED_EXIT

runner = CliRunner()


@pytest.fixture()
def env(tmp_path: Path):
    import mlflow

    state = tmp_path / "state"
    uri = f"sqlite:///{state / 'mlflow.db'}"
    values = {"INTEREST_STATE_DIR": str(state), "INTEREST_TRACKING_URI": uri}
    previous = mlflow.get_tracking_uri()
    yield values
    mlflow.set_tracking_uri(previous)


def invoke(env: dict[str, str], *args: str):
    return runner.invoke(app, list(args), env=env)


def log_run(env: dict[str, str], value: float) -> str:
    """Log a run with a tiny pyfunc model and metrics into the store named by ``env``."""
    import mlflow

    from modelkit.registry import registry_client
    from training.promotion import ensure_experiment

    class Echo(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    config = load_config(env=env)
    mlflow.set_tracking_uri(config.paths.resolved().tracking_uri)
    exp = ensure_experiment(registry_client(config), "train", config.paths.resolved().artifact_root)
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.pyfunc.log_model(name="model", python_model=Echo(), pip_requirements=[])
        mlflow.log_metrics({"recall_at_10": value, "baseline.popularity.recall_at_10": 0.1})
        mlflow.set_tag("data.split_hash", "split-a")
    return run.info.run_id


def add_study_and_bento(env: dict[str, str], tmp_path: Path) -> None:
    import optuna

    from serving.store import import_bundle

    paths = load_config(env=env).paths.resolved()
    study = optuna.create_study(study_name="s1", storage=paths.optuna_storage, direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "metadata.json").write_text("{}")
    import_bundle(bundle, "interest-evolution", home=paths.bentoml_home)


def test_status_json_on_empty_state(env):
    result = invoke(env, "status", "--json")
    assert result.exit_code == 0, result.output
    state = json.loads(result.stdout)
    assert state["state_dir"] == env["INTEREST_STATE_DIR"]
    assert state["tracking_uri"] == env["INTEREST_TRACKING_URI"]
    assert state["registered_models"] == [] and state["studies"] == []
    assert state["bento_models"] == []
    assert not Path(env["INTEREST_STATE_DIR"], "mlflow.db").exists()  # status creates nothing


def with_store(env: dict[str, str], empty_db: Path) -> dict[str, str]:
    state = Path(env["INTEREST_STATE_DIR"])
    state.mkdir(parents=True, exist_ok=True)
    shutil.copy(empty_db, state / "mlflow.db")
    return env


def test_register_promote_rollback_status(env, empty_db, tmp_path):
    env = with_store(env, empty_db)
    first = invoke(env, "register", log_run(env, 0.3), "--study", "s1")
    assert first.exit_code == 0, first.output
    assert "v1 as challenger" in first.stdout
    assert invoke(env, "promote").exit_code == 0
    no_previous = invoke(env, "rollback")
    assert no_previous.exit_code == 1 and "previous" in no_previous.output

    invoke(env, "register", log_run(env, 0.2))
    refused = invoke(env, "promote", "2", "--json")
    assert refused.exit_code == REFUSED_EXIT
    assert json.loads(refused.stdout)["promote"] is False
    assert invoke(env, "promote", "2", "--force").exit_code == 0
    rolled = invoke(env, "rollback")
    assert rolled.exit_code == 0 and "v2 -> v1" in rolled.stdout

    add_study_and_bento(env, tmp_path)
    state = json.loads(invoke(env, "status", "--json").stdout)
    (model,) = state["registered_models"]
    assert model["aliases"] == {"champion": "1"}
    v2 = next(v for v in model["versions"] if v["version"] == "2")
    assert v2["rolled_back"] and v2["metrics"]["recall_at_10"] == 0.2
    (study,) = state["studies"]
    assert study["trials_by_state"] == {"COMPLETE": 2, "FAIL": 1}
    assert study["best_value"] is not None
    assert state["bento_models"][0]["tag"].startswith("interest-evolution:")
    table = invoke(env, "status")
    assert table.exit_code == 0 and "champion" in table.stdout and "s1" in table.stdout


def test_promote_unknown_alias_names_the_problem(env, empty_db):
    env = with_store(env, empty_db)
    invoke(env, "register", log_run(env, 0.3))
    result = invoke(env, "promote", "nope")
    assert result.exit_code == 1
    assert "no alias 'nope'" in result.output
