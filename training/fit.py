"""Fit one plan: build, initialise (scratch, pre-trained or warm-started), train, predict.

Prediction goes through a compiled ``tf.function`` in fixed-size chunks
(:func:`predict_arrays`), never ``model.predict``: the same path the service uses.
"""

from __future__ import annotations

import contextlib
import time
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from core.arrays import FeatureSpec, SequenceArrays
from modelkit.builder import build_model, compile_model
from modelkit.bundle import Predictor
from modelkit.ensemble import first_member
from modelkit.layers import HeuristicFeatures
from training.headfit import init_linear_heads
from training.pretrain import (
    build_pretrain_model,
    compile_pretrain_model,
    make_pretrain_arrays,
    transfer_encoder_weights,
)
from training.search import TrialPlan

if TYPE_CHECKING:
    import tensorflow as tf

EpochHook = Callable[[int, keras.Model], dict[str, float]]


@dataclass
class FitResult:
    """A trained model and what happened while training it."""

    model: keras.Model
    history: list[dict[str, float]] = field(default_factory=list)
    transferred_layers: int = 0
    seconds: float = 0.0
    pretrain_seconds: float = 0.0

    @property
    def epochs(self) -> int:
        """Epochs actually run (fewer than asked when pruned)."""
        return len(self.history)


def fit_targets(arrays: SequenceArrays) -> dict[str, np.ndarray]:
    """Labels shaped like the model outputs (``buy``/``churn`` as ``(n, 1)``)."""
    labels = arrays.labels()
    return {
        "next_cats": labels["next_cats"],
        "buy": labels["buy"].reshape(-1, 1),
        "churn": labels["churn"].reshape(-1, 1),
        "trajectory": labels["trajectory"],
    }


class _EpochCallback(keras.callbacks.Callback):
    """Runs ``hook`` after each epoch and merges its figures into the epoch logs."""

    def __init__(self, hook: EpochHook, history: list[dict[str, float]]) -> None:
        super().__init__()
        self._hook = hook
        self._history = history

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        row = {k: float(v) for k, v in (logs or {}).items()}
        row.update(self._hook(epoch, self.model))
        self._history.append(row)


def fit_logistic_1d(x: np.ndarray, y: np.ndarray, *, l2: float = 1e-3) -> tuple[float, float]:
    """``(scale, bias)`` of a ridge-regularised 1-D logistic regression (Newton steps).

    One-class labels give ``scale = 0`` and the smoothed log-odds of the rate as bias.
    """
    x = np.asarray(x, np.float64).ravel()
    y = np.asarray(y, np.float64).ravel()
    rate = (y.sum() + 0.5) / (len(y) + 1.0)
    w = np.array([0.0, np.log(rate / (1 - rate))])
    if len(y) == 0 or y.min() == y.max():
        return 0.0, float(w[1])
    design = np.stack([x, np.ones_like(x)], axis=1)
    for _ in range(25):
        p = 1.0 / (1.0 + np.exp(-(design @ w)))
        grad = design.T @ (p - y) + l2 * np.array([w[0], 0.0])
        hess = (design * (p * (1 - p))[:, None]).T @ design + l2 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return float(w[0]), float(w[1])


def repeat_share(arrays: SequenceArrays) -> float:
    """Mean share of a sample's horizon categories already named in its history.

    The listwise target spreads each sample's mass evenly over its truth, so this is the
    mass a perfect repeat/explore gate would give the copy part on average (samples
    without truth or without history are left out; 0.5 when none is left).
    """
    truth = np.asarray(arrays.next_cats) > 0
    seen = np.zeros_like(truth)
    np.put_along_axis(seen, np.asarray(arrays.cat, dtype=np.int64), True, axis=1)
    seen[:, :2] = False  # padding and OOV name no category
    keep = truth.any(axis=1) & seen.any(axis=1)
    if not keep.any():
        return 0.5
    return float(((truth & seen)[keep].sum(axis=1) / truth[keep].sum(axis=1)).mean())


def popularity_rows(train: SequenceArrays, source: str) -> np.ndarray:
    """Boolean mask of the samples whose labels set the popularity prior.

    ``"all"``: every sample; ``"latest"``: the samples of the latest cutoff only (their
    horizon is the one nearest the cutoffs the model will score).
    """
    if source == "all" or len(train) == 0:
        return np.ones(len(train), dtype=bool)
    if source != "latest":
        raise ValueError(f"popularity source must be 'all' or 'latest', got {source!r}")
    cutoffs = np.asarray(train.cutoff)
    return cutoffs == cutoffs.max()


def _logit(p: float) -> float:
    p = min(max(p, 1e-3), 1 - 1e-3)
    return float(np.log(p / (1 - p)))


def initialise_priors(model: keras.Model, plan: TrialPlan, train: SequenceArrays) -> bool:
    """Start the prior layers at the heuristics fitted on the training labels.

    Few gradient steps cannot learn thousands of biases, so the history prior's popularity
    starts where the popularity baseline is (log share for the softmax output, log-odds for
    sigmoid; the mixture head's generator gets the same log shares and its repeat gate the
    log-odds of :func:`repeat_share`). The ``buy``/``churn`` heuristic logits get a 1-D
    logistic fit of the labels on their heuristic input, so the untrained heads reproduce
    the heuristics' ranking.
    Returns whether any prior was initialised.
    """
    names = {layer.name for layer in model.layers}
    if train.next_cats is None:
        return False
    done = False
    if "history_prior" in names:
        rows = popularity_rows(train, plan.model.popularity_from)
        counts = np.asarray(train.next_cats[rows], dtype=np.float64).sum(axis=0)
        rate = (counts + 0.1) / (int(rows.sum()) + 0.2)
        if plan.model.next_cats_loss == "softmax":
            bias = np.log(rate / rate.sum())
        else:
            bias = np.log(rate) - np.log1p(-np.minimum(rate, 1 - 1e-6))
        model.get_layer("history_prior").popularity.assign(bias.astype(np.float32))
        done = True
    if "repeat_gate" in names:
        model.get_layer("next_cats").popularity.assign(bias.astype(np.float32))
        gate = model.get_layer("repeat_gate")
        gate.bias.assign(np.full((1,), _logit(repeat_share(train)), np.float32))
    if "head_features" in names:  # ModelConfig.linear_heads: modelkit.heads.LinearLogit
        init_linear_heads(model, train)
        done = True
    elif "buy_prior" in names:
        features = np.asarray(HeuristicFeatures()(train.age, train.cat, train.period_counts))
        labels = train.labels()
        for column, head in enumerate(("buy", "churn")):
            scale, bias = fit_logistic_1d(features[:, column], labels[head])
            layer = model.get_layer(f"{head}_prior")
            layer.scale.assign(scale)
            layer.bias.assign(bias)
        done = True
    return done


