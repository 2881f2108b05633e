"""Two tuning workers share one study on PostgreSQL and one MLflow tracking server.

Needs the services of ``scripts/ci_services.sh`` (``INTEREST_TEST_PG_URL``,
``INTEREST_TEST_MLFLOW_URL``). Without them the test skips, unless
``INTEREST_REQUIRE_SERVICES=1`` (set by CI), where it fails.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import time
import uuid
from collections import Counter
from pathlib import Path

import optuna
import pytest

pytestmark = [pytest.mark.scale, pytest.mark.slow]

TRIALS = 4


def _services() -> tuple[str, str]:
    pg, tracking = (
        os.environ.get("INTEREST_TEST_PG_URL"),
        os.environ.get("INTEREST_TEST_MLFLOW_URL"),
    )
    if pg and tracking:
        return pg, tracking
    reason = (
        "INTEREST_TEST_PG_URL / INTEREST_TEST_MLFLOW_URL not set: start PostgreSQL and an "
        'MLflow server with eval "$(scripts/ci_services.sh start)"'
    )
    if os.environ.get("INTEREST_REQUIRE_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def test_two_workers_share_one_study_and_one_parent_run(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    from core.config import load_config
    from core.dataset import prepare_dataset
    from synthlogs.generator import SynthConfig, generate_events
    from training.tune import run_study

    pg, tracking = _services()
    name = f"scale-{uuid.uuid4().hex[:8]}"
    config = load_config(
        overrides={
            "paths": {
                "state_dir": str(tmp_path),
                "optuna_storage": pg,
                "tracking_uri": tracking,
                "artifact_root": "mlflow-artifacts:/interest-ci",  # served by the server
            },
            "train": {
                "trials": TRIALS,
                "epochs": 1,
                "batch_size": 128,
                "pretrain_epochs": 0,
                "study_name": name,
                "experiment": name,
            },
            "registry": {"model_name": name},
            "features": {"max_events": 20, "top_categories": 8, "n_periods": 5},
            "split": {"n_train_cutoffs": 2},
        },
        env={},
    )
    events = generate_events(SynthConfig(n_users=120, n_days=14, seed=5)).events
    data = prepare_dataset(events, config, "synthetic-scale")

    start = time.monotonic()
    outcome = run_study(
        config, events, data, source="synthetic", workers=2, register=False, show_progress=False
    )
    seconds = time.monotonic() - start

    study = optuna.load_study(study_name=name, storage=pg)
    states = Counter(t.state.name for t in study.trials)
    assert sorted(t.number for t in study.trials) == list(range(TRIALS)), states
    assert states["COMPLETE"] + states["PRUNED"] == TRIALS and states["FAIL"] == 0
    assert study.user_attrs["mlflow_parent_run_id"] == outcome.parent_run_id

    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    exp = client.get_experiment_by_name(name)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == outcome.parent_run_id]
    trial_runs = [r for r in children if "optuna.trial" in r.data.tags]
    per_trial = Counter(int(r.data.tags["optuna.trial"]) for r in trial_runs)
    assert per_trial == Counter(range(TRIALS)), per_trial
    by_id = {r.info.run_id: r for r in trial_runs}
    for trial in study.trials:
        run = by_id[trial.user_attrs["mlflow_run_id"]]
        assert run.data.tags["optuna.trial"] == str(trial.number)
        assert run.info.status in ("FINISHED", "KILLED")
    workers = Counter(r.data.tags["interest.worker"] for r in trial_runs)
    assert len(workers) == 2, workers
    assert f":{os.getpid()}" not in " ".join(workers)  # the coordinator only waited
    assert [r.data.tags.get("role") for r in children].count("refit") == 1
    parent = client.get_run(outcome.parent_run_id)
    assert parent.data.tags["workers.exit_codes"] == "0,0"

    print(
        f"\nscale: study {name} on {pg.split('@')[-1]}, tracking {tracking}: "
        f"{TRIALS} trials ({dict(states)}) by workers {dict(workers)}; "
        f"MLflow runs per trial {dict(sorted(per_trial.items()))}; 1 refit; "
        f"{seconds:.1f} s"
    )
