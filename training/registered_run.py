"""Score a fitted model for registration and log it: what every registered run holds.

One step for the refit of ``interest tune`` (:mod:`training.refit`) and for ``interest fit
--register`` (:mod:`training.fit_register`): calibrated test metrics, every baseline on the
same samples, the per-sample scores the gate's paired bootstrap reads, the bundle (CONTRACT),
the events-in MLflow model and the model card.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
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
from evaluation.demand import demand_table, demand_wapes
from evaluation.samples import score_predictions
from evaluation.suite import BaselineSuite, run_baseline_suite
from modelkit.bundle import save_bundle
from modelkit.text_layers import reads_text
from training.card import save_plots, write_card
from training.contenders import log_samples
from training.fit import fit_model, predict_arrays
from training.search import TrialPlan
from training.tracking import baseline_metrics, finite_metrics, split_hash


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


def demand_at_test(
    config: ProjectConfig, events: pd.DataFrame, data: PreparedData, pred: dict[str, np.ndarray]
) -> dict[str, Any]:
    """The category demand forecast for the period after the test cutoff, and its WAPEs.

    ``pred`` are the model's outputs on ``data.test`` (every user with history at the test
    cutoff); ``wapes`` holds ``demand_wape`` and ``demand_wape_persistence`` (all buckets).
    """
    cutoff = pd.Timestamp(data.splits.test)
    cutoff = cutoff.tz_localize("UTC") if cutoff.tzinfo is None else cutoff.tz_convert("UTC")
    period = config.features.period
    table = demand_table(
        pred, data.test.period_counts, events, data.vocab, data.spec.n_buckets, cutoff, period
    )
    wapes = demand_wapes(table)
    return {
        "table": table,
        "cutoff": str(cutoff),
        "period": period,
        "wapes": {"demand_wape": wapes["model"], "demand_wape_persistence": wapes["persistence"]},
    }


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
            demand=card["demand"]["table"],
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
            demand=card["demand"],
        )
        mlflow.log_artifacts(str(card_dir), "card")


def evaluate_and_log(
    config: ProjectConfig,
    events: pd.DataFrame,
    data: PreparedData,
    model: keras.Model,
    plan: TrialPlan,
    *,
    run_id: str,
    study_name: str,
    epochs: int,
    warm_start: keras.Model | None = None,
    say: Say | None = None,
    text_comparison: Callable[[dict[str, float]], Any] | None = None,
    trainval: SequenceArrays | None = None,
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Score a fitted model and every baseline on ``data.test``, log it all to the active run.

    The one evaluation-and-logging step of a model that is to be registered (the refit of
    ``interest tune``, ``interest fit --register``): calibrated test metrics, the baselines
    on the same samples, the per-sample scores the gate's paired bootstrap reads, then the
    bundle, the events-in MLflow model and the model card. ``events`` are the raw events of
    ``data``'s users (the baselines count them). ``text_comparison`` computes the card's
    with/without-text table from the test metrics (skipped when None). ``trainval``: the
    samples the model was fitted on, monitoring's reference (default: ``data.train`` +
    ``data.val``; the refit passes its own so the arrays are not concatenated twice).

    Returns:
        The test metrics and the baselines' metrics.
    """
    import mlflow

    say = say or (lambda _text: None)
    say("scoring the test split")
    raw = predict_arrays(model, data.test)
    calibration, pred, calibration_metrics = calibrate(config, data, plan, epochs, raw, warm_start)
    # score_predictions adds the repeat/explore recall split to the mean metrics.
    metrics = {**score_predictions(pred, data.test).metrics, **calibration_metrics}
    say("scoring the baselines on the same split")
    suite = run_baselines(config, events, data, data.test)
    mlflow.log_params(suite.flat_params())
    demand = demand_at_test(config, events, data, pred)
    metrics.update(demand["wapes"])
    mlflow.log_metrics(finite_metrics(metrics))
    mlflow.log_metrics(baseline_metrics(suite.metrics))
    log_samples(data.test, pred, suite.preds)  # what the gate's paired bootstrap reads
    metadata = {
        "model_name": config.registry.model_name,
        "run_id": run_id,
        "study": study_name,
        "metrics": finite_metrics(metrics),
        "fingerprint": data.fingerprint.to_dict(),
        "split_hash": split_hash(data),
        "plan": plan.params(),
        # Serving maps raw buy/churn through evaluation.calibration.apply_calibration.
        "calibration": calibration,
    }
    say("logging the bundle, the MLflow model and the model card")
    if trainval is None:
        trainval = SequenceArrays.concat([data.train, data.val])
    card = {
        "pred": pred,
        "baseline_pred": suite.preds,
        "metrics": metrics,
        "baselines": suite.metrics,
        "params": plan.params(),
        "study": study_name,
        "baseline_params": suite.params,
        "calibration": calibration,
        "demand": demand,
    }
    if text_comparison is not None:
        card["text_comparison"] = text_comparison(metrics)
    log_model_artifacts(
        config,
        model,
        data,
        metadata=metadata,
        reference=reference_profile(model, data, trainval),
        card=card,
    )
    return metrics, suite.metrics
