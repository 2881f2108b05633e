"""Optuna studies of model plans, one MLflow parent run per study, one nested run per trial.

``run_study`` reads top to bottom: prepare data -> open the study and its parent run ->
optimise (suggest -> build -> fit -> report per epoch, prune) -> refit the winner ->
register it as ``challenger`` -> run the promotion gate. Nothing is registered and no
alias moves unless every step before it succeeded.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from typing import Any

import keras
import mlflow
import optuna
import pandas as pd
from optuna.visualization import plot_optimization_history, plot_param_importances

from core.config import ProjectConfig
from core.dataset import PreparedData, prepare_refit_data
from core.progress import progress_enabled, stage_line
from training.outage import OutageGuard, tracked_run
from training.promotion import PromotionDecision
from training.refit import RefitResult, gate_and_register, refit_best
from training.search import TrialPlan
from training.text_data import add_text
from training.tracking import (
    fingerprint_tags,
    flat_params,
    log_data_input,
    log_figure_html,
    setup_tracking,
)
from training.trials import DATA_SOURCE_ATTR, open_study, optimize_shared
from training.workers import close_orphan_runs, run_local_workers, storage_warning


@dataclass
class StudyOutcome:
    """What a tuning job produced."""

    study_name: str
    parent_run_id: str
    best_value: float
    best_params: dict[str, Any]
    n_complete: int
    n_pruned: int
    refit: RefitResult | None = None
    version: str | None = None
    decision: PromotionDecision | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def log_study_plots(study: optuna.Study) -> None:
    """Attach Optuna's optimisation history and parameter importances to the parent run."""
    log_figure_html(plot_optimization_history(study), "optuna/optimization_history.html")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) >= 2:
        try:
            log_figure_html(plot_param_importances(study), "optuna/param_importances.html")
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
    refit_data: PreparedData | None = None,
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
        refit_data: the refit's data when it was prepared already (out of core,
            :mod:`training.stream_data`); default: ``prepare_refit_data`` on ``events``.

    Returns:
        The outcome, including the gate's decision when ``register``.

    Raises:
        training.outage.ServiceOutage: the tracking server or the database stopped
            answering; the message names it and the step, and how to resume.
    """
    name = study_name or config.train.study_name
    paths = config.paths.resolved()
    caution = storage_warning(paths.optuna_storage, paths.tracking_uri, workers)
    if caution:
        warnings.warn(caution, RuntimeWarning, stacklevel=2)
    # A lost tracking server or database stops the job with one clear ServiceOutage.
    with (
        OutageGuard(config, name, stage="opening the study") as guard,
        contextlib.ExitStack() as stack,  # the refit's progress line, until the gate is done
    ):
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
            study.set_user_attr(DATA_SOURCE_ATTR, source)  # every trial run logs it as input
            if parent_id is None:
                study.set_user_attr("mlflow_parent_run_id", parent)
                mlflow.log_params({"study": name, "trials": config.train.trials})
                mlflow.log_params(flat_params(config.train.model_dump(), prefix="train."))
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
            line = stage_line(f"refit of trial {best.number}", progress_enabled(show_progress))
            say = stack.enter_context(line)
            say("preparing train + validation")
            plan = TrialPlan.from_params(best.params)
            epochs = int(best.user_attrs.get("epochs", config.train.epochs))
            # The refit learns on train + validation, so its vocabulary covers both; a warm
            # start keeps the champion's index space.
            if refit_data is None:
                fresh = warm_start is None
                refit_data = prepare_refit_data(events, config, data) if fresh else data
            if data.text is not None and warm_start is None:  # text fitted up to test too
                refit_data = add_text(events, refit_data, config, until="test")
            refit = refit_best(
                config,
                events,
                refit_data,
                plan,
                epochs=epochs,
                warm_start=warm_start,
                study_name=name,
                say=say,
            )
            outcome.refit = refit
        if register:
            guard.stage, guard.registering = "registering the refit model", True
            say("registering it and running the promotion gate")
            outcome.version, outcome.decision = gate_and_register(
                config, events, data, refit, study_name=name
            )
    return outcome
