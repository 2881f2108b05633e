"""Register a model fitted on feature shards (``interest fit --register``), out of core.

The same registration as ``interest tune``'s refit (:mod:`training.refit`): one MLflow run
with the plan as params, the test metrics next to every baseline on the same samples, the
per-sample scores the gate's paired bootstrap reads, the bundle, the events-in pyfunc and
the model card; then :func:`training.refit.gate_and_register` registers the version as
``challenger`` and the promotion gate decides whether it becomes ``champion``.

Nothing here loads the log whole: the test samples and the raw events the baselines and the
gate read are those of a hash-chosen user share (:mod:`training.stream_data`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras

from core.config import ProjectConfig
from eventlogs.subset import load_user_events
from training.promotion import PromotionDecision
from training.refit import RefitResult, gate_and_register
from training.registered_run import evaluate_and_log
from training.search import TrialPlan
from training.stream_data import data_from_shards, sample_share
from training.tracking import (
    fingerprint_tags,
    finite_metrics,
    log_data_input,
    setup_tracking,
)


@dataclass
class FitRegistration:
    """The registered version of a shard fit and the gate's decision."""

    run_id: str
    version: str
    decision: PromotionDecision
    test_metrics: dict[str, float]
    baselines: dict[str, dict[str, float]]


def register_fit(
    config: ProjectConfig,
    model: keras.Model,
    plan: TrialPlan,
    shards: Path,
    source: Path,
    *,
    epochs: int,
    history: list[dict[str, float]],
    name: str = "fit",
    max_rows: int | None = None,
) -> FitRegistration:
    """Evaluate ``model`` on ``shards``' test split, log it like a refit, register, gate.

    Args:
        config: project configuration (``registry``, ``paths``, ``train``).
        model: the fitted model (trained on ``shards``' train + validation).
        plan: its architecture parameters (logged as params).
        shards: output of ``interest data features --streaming`` the model was fitted on.
        source: the canonical event log the shards were built from (baselines, gate).
        epochs: epochs fitted (logged).
        history: per-epoch training metrics (logged per step).
        name: MLflow run name and the ``optuna.study`` tag the registry records.
        max_rows: about how many test samples to score (sizes the user share; default
            ``train.eval_samples``).

    Raises:
        DataValidationError: the log is unreadable.
    """
    import mlflow

    max_rows = max_rows or config.train.eval_samples
    share = sample_share(shards, max_rows)
    data = data_from_shards(shards, share, max_rows)
    events = load_user_events(source, config.data, share, work_dir=shards).events
    setup_tracking(config)
    with mlflow.start_run(run_name=name) as run:
        mlflow.log_params({**plan.params(), "epochs": epochs, "user_share": share})
        mlflow.set_tags({**fingerprint_tags(data), "optuna.study": name, "role": "fit"})
        log_data_input(data, str(source))
        for epoch, row in enumerate(history):
            mlflow.log_metrics(finite_metrics(row, prefix="train_"), step=epoch)
        metrics, baselines = evaluate_and_log(
            config,
            events,
            data,
            model,
            plan,
            run_id=run.info.run_id,
            study_name=name,
            epochs=epochs,
        )
    refit = RefitResult(run.info.run_id, model, plan, metrics, baselines)
    version, decision = gate_and_register(config, events, data, refit, study_name=name)
    return FitRegistration(run.info.run_id, version, decision, metrics, baselines)
