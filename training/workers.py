"""Parallel tuning: N worker processes optimise one shared Optuna study.

Every worker opens the same study on the configured storage, logs each trial as a run
nested under the study's one MLflow parent run (``study.user_attrs["mlflow_parent_run_id"]``)
and stops when the study holds ``train.trials`` finished trials. Local workers are spawned
processes; a worker on another machine is ``interest tune --data ... --study-name S --resume
--worker-only`` pointed at the same storage and tracking server. Only configuration differs
between the embedded default (SQLite) and a shared PostgreSQL + MLflow server setup.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import tempfile
import warnings
from pathlib import Path

import keras
import mlflow
import optuna
from optuna.storages import RetryFailedTrialCallback, fail_stale_trials

import modelkit.layers  # noqa: F401  (registers the custom layers for loading a warm start)
from core.config import ProjectConfig
from core.dataset import PreparedData
from training.outage import FAILURE_ATTR, OutageGuard
from training.tracking import setup_tracking
from training.trials import FINISHED, heartbeat_settings, open_study, optimize_shared

#: MLflow tag explaining why a trial's run was closed by someone other than its worker.
NOTE_TAG = "interest.note"


def storage_warning(storage_url: str, tracking_uri: str, workers: int) -> str | None:
    """Explain why SQLite is a poor shared store for ``workers`` > 1 (``None`` when fine)."""
    if workers <= 1:
        return None
    local = [
        name
        for name, url in (("Optuna storage", storage_url), ("MLflow tracking", tracking_uri))
        if url.startswith("sqlite")
    ]
    if not local:
        return None
    return (
        f"{' and '.join(local)} on SQLite with {workers} parallel workers: SQLite locks the "
        "whole file per write, so workers wait on each other and may fail with 'database is "
        "locked' (optuna#820). Use PostgreSQL (--storage postgresql://user@host/db, "
        "--tracking-uri http://mlflow-server:5000) for parallel or multi-machine tuning; "
        "Optuna's journal storage also avoids the lock but has no heartbeats."
    )


def trial_quotas(remaining: int, workers: int) -> list[int]:
    """Split ``remaining`` trials over ``workers`` as evenly as possible (earlier ones first)."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    base, extra = divmod(max(remaining, 0), workers)
    return [base + (1 if i < extra else 0) for i in range(workers)]


def run_worker(
    config: ProjectConfig,
    data: PreparedData,
    *,
    study_name: str | None = None,
    n_trials: int | None = None,
    warm_start: keras.Model | None = None,
    seed_offset: int | None = None,
    show_progress: bool = False,
) -> int:
    """Join an existing study as one worker and optimise until it is full.

    Args:
        config: the same storage, tracking URI and ``train`` settings as the coordinator.
        data: prepared exactly like the coordinator's (same events, same vocabulary).
        study_name: the study to join (default ``train.study_name``).
        n_trials: most trials this worker runs (default: what the study still lacks).
        warm_start: the champion's model, when the coordinator offers one.
        seed_offset: added to ``train.seed`` so workers sample different plans (default: pid).
        show_progress: Optuna's progress bar.

    Returns:
        How many trials this worker ran.

    Raises:
        ValueError: no such study, or it has no parent run (start the coordinator first).
        training.outage.ServiceOutage: the tracking server or the database stopped answering.
    """
    name = study_name or config.train.study_name
    with OutageGuard(config, name, stage="joining the study as a worker") as guard:
        setup_tracking(config)
        offset = os.getpid() if seed_offset is None else seed_offset
        study = open_study(config, name, resume=True, seed=config.train.seed + offset)
        if "mlflow_parent_run_id" not in study.user_attrs:
            raise ValueError(
                f"study {name!r} has no MLflow parent run yet: start the coordinator "
                "(interest tune --workers N) before joining with --worker-only"
            )
        before = len(study.trials)
        if n_trials is None:
            done = sum(t.state in FINISHED for t in study.trials)
            n_trials = max(0, config.train.trials - done)
        guard.stage = "optimising as a worker"
        optimize_shared(
            config,
            study,
            data,
            n_trials=n_trials,
            warm_start=warm_start,
            show_progress=show_progress,
        )
        return len(study.get_trials(deepcopy=False)) - before


def _worker_main(
    config: ProjectConfig,
    data: PreparedData,
    study_name: str,
    n_trials: int,
    index: int,
    warm_start_path: str | None,
) -> None:
    warm = None
    if warm_start_path:
        warm = keras.saving.load_model(warm_start_path, safe_mode=True)
    run_worker(
        config,
        data,
        study_name=study_name,
        n_trials=n_trials,
        warm_start=warm,
        seed_offset=1000 * (index + 1),
    )


def run_local_workers(
    config: ProjectConfig,
    data: PreparedData,
    *,
    study_name: str,
    remaining: int,
    workers: int,
    warm_start: keras.Model | None = None,
) -> list[int]:
    """Spawn ``workers`` processes on this machine that share ``remaining`` trials; wait.

    Returns:
        Each worker's exit code (0: finished; negative: killed by that signal).
    """
    quotas = [q for q in trial_quotas(remaining, workers) if q > 0]
    # A spawned child imports TensorFlow while unpickling its target, before any code of
    # its own runs: it can only be quietened through the environment it inherits.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # spawn, not fork: TensorFlow's threads do not survive a fork.
    context = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="interest-workers-") as tmp:
        warm_path = None
        if warm_start is not None:
            warm_path = str(Path(tmp) / "warm_start.keras")
            warm_start.save(warm_path)
        procs = [
            context.Process(
                target=_worker_main,
                args=(config, data, study_name, quota, index, warm_path),
                name=f"interest-tune-worker-{index}",
            )
            for index, quota in enumerate(quotas)
        ]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
    return [int(proc.exitcode or 0) for proc in procs]


def close_orphan_runs(config: ProjectConfig, study: optuna.Study) -> list[str]:
    """Fail stale trials, then close the MLflow runs their dead workers left RUNNING.

    A worker killed mid-trial (SIGKILL, lost machine) neither ends its nested run nor
    reports the trial. Once its heartbeat is older than the grace period the trial is
    failed (and retried once); here its run is marked KILLED with a note saying why. A
    trial failed by a lost tracking server leaves its run RUNNING too; its note quotes
    the outage.

    Returns:
        The MLflow run ids that were closed.
    """
    with warnings.catch_warnings():  # both are flagged experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        fail_stale_trials(study)
        trials = study.get_trials(deepcopy=False)
        origin = {t.number: RetryFailedTrialCallback.retried_trial_number(t) for t in trials}
    retries = {first: t for t, first in origin.items() if first is not None}
    client = mlflow.MlflowClient(tracking_uri=config.paths.resolved().tracking_uri)
    _, grace = heartbeat_settings()
    closed = []
    for trial in trials:
        run_id = trial.user_attrs.get("mlflow_run_id")
        if trial.state != optuna.trial.TrialState.FAIL or not run_id:
            continue
        if client.get_run(run_id).info.status != "RUNNING":
            continue
        retry = retries.get(trial.number)
        retried = f"; retried as trial {retry}" if retry is not None else "; not retried"
        why = trial.user_attrs.get(FAILURE_ATTR) or (
            f"its worker stopped without finishing (no heartbeat for over {grace} s)"
        )
        note = f"trial {trial.number} failed: {why}{retried}; run closed on resume"
        client.set_tag(run_id, NOTE_TAG, note)
        client.set_tag(run_id, "optuna.state", "FAIL")
        client.set_terminated(run_id, status="KILLED")
        closed.append(run_id)
    return closed
