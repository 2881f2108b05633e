"""Refit the winning plan on train+validation, log it as an MLflow model, register, gate.

The logged run holds everything serving and monitoring need (CONTRACT: the ``bundle/``
artifact), the model card with its plots, and the test metrics next to the baselines on
the same split.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import keras
import pandas as pd

from core.arrays import SequenceArrays
from core.config import ProjectConfig
from core.dataset import PreparedData
from core.progress import Say
from evaluation.scoring import score_bundle
from modelkit.registry import download_bundle
from training.ensemble import fit_ensemble
from training.promotion import Candidate, PromotionDecision
from training.registered_run import evaluate_and_log
from training.search import TrialPlan
from training.streamed import fit_inputs, write_streamed
from training.text_data import text_ablation
from training.tracking import fingerprint_tags, finite_metrics, split_hash


@dataclass
class RefitResult:
    """The refit winner and its test-split figures."""

    run_id: str
    model: keras.Model
    plan: TrialPlan
    test_metrics: dict[str, float]
    baselines: dict[str, dict[str, float]]


def refit_best(
    config: ProjectConfig,
    events: pd.DataFrame,
    data: PreparedData,
    plan: TrialPlan,
    *,
    epochs: int,
    warm_start: keras.Model | None,
    study_name: str,
    say: Say | None = None,
) -> RefitResult:
    """Refit ``plan`` on train+validation, evaluate once on test, log everything (nested run).

    ``say`` hears each stage (``fitting: epoch 2/5``, ``scoring the baselines``, ...).
    """
    import mlflow

    say = say or (lambda _text: None)

    def on_epoch(epoch: int, _model: keras.Model) -> dict[str, float]:
        say(f"fitting: epoch {epoch + 1}/{epochs} done")
        return {}

    with mlflow.start_run(run_name="refit-best", nested=True) as run:
        mlflow.log_params(plan.params())
        mlflow.set_tags({**fingerprint_tags(data), "optuna.study": study_name, "role": "refit"})
        trainval = SequenceArrays.concat([data.train, data.val])
        say(f"fitting {epochs} epochs")
        with tempfile.TemporaryDirectory(prefix="shards-") as shards:
            streamed = None
            if config.train.input == "stream":  # tf.data over train + validation shards
                streamed = write_streamed(config, data, Path(shards), refit=True)
            inputs = (
                fit_inputs(config, data, streamed, config.train.seed)
                if streamed
                else {"train": trainval}
            )
            members = config.train.ensemble
            result = fit_ensemble(
                plan,
                data.spec,
                **inputs,
                members=members,
                seed=config.train.seed,
                on_member=(lambda i: say(f"fitting member {i + 1}/{members}"))
                if members > 1
                else None,
                epochs=epochs,
                batch_size=config.train.batch_size,
                pretrain_epochs=config.train.pretrain_epochs,
                warm_start=warm_start,
                on_epoch=on_epoch,
            )
        for epoch, row in enumerate(result.history):
            mlflow.log_metrics(finite_metrics(row, prefix="train_"), step=epoch)
        metrics, baselines = evaluate_and_log(
            config,
            events,
            data,
            result.model,
            plan,
            run_id=run.info.run_id,
            study_name=study_name,
            epochs=epochs,
            warm_start=warm_start,
            say=say,
            trainval=trainval,
            text_comparison=lambda metrics: text_ablation(
                data,
                plan,
                epochs=epochs,
                batch_size=config.train.batch_size,
                seed=config.train.seed,
                metrics=metrics,
                pretrain_epochs=config.train.pretrain_epochs,
            ),
        )
    return RefitResult(run.info.run_id, result.model, plan, metrics, baselines)


def champion_candidate(
    config: ProjectConfig, events: pd.DataFrame, data: PreparedData, version: str
) -> Candidate:
    """Re-score a registered version on ``data``'s test split (its own vocabulary), per sample."""
    from modelkit.bundle import load_bundle

    with tempfile.TemporaryDirectory() as tmp:
        bundle = load_bundle(download_bundle(config, version, Path(tmp)))
        scored = score_bundle(bundle, events, data.splits.test)
    label = f"champion v{version}"
    return Candidate(label, scored.metrics, split_hash(data), version, scored.samples)


def gate_and_register(
    config: ProjectConfig,
    events: pd.DataFrame,
    data: PreparedData,
    refit: RefitResult,
    *,
    study_name: str,
) -> tuple[str, PromotionDecision]:
    """Register the refit run as ``challenger`` and run the promotion gate on it."""
    from training.registry import promote_version, register_run

    version = register_run(config, refit.run_id, study_name=study_name)

    def evaluate(champion: str, _challenger: str) -> Candidate:
        return champion_candidate(config, events, data, champion)

    decision = promote_version(config, str(version.version), evaluate=evaluate)
    return str(version.version), decision