def initialise(
    plan: TrialPlan,
    model: keras.Model,
    spec: FeatureSpec,
    train: SequenceArrays,
    *,
    batch_size: int,
    pretrain_epochs: int,
    warm_start: keras.Model | None,
) -> tuple[int, float]:
    """Apply the plan's transfer learning to ``model``; returns (layers copied, seconds)."""
    start = time.perf_counter()
    if plan.init == "pretrain" and pretrain_epochs > 0:
        pre = compile_pretrain_model(build_pretrain_model(plan.model, spec), plan.model)
        x, y = make_pretrain_arrays(train)
        pre.fit(x, y, batch_size=batch_size, epochs=pretrain_epochs, verbose=0)
        return transfer_encoder_weights(pre, model), time.perf_counter() - start
    if plan.init == "warm_start":
        if warm_start is None:
            raise ValueError("plan asks for a warm start but no champion model was given")
        # An ensemble champion (modelkit.ensemble) lends its first member's weights.
        source = first_member(warm_start)
        return transfer_encoder_weights(source, model), time.perf_counter() - start
    return 0, 0.0


def fit_model(
    plan: TrialPlan,
    spec: FeatureSpec,
    train: SequenceArrays,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    pretrain_epochs: int = 1,
    warm_start: keras.Model | None = None,
    on_epoch: EpochHook | None = None,
    stream: tf.data.Dataset | None = None,
    strategy: tf.distribute.Strategy | None = None,
) -> FitResult:
    """Build and train the plan's model on ``train`` (or on ``stream``).

    Args:
        plan: architecture and initialisation.
        spec: feature sizes.
        train: labelled samples.
        epochs: training epochs.
        batch_size: minibatch size.
        seed: seeds Python, NumPy and the backend for a reproducible run.
        pretrain_epochs: epochs of self-supervised pre-training when ``plan.init`` is
            ``pretrain``.
        warm_start: the champion's model for ``plan.init == "warm_start"``.
        on_epoch: called after each epoch with ``(epoch, model)``; its figures join the
            history, and it may raise (e.g. ``optuna.TrialPruned``) to stop.
        stream: train on these ``(inputs, targets)`` batches
            (:func:`training.stream_input.shard_dataset`) instead of ``train``'s arrays;
            ``train`` is then a bounded sample for the priors and pre-training.
        strategy: build and train under this ``tf.distribute`` strategy (e.g.
            ``MultiWorkerMirroredStrategy``; ``batch_size`` is then the global batch).

    Returns:
        The trained model with its per-epoch history.
    """
    keras.utils.set_random_seed(seed)
    # Keras 3 reads the strategy from the scope when fit starts, not from the model.
    scope = strategy.scope if strategy is not None else contextlib.nullcontext
    with scope():
        model = compile_model(build_model(plan.model, spec), plan.model)
        result = FitResult(model=model)
        initialise_priors(model, plan, train)
        result.transferred_layers, result.pretrain_seconds = initialise(
            plan,
            model,
            spec,
            train,
            batch_size=batch_size,
            pretrain_epochs=pretrain_epochs,
            warm_start=warm_start,
        )
    callbacks = [_EpochCallback(on_epoch or (lambda _e, _m: {}), result.history)]
    start = time.perf_counter()
    if stream is not None:
        # The streamed dataset's length is unknown to Keras (shards read block by block, a
        # user share filtered on the fly), so the end of the first epoch raises Keras's
        # "input ran out of data" UserWarning although every epoch streams the same samples.
        with scope(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            model.fit(stream, epochs=epochs, shuffle=False, verbose=0, callbacks=callbacks)
    else:
        # Only the inputs this model reads (data with text also feeds text-free plans).
        names = {t.name for t in model.inputs}
        model.fit(
            {k: v for k, v in train.inputs().items() if k in names},
            fit_targets(train),
            batch_size=batch_size,
            epochs=epochs,
            shuffle=True,
            verbose=0,
            callbacks=callbacks,
        )
    result.seconds = time.perf_counter() - start
    return result


_PREDICTORS: weakref.WeakKeyDictionary[keras.Model, Predictor] = weakref.WeakKeyDictionary()


def predict_inputs(model: keras.Model, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Predict ``inputs`` through the compiled serving function (not ``model.predict``).

    The compiled function is cached per model, so per-epoch validation traces it once.
    """
    predictor = _PREDICTORS.get(model)
    if predictor is None:
        predictor = _PREDICTORS[model] = Predictor(model)
    return predictor.predict(inputs)


def predict_arrays(model: keras.Model, arrays: SequenceArrays) -> dict[str, np.ndarray]:
    """Predict every sample of ``arrays`` (see :func:`predict_inputs`)."""
    return predict_inputs(model, arrays.inputs())
