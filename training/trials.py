"""Trials of one Optuna study: open the study, the objective, and the optimisation loop.

Every process that runs trials uses this module: the coordinator (:mod:`training.tune`),
local spawned workers and remote ``--worker-only`` workers (:mod:`training.workers`). Each
trial reads top to bottom: suggest a plan -> build and fit it -> report the validation
metric per epoch (pruning when the median says so) -> log one nested MLflow run.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import keras
import mlflow
import optuna
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

from core.config import ProjectConfig
from core.dataset import PreparedData
from core.progress import progress_enabled
from training.fit import fit_model
from training.outage import (
    FAILURE_ATTR,
    note_stage,
    outage_error,
    quiet_outage_tracebacks,
    tracked_run,
)
from training.progress import StudyProgress
from training.search import suggest
from training.streamed import StreamedSplits, evaluate_val, fit_inputs, write_streamed
from training.text_data import text_channels
from training.tracking import fingerprint_tags, finite_metrics, log_data_input

HEARTBEAT_ENV = "INTEREST_OPTUNA_HEARTBEAT_S"
DATA_SOURCE_ATTR = "data_source"  # study user attribute: the events' source, for each trial
GRACE_ENV = "INTEREST_OPTUNA_GRACE_S"
#: States that count towards ``train.trials``, whichever worker ran them.
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)

Objective = Callable[[optuna.Trial], float]


def heartbeat_settings(env: dict[str, str] | None = None) -> tuple[int, int]:
    """Return ``(heartbeat_interval_s, grace_period_s)``: defaults 30 and 90, env overrides.

    A worker beats every interval; a RUNNING trial without a beat for the grace period is
    failed (and retried once) by the next worker that starts a trial or by a resume.
    """
    env = os.environ if env is None else env
    interval = int(env.get(HEARTBEAT_ENV) or 30)
    grace = int(env.get(GRACE_ENV) or 3 * interval)
    if interval < 1 or grace <= interval:
        raise ValueError(
            f"{HEARTBEAT_ENV}={interval} must be >= 1 and {GRACE_ENV}={grace} above it"
        )
    return interval, grace


def worker_label() -> str:
    """``host:pid`` of this process, tagged on every trial run."""
    return f"{socket.gethostname()}:{os.getpid()}"


def open_study(config: ProjectConfig, name: str, *, resume: bool, seed: int) -> optuna.Study:
    """Create (or, with ``resume``, reload) the study on the configured storage.

    Heartbeat interval and grace period come from :func:`heartbeat_settings` (30 s / 90 s
    unless ``INTEREST_OPTUNA_HEARTBEAT_S`` / ``INTEREST_OPTUNA_GRACE_S`` are set).

    Raises:
        ValueError: if the study exists and ``resume`` is false, or is missing on resume.
    """
    url = config.paths.resolved().optuna_storage
    interval, grace = heartbeat_settings()
    config.paths.resolved().state_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # heartbeats are flagged experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # A worker killed mid-trial stops beating: its trial is failed and retried once.
        storage = RDBStorage(
            url,
            heartbeat_interval=interval,
            grace_period=grace,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
        )
    names = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    if name in names and not resume:
        raise ValueError(
            f"study {name!r} already exists in {url}; pass --resume to continue it "
            "or --study-name to start another"
        )
    if name not in names and resume:
        raise ValueError(f"no study named {name!r} in {url} to resume")
    return optuna.create_study(
        study_name=name,
        storage=storage,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
        load_if_exists=resume,
    )


def make_objective(
    config: ProjectConfig,
    data: PreparedData,
    *,
    warm_start: keras.Model | None,
    study_name: str,
    parent_run_id: str | None = None,
    streamed: StreamedSplits | None = None,
    data_source: str | None = None,
) -> Objective:
    """Build ``objective(trial) -> validation primary metric`` with one nested run per trial.

    Runs nest under the active run or, in a worker process with none, under ``parent_run_id``.
    Each run logs ``data_source`` (where the events came from) as its dataset input.
    A lost tracking server or database fails the trial with a
    :class:`~training.outage.ServiceOutage` naming it, which stops the study.
    """
    metric = config.registry.primary_metric
    train_cfg = config.train

    def run_trial(trial: optuna.Trial) -> float:
        note_stage(f"running trial {trial.number}")
        plan = suggest(
            trial,
            can_warm_start=warm_start is not None,
            text_channels=text_channels(data.spec),
            fixed=train_cfg.fixed_params,
        )
        tags = {
            "optuna.study": study_name,
            "optuna.trial": str(trial.number),
            "interest.worker": worker_label(),
        }
        nested = mlflow.active_run() is not None
        if not nested and parent_run_id:
            tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
        with tracked_run(
            config, run_name=f"trial-{trial.number:03d}", nested=nested, tags=tags
        ) as run:
            trial.set_user_attr("mlflow_run_id", run.info.run_id)
            mlflow.log_params(plan.params())
            mlflow.set_tags(fingerprint_tags(data))
            if data_source:
                log_data_input(data, data_source)

            def on_epoch(epoch: int, model: keras.Model) -> dict[str, float]:
                scores = evaluate_val(model, data, streamed)
                figures = finite_metrics(scores, prefix="val_")
                mlflow.log_metrics(figures, step=epoch)
                trial.report(scores[metric], epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at epoch {epoch}: {scores[metric]:.4f}")
                return figures

            seed = train_cfg.seed + trial.number
            try:
                result = fit_model(
                    plan,
                    data.spec,
                    **fit_inputs(config, data, streamed, seed),
                    epochs=train_cfg.epochs,
                    batch_size=train_cfg.batch_size,
                    seed=seed,
                    pretrain_epochs=train_cfg.pretrain_epochs,
                    warm_start=warm_start,
                    on_epoch=on_epoch,
                )
            except optuna.TrialPruned:
                mlflow.set_tag("optuna.state", "PRUNED")
                mlflow.end_run(status="KILLED")
                raise
            value = result.history[-1][f"val_{metric}"]
            trial.set_user_attr("epochs", result.epochs)
            mlflow.log_metrics({"transferred_layers": result.transferred_layers})
            mlflow.log_metrics({"fit_seconds": result.seconds, metric: value})
            mlflow.set_tag("optuna.state", "COMPLETE")
            if not math.isfinite(value):
                raise ValueError(f"trial {trial.number}: validation {metric} is not finite")
            return value

    def objective(trial: optuna.Trial) -> float:
        try:
            return run_trial(trial)
        except Exception as err:
            stage = f"running trial {trial.number}"
            outage = outage_error(err, config, study_name=study_name, stage=stage)
            if outage is None:
                raise
            with contextlib.suppress(Exception):  # unless the storage is what failed
                trial.set_user_attr(FAILURE_ATTR, outage.summary[:1000])
            raise outage from err

    return objective


def optimize_shared(
    config: ProjectConfig,
    study: optuna.Study,
    data: PreparedData,
    *,
    n_trials: int,
    warm_start: keras.Model | None = None,
    show_progress: bool = False,
) -> None:
    """Run up to ``n_trials`` trials of ``study``, stopping once the study is full.

    ``show_progress`` draws trials finished/pruned and the best value so far on stderr.

    The one optimisation loop of every process: the coordinator's own loop, spawned
    workers and remote ``--worker-only`` workers all call this.
    """
    quiet_outage_tracebacks(config)
    parent = study.user_attrs.get("mlflow_parent_run_id")
    # Several workers share one target: stop when finished trials reach it, whoever ran them.
    full = optuna.study.MaxTrialsCallback(config.train.trials, states=FINISHED)
    with contextlib.ExitStack() as stack:
        streamed = None
        if config.train.input == "stream":  # shards in a folder of this process
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="shards-")))
            streamed = write_streamed(config, data, folder)
        objective = make_objective(
            config,
            data,
            warm_start=warm_start,
            study_name=study.study_name,
            parent_run_id=parent,
            streamed=streamed,
            data_source=study.user_attrs.get(DATA_SOURCE_ATTR),
        )
        callbacks: list[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = [full]
        if progress_enabled(show_progress):  # a terminal only: logs get no bars
            callbacks.append(stack.enter_context(StudyProgress(study, config.train.trials)))
        study.optimize(
            objective, n_trials=n_trials, timeout=config.train.timeout_s, callbacks=callbacks
        )
