"""Optuna studies of model plans, one MLflow parent run per study, one nested run per trial.

``run_study`` reads top to bottom: prepare data -> open the study and its parent run ->
optimise (suggest -> build -> fit -> report per epoch, prune) -> refit the winner ->
register it as ``challenger`` -> run the promotion gate. Nothing is registered and no
alias moves unless every step before it succeeded.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import keras
import optuna
import pandas as pd

from core.config import ProjectConfig
from core.dataset import PreparedData
from evaluation.metrics import evaluate_predictions
from training.fit import fit_model, predict_arrays
from training.outage import FAILURE_ATTR, OutageGuard, note_stage, outage_error, tracked_run
from training.search import TrialPlan, suggest
from training.tracking import fingerprint_tags, finite_metrics, log_data_input, setup_tracking
from training.workers import (
    close_orphan_runs,
    optimize_shared,
    run_local_workers,
    storage_warning,
)


@dataclass
class StudyOutcome:
    """What a tuning job produced."""

    study_name: str
    parent_run_id: str
    best_value: float
    best_params: dict[str, Any]
    n_complete: int
    n_pruned: int
    refit: Any = None  # training.refit.RefitResult
    version: str | None = None
    decision: Any = None  # training.promotion.PromotionDecision
    extra: dict[str, Any] = field(default_factory=dict)


def open_study(config: ProjectConfig, name: str, *, resume: bool, seed: int) -> optuna.Study:
    """Create (or, with ``resume``, reload) the study on the configured storage.

    Heartbeat interval and grace period come from :func:`training.workers.heartbeat_settings`
    (30 s / 90 s unless ``INTEREST_OPTUNA_HEARTBEAT_S`` / ``INTEREST_OPTUNA_GRACE_S`` are set).

    Raises:
        ValueError: if the study exists and ``resume`` is false, or is missing on resume.
    """
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    from training.workers import heartbeat_settings

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
) -> Any:
    """Build ``objective(trial) -> validation primary metric`` with one nested run per trial.

    Runs nest under the active run or, in a worker process with none, under ``parent_run_id``.
    A lost tracking server or database fails the trial with a
    :class:`~training.outage.ServiceOutage` naming it, which stops the study.
    """
    import mlflow
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    from training.workers import worker_label

    metric = config.registry.primary_metric
    train_cfg = config.train

    def run_trial(trial: optuna.Trial) -> float:
        note_stage(f"running trial {trial.number}")
        plan = suggest(trial, can_warm_start=warm_start is not None)
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

            def on_epoch(epoch: int, model: keras.Model) -> dict[str, float]:
                scores = evaluate_predictions(predict_arrays(model, data.val), data.val)
                figures = finite_metrics(scores, prefix="val_")
                mlflow.log_metrics(figures, step=epoch)
                trial.report(scores[metric], epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at epoch {epoch}: {scores[metric]:.4f}")
                return figures

            try:
                result = fit_model(
                    plan,
                    data.spec,
                    data.train,
                    epochs=train_cfg.epochs,
                    batch_size=train_cfg.batch_size,
                    seed=train_cfg.seed + trial.number,
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


def log_study_plots(study: optuna.Study) -> None:
    """Attach Optuna's optimisation history and parameter importances to the parent run."""
    import mlflow
    from optuna.visualization import plot_optimization_history, plot_param_importances

    mlflow.log_figure(plot_optimization_history(study), "optuna/optimization_history.html")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) >= 2:
        try:
            mlflow.log_figure(plot_param_importances(study), "optuna/param_importances.html")
        except (RuntimeError, ValueError) as err:  # importances need varied params
            mlflow.set_tag("optuna.importance_error", str(err)[:250])


