"""SIGKILL a tuning worker mid-trial; the study resumes without losing or orphaning anything.

Heartbeat 1 s and grace 3 s (``INTEREST_OPTUNA_HEARTBEAT_S`` / ``_GRACE_S``) keep it short.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

pytestmark = [pytest.mark.fault, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
TRIALS = 3
HEARTBEAT = {"INTEREST_OPTUNA_HEARTBEAT_S": "1", "INTEREST_OPTUNA_GRACE_S": "3"}

WORKER = """
import json, sys
from core.config import load_config
from core.dataset import prepare_dataset
from synthlogs.generator import SynthConfig, generate_events
from training.tune import run_study

overrides = json.loads(sys.argv[1])
config = load_config(overrides=overrides, env={})
events = generate_events(SynthConfig(n_users=100, n_days=14, seed=7)).events
data = prepare_dataset(events, config, "synthetic-fault")
run_study(config, events, data, source="synthetic", register=False, show_progress=False)
"""


def _overrides(state: Path) -> dict:
    return {
        "paths": {"state_dir": str(state)},
        "train": {
            "trials": TRIALS,
            "epochs": 1,
            "batch_size": 128,
            "pretrain_epochs": 0,
            "study_name": "fault",
        },
        "features": {"max_events": 20, "top_categories": 8, "n_periods": 5},
        "split": {"n_train_cutoffs": 2},
    }


def _trials(storage: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name="fault", storage=storage).trials
    except KeyError:  # the worker has not created the study yet
        return []


def _kill_mid_trial(proc: subprocess.Popen, storage: str, timeout: float = 400) -> int:
    """Wait for one finished trial and a running one with its MLflow run; SIGKILL the worker."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"worker exited ({proc.returncode}) before it could be killed")
        trials = _trials(storage)
        done = [t for t in trials if t.state.is_finished()]
        running = [
            t
            for t in trials
            if t.state == optuna.trial.TrialState.RUNNING and "mlflow_run_id" in t.user_attrs
        ]
        if done and running:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            return running[0].number
        time.sleep(0.2)
    proc.kill()
    pytest.fail("no trial was running within the timeout")


def test_killed_worker_trial_is_failed_retried_and_its_run_closed(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    from core.config import load_config
    from core.dataset import prepare_dataset
    from synthlogs.generator import SynthConfig, generate_events
    from training.tune import run_study
    from training.workers import NOTE_TAG

    for key, value in HEARTBEAT.items():
        monkeypatch.setenv(key, value)
    config = load_config(overrides=_overrides(tmp_path), env={})
    storage = config.paths.resolved().optuna_storage
    env = {**os.environ, **HEARTBEAT, "PYTHONPATH": str(REPO)}
    log = (tmp_path / "worker.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, json.dumps(_overrides(tmp_path))],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    killed = _kill_mid_trial(proc, storage)
    before = {t.number: (t.state, t.value) for t in _trials(storage)}
    assert before[killed][0] == optuna.trial.TrialState.RUNNING, before
    kept = {n: v for n, (s, v) in before.items() if s.is_finished()}
    time.sleep(4)  # past the grace period: the killed trial's heartbeat is now stale

    events = generate_events(SynthConfig(n_users=100, n_days=14, seed=7)).events
    data = prepare_dataset(events, config, "synthetic-fault")
    outcome = run_study(
        config, events, data, source="synthetic", resume=True, register=False, show_progress=False
    )

    after = {t.number: t for t in _trials(storage)}
    assert after[killed].state == optuna.trial.TrialState.FAIL
    for number, value in kept.items():  # completed work survives the crash unchanged
        assert after[number].state.is_finished() and after[number].value == value
    retries = [
        t
        for t in after.values()
        if optuna.storages.RetryFailedTrialCallback.retried_trial_number(t) == killed
    ]
    assert len(retries) == 1 and retries[0].state.is_finished()
    assert retries[0].params == after[killed].params
    finished = [t for t in after.values() if t.state.is_finished() and t.state.name != "FAIL"]
    assert len(finished) == TRIALS == outcome.n_complete + outcome.n_pruned

    client = MlflowClient(tracking_uri=config.paths.resolved().tracking_uri)
    exp = client.get_experiment_by_name(config.train.experiment)
    runs = client.search_runs([exp.experiment_id], max_results=500)
    running = [r for r in runs if r.info.status == "RUNNING"]
    assert running == [], [(r.info.run_name, r.data.tags.get(NOTE_TAG)) for r in running]
    orphan = client.get_run(after[killed].user_attrs["mlflow_run_id"])
    assert orphan.info.status == "KILLED"
    note = orphan.data.tags[NOTE_TAG]
    assert f"retried as trial {retries[0].number}" in note
    parent = client.get_run(outcome.parent_run_id)
    assert parent.info.status == "FINISHED"
    print(
        f"\nfault: killed the worker during trial {killed} (finished before: "
        f"{sorted(kept)}); resume failed it, retried it as trial {retries[0].number}; "
        f"states {[after[n].state.name for n in sorted(after)]}; "
        f"orphan run {orphan.info.status}: {note!r}"
    )
