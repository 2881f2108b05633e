"""Refit the winning plan on train+validation, log it as an MLflow model, register, gate.

The logged run holds everything serving and monitoring need (CONTRACT: the ``bundle/``
artifact), the model card with its plots, and the test metrics next to the baselines on
the same split.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from core.arrays import SequenceArrays
from core.config import ProjectConfig
from core.dataset import PreparedData
from core.predlog import prediction_columns
from core.profile import summarize_arrays
from core.progress import Say
from core.textstats import text_profile
from evaluation.calibration import calibrate_heads, expected_calibration_error
from evaluation.samples import score_predictions
from evaluation.scoring import score_bundle
from evaluation.suite import BaselineSuite, run_baseline_suite
from modelkit.bundle import save_bundle
from modelkit.registry import download_bundle
from modelkit.text_layers import reads_text
from training.card import save_plots, write_card
from training.contenders import log_samples
from training.ensemble import fit_ensemble
from training.fit import fit_model, predict_arrays
from training.promotion import Candidate, PromotionDecision
from training.search import TrialPlan
from training.streamed import fit_inputs, write_streamed
from training.text_data import text_ablation
from training.tracking import baseline_metrics, fingerprint_tags, finite_metrics, split_hash


@dataclass
class RefitResult:
    """The refit winner and its test-split figures."""

    run_id: str
    model: keras.Model
    plan: TrialPlan
    test_metrics: dict[str, float]
    baselines: dict[str, dict[str, float]]


def run_baselines(
    config: ProjectConfig, events: pd.DataFrame, data: PreparedData, arrays: SequenceArrays
) -> BaselineSuite:
    """Every baseline on ``arrays``, heuristics tuned on ``data.val``, scored like the model."""
    return run_baseline_suite(
        events,
        arrays,
        data.vocab,
        config.features.horizon,
        val=data.val,
        pop_window=config.train.baseline_pop_window,
        half_life_days=config.train.baseline_half_life_days,
        seed=config.train.seed,
    )


def calibrate(
    config: ProjectConfig,
    data: PreparedData,
    plan: TrialPlan,
    epochs: int,
    test_pred: dict[str, np.ndarray],
    warm_start: keras.Model | None = None,
) -> tuple[dict[str, Any] | None, dict[str, np.ndarray], dict[str, float]]:
    """Fit purchase/churn calibration on validation, apply it to ``test_pred``.

    The refit model trained on validation, so its validation probabilities are in-sample;
    a twin of the plan fitted on train only gives out-of-sample ones to calibrate on. Off by
    default (``train.calibrate``): it costs a second fit, and on the shared samples a map
    fitted on validation made test ECE worse in 3 of 4 heads (base rates move between the
    periods); without it the raw probabilities' ECE is still reported.
    """
    if not config.train.calibrate:
        labels = data.test.labels()
        ece = {
            f"{head}_ece": expected_calibration_error(
                np.ravel(labels[head]), np.ravel(test_pred[head])
            )
            for head in ("buy", "churn")
        }
        return None, test_pred, ece
    twin = fit_model(
        plan,
        data.spec,
        data.train,
        epochs=epochs,
        batch_size=config.train.batch_size,
        seed=config.train.seed,
        pretrain_epochs=config.train.pretrain_epochs,
        warm_start=warm_start,
    )
    val_pred = predict_arrays(twin.model, data.val)
    return calibrate_heads(val_pred, data.val.labels(), test_pred, data.test.labels())


def reference_profile(
    model: keras.Model, data: PreparedData, arrays: SequenceArrays
) -> pd.DataFrame:
    """Monitoring's reference: behaviour profile of ``arrays`` plus the model's predictions.

    Built from the refit's own training samples (train + validation cutoffs), so drift is
    measured against exactly what the served model learned from.
    """
    profile = summarize_arrays(arrays, data.vocab.decode)
    texts = text_profile(arrays)  # text summaries, for models with a text channel
    if texts is not None and reads_text(model):
        profile = pd.concat([profile, texts], axis=1)
    # The same function serving ranks with: reference and log name and compute them alike.
    return profile.assign(**prediction_columns(predict_arrays(model, arrays), data.vocab.decode))


def log_model_artifacts(
    config: ProjectConfig,
    model: keras.Model,
    data: PreparedData,
    *,
    metadata: dict[str, Any],
    reference: pd.DataFrame,
    card: dict[str, Any],
) -> None:
    """Log the bundle, the events-in MLflow model (signature, example) and the model card."""
    import mlflow

    from modelkit.pyfunc import example_events, log_events_model

    example = {k: v[:2] for k, v in data.test.inputs().items()}
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "bundle"
        text = data.text if reads_text(model) else None
        save_bundle(
            bundle, model, data.vocab, config.features, data.spec, metadata, reference, text=text
        )
        (bundle / "input_example.json").write_text(
            json.dumps({k: v.tolist() for k, v in example.items()})
        )
        mlflow.log_artifacts(str(bundle), "bundle")
        # The registered model (modelkit.pyfunc): raw events in, the prediction table out.
        cutoff = pd.Timestamp(data.test.cutoff[0], tz="UTC")
        log_events_model(bundle, example_events(data.vocab, cutoff), top_k=config.serving.top_k)
        card_dir = Path(tmp) / "card"
        plots = save_plots(
            card["pred"],
            card["baseline_pred"],
            data.test,
            data.vocab.bucket_names(data.spec.n_buckets),
            card_dir,
        )
        write_card(
            card_dir / "model_card.md",
            title=f"{config.registry.model_name} (refit of {card['study']})",
            model_metrics=card["metrics"],
            baselines=card["baselines"],
            params=card["params"],
            fingerprint=data.fingerprint.to_dict(),
            plots=plots,
            baseline_params=card.get("baseline_params"),
            calibration=card.get("calibration"),
            text_comparison=card.get("text_comparison"),
        )
        mlflow.log_artifacts(str(card_dir), "card")


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
        say("scoring the test split")
        raw = predict_arrays(result.model, data.test)
        calibration, pred, calibration_metrics = calibrate(
            config, data, plan, epochs, raw, warm_start
        )
        # score_predictions adds the repeat/explore recall split to the mean metrics.
        metrics = {**score_predictions(pred, data.test).metrics, **calibration_metrics}
        say("scoring the baselines on the same split")
        suite = run_baselines(config, events, data, data.test)
        baseline_pred, baselines = suite.preds, suite.metrics
        mlflow.log_params(suite.flat_params())
        mlflow.log_metrics(finite_metrics(metrics))
        mlflow.log_metrics(baseline_metrics(baselines))
        log_samples(data.test, pred, baseline_pred)  # what the gate's paired bootstrap reads
        metadata = {
            "model_name": config.registry.model_name,
            "run_id": run.info.run_id,
            "study": study_name,
            "metrics": finite_metrics(metrics),
            "fingerprint": data.fingerprint.to_dict(),
            "split_hash": split_hash(data),
            "plan": plan.params(),
            # Serving maps raw buy/churn through evaluation.calibration.apply_calibration.
            "calibration": calibration,
        }
        say("logging the bundle, the MLflow model and the model card")
        log_model_artifacts(
            config,
            result.model,
            data,
            metadata=metadata,
            reference=reference_profile(result.model, data, trainval),
            card={
                "pred": pred,
                "baseline_pred": baseline_pred,
                "metrics": metrics,
                "baselines": baselines,
                "params": plan.params(),
                "study": study_name,
                "baseline_params": suite.params,
                "calibration": calibration,
                "text_comparison": text_ablation(
                    data,
                    plan,
                    epochs=epochs,
                    batch_size=config.train.batch_size,
                    seed=config.train.seed,
                    metrics=metrics,
                    pretrain_epochs=config.train.pretrain_epochs,
                ),
            },
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