def run_study(
    config: ProjectConfig,
    events: pd.DataFrame,
    data: PreparedData,
    *,
    source: str,
    study_name: str | None = None,
    resume: bool = False,
    register: bool = True,
    warm_start: keras.Model | None = None,
    show_progress: bool = True,
    workers: int = 1,
) -> StudyOutcome:
    """Tune, refit the winner, register it and run the promotion gate.

    Args:
        config: project configuration (``train``, ``registry``, ``paths``).
        events: the canonical events ``data`` was prepared from (baselines read them).
        data: prepared splits and arrays.
        source: where the events came from (logged as the dataset source).
        study_name: Optuna study and MLflow parent-run name (default ``train.study_name``).
        resume: continue an existing study up to ``train.trials`` finished trials.
        register: register the refit model and run the gate.
        warm_start: the champion's model, offered to trials as an initialisation.
        show_progress: Optuna's progress bar.
        workers: processes optimising the study in parallel (1: this process only). The
            coordinator (this call) waits for them, then refits and registers once.

    Returns:
        The outcome, including the gate's decision when ``register``.

    Raises:
        training.outage.ServiceOutage: the tracking server or the database stopped
            answering; the message names it and the step, and how to resume.
    """
    import mlflow

    from training.refit import gate_and_register, refit_best

    name = study_name or config.train.study_name
    paths = config.paths.resolved()
    caution = storage_warning(paths.optuna_storage, paths.tracking_uri, workers)
    if caution:
        warnings.warn(caution, RuntimeWarning, stacklevel=2)
    # A lost tracking server or database stops the job with one clear ServiceOutage.
    with OutageGuard(config, name, stage="opening the study") as guard:
        setup_tracking(config)
        study = open_study(config, name, resume=resume, seed=config.train.seed)
        if resume:
            close_orphan_runs(config, study)
        states = optuna.trial.TrialState
        finished = [t for t in study.trials if t.state in (states.COMPLETE, states.PRUNED)]
        remaining = max(0, config.train.trials - len(finished))
        parent_id = study.user_attrs.get("mlflow_parent_run_id")
        run_name = None if parent_id else f"study-{name}"
        with tracked_run(config, run_id=parent_id, run_name=run_name):
            parent = mlflow.active_run().info.run_id
            if parent_id is None:
                study.set_user_attr("mlflow_parent_run_id", parent)
                mlflow.log_params({"study": name, "trials": config.train.trials})
                mlflow.log_params(finite_metrics(config.train.model_dump(), prefix="train."))
                mlflow.set_tags(fingerprint_tags(data))
                log_data_input(data, source)
            guard.stage = "optimising"
            if workers > 1:
                codes = run_local_workers(
                    config,
                    data,
                    study_name=name,
                    remaining=remaining,
                    workers=workers,
                    warm_start=warm_start,
                )
                mlflow.set_tag("workers.exit_codes", ",".join(map(str, codes)))
            else:
                optimize_shared(
                    config,
                    study,
                    data,
                    n_trials=remaining,
                    warm_start=warm_start,
                    show_progress=show_progress,
                )
            close_orphan_runs(config, study)
            finished = [t for t in study.trials if t.state in (states.COMPLETE, states.PRUNED)]
            complete = [t for t in finished if t.state == states.COMPLETE]
            if not complete:
                raise RuntimeError(f"study {name!r} has no complete trial; nothing to refit")
            log_study_plots(study)
            best = study.best_trial
            mlflow.log_metrics({"best_value": best.value, "n_complete": len(complete)})
            outcome = StudyOutcome(
                study_name=name,
                parent_run_id=parent,
                best_value=float(best.value),
                best_params=dict(best.params),
                n_complete=len(complete),
                n_pruned=len(finished) - len(complete),
            )
            guard.stage = f"refitting trial {best.number}"
            plan = TrialPlan.from_params(best.params)
            epochs = int(best.user_attrs.get("epochs", config.train.epochs))
            outcome.refit = refit_best(
                config, events, data, plan, epochs=epochs, warm_start=warm_start, study_name=name
            )
        if register:
            guard.stage, guard.registering = "registering the refit model", True
            outcome.version, outcome.decision = gate_and_register(
                config, events, data, outcome.refit, study_name=name
            )
    return outcome
