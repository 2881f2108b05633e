"""`interest register|promote|rollback|status` through typer's CliRunner on a real store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from core.config import load_config
from interest.cli import app
from interest.exit_codes import exit_code
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


def log_samples(state: Path, value: float, base: float = 0.1) -> None:
    """Log per-user recall@10 of the model (mean ``value``) and a baseline to the active run."""
    import mlflow

    from evaluation.samples import SampleScores, write_samples
    from training.contenders import SAMPLES_DIR, SAMPLES_FILE

    users = np.array([f"u{i}" for i in range(300)], dtype=object)
    cutoff = np.full(300, np.datetime64("2024-01-01"), dtype="datetime64[ns]")
    noise = np.random.default_rng(round(value * 1e4)).normal(0.0, 0.1, 300)
    scored = {
        name: SampleScores(users, cutoff, {"recall_at_10": mean + noise - noise.mean()})
        for name, mean in (("model", value), ("baseline.popularity", base))
    }
    path = write_samples(state / SAMPLES_FILE, scored)
    mlflow.log_artifact(str(path), SAMPLES_DIR)


def log_run(env: dict[str, str], value: float) -> str:
    """Log a run with a tiny pyfunc model, metrics and per-sample scores into ``env``'s store."""
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
        log_samples(config.paths.resolved().state_dir, value)
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
    assert no_previous.exit_code == exit_code("nothing_to_roll_back") == 9
    assert "nothing to roll back" in no_previous.output

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
    assert model["aliases"] == {"champion": "1", "previous": "2"}
    v2 = next(v for v in model["versions"] if v["version"] == "2")
    assert v2["rolled_back"] and v2["metrics"]["recall_at_10"] == 0.2
    (study,) = state["studies"]
    assert study["trials_by_state"] == {"COMPLETE": 2, "FAIL": 1}
    assert study["best_value"] is not None
    assert state["bento_models"][0]["tag"].startswith("interest-evolution:")
    assert state["bentos"] == []  # none built here; tests/serving builds one
    table = invoke({**env, "COLUMNS": "80"}, "status")
    assert table.exit_code == 0 and "champion" in table.stdout and "s1" in table.stdout
    assert "recall_at_10 0.2000" in table.stdout  # metrics wrap at 80 columns, not cut
    assert "…" not in table.stdout
    rows = [line for line in table.stdout.splitlines() if line[:1] in "┏┃┡│└"]
    assert rows and max(len(line) for line in rows) <= 80


def test_promote_unknown_alias_names_the_problem(env, empty_db):
    env = with_store(env, empty_db)
    invoke(env, "register", log_run(env, 0.3))
    result = invoke(env, "promote", "nope")
    assert result.exit_code == 1
    assert "no alias 'nope'" in result.output


def test_rollback_twice_restores_v1_then_v2_and_history_lists_every_move(env, empty_db):
    env = with_store(env, empty_db)
    invoke(env, "register", log_run(env, 0.3))
    assert invoke(env, "promote", "1").exit_code == 0
    invoke(env, "register", log_run(env, 0.45))
    promoted = invoke(env, "promote", "2")
    assert promoted.exit_code == 0, promoted.output
    assert "95% CI" in promoted.stdout and "on 300 users" in promoted.stdout

    first = invoke(env, "rollback", "--reason", "latency regression")
    assert first.exit_code == 0 and "champion v2 -> v1" in first.stdout
    second = invoke(env, "rollback")
    assert second.exit_code == 0 and "champion v1 -> v2" in second.stdout

    moves = json.loads(invoke(env, "history", "--json").stdout)
    champion = [
        (m["from_version"], m["to_version"], m["command"])
        for m in moves
        if m["alias"] == "champion"
    ]
    assert champion == [
        (None, "1", "interest promote 1"),
        ("1", "2", "interest promote 2"),
        ("2", "1", "interest rollback"),
        ("1", "2", "interest rollback"),
    ]
    assert "latency regression" in [m for m in moves if m["alias"] == "champion"][2]["reason"]
    assert all(m["who"] and m["at"] for m in moves)
    table = invoke(env, "history")
    assert (
        table.exit_code == 0 and "champion" in table.stdout and "interest rollback" in table.stdout
    )


def test_promote_refuses_a_gain_the_data_cannot_tell_from_noise(env, empty_db):
    env = with_store(env, empty_db)
    invoke(env, "register", log_run(env, 0.30))
    invoke(env, "promote", "1")
    invoke(env, "register", log_run(env, 0.3027))  # +0.9 %, per-user noise sd 0.1, 300 users
    refused = invoke(env, "promote", "2", "--json")
    assert refused.exit_code == REFUSED_EXIT == exit_code("refused") == 5
    decision = json.loads(refused.stdout)
    champion = decision["opponents"]["champion"]
    assert champion["interval"]["lower"] < 0 < champion["interval"]["upper"]
    assert decision["confidence"] == 0.95 and decision["margin"] == 0.0
    assert decision["n_users"] == 300


def test_history_of_a_missing_model_is_an_error(env, empty_db):
    env = with_store(env, empty_db)
    result = invoke(env, "history")
    assert result.exit_code == 1 and "does not exist" in result.output


def test_one_exit_code_per_outcome_and_monitor_run_agrees():
    from interest.exit_codes import ALIASES, EXIT_CODES
    from pipelines.monitor import EXIT_CODES as RUN_EXIT_CODES

    assert len(set(EXIT_CODES.values())) == len(EXIT_CODES)
    for status, code in RUN_EXIT_CODES.items():
        assert exit_code(status) == code, status
    assert set(ALIASES.values()) <= set(EXIT_CODES)
    from interest.monitor_cmd import EXIT_CODES as DRIFT_EXIT_CODES

    assert DRIFT_EXIT_CODES == {"ok": 0, "drift": 10, "not_enough_data": 4}
