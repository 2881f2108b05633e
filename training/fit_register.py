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

from core.arrays import SequenceArrays
from core.config import ProjectConfig
from evaluation.samples import score_predictions
from eventlogs.subset import load_user_events
from training.contenders import log_samples
from training.fit import predict_arrays
from training.promotion import PromotionDecision
from training.refit import (
    RefitResult,
    calibrate,
    gate_and_register,
    log_model_artifacts,
    reference_profile,
    run_baselines,
)
from training.search import TrialPlan
from training.stream_data import data_from_shards, sample_share
from training.tracking import (
    baseline_metrics,
    fingerprint_tags,
    finite_metrics,
    log_data_input,
    setup_tracking,
    split_hash,
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
        raw = predict_arrays(model, data.test)
        calibration, pred, calibration_metrics = calibrate(config, data, plan, epochs, raw)
        metrics = {**score_predictions(pred, data.test).metrics, **calibration_metrics}
        suite = run_baselines(config, events, data, data.test)
        mlflow.log_params(suite.flat_params())
        mlflow.log_metrics(finite_metrics(metrics))
        mlflow.log_metrics(baseline_metrics(suite.metrics))
        log_samples(data.test, pred, suite.preds)
        metadata = {
            "model_name": config.registry.model_name,
            "run_id": run.info.run_id,
            "study": name,
            "metrics": finite_metrics(metrics),
            "fingerprint": data.fingerprint.to_dict(),
            "split_hash": split_hash(data),
            "plan": plan.params(),
            "calibration": calibration,
        }
        trainval = SequenceArrays.concat([data.train, data.val])
        log_model_artifacts(
            config,
            model,
            data,
            metadata=metadata,
            reference=reference_profile(model, data, trainval),
            card={
                "pred": pred,
                "baseline_pred": suite.preds,
                "metrics": metrics,
                "baselines": suite.metrics,
                "params": plan.params(),
                "study": name,
                "baseline_params": suite.params,
                "calibration": calibration,
            },
        )
    refit = RefitResult(run.info.run_id, model, plan, metrics, suite.metrics)
    version, decision = gate_and_register(config, events, data, refit, study_name=name)
    return FitRegistration(run.info.run_id, version, decision, metrics, suite.metrics)
