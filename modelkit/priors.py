"""Heuristic priors as trainable layers: the model starts at the baselines and learns on top.

The heuristics of :mod:`evaluation.baselines` are hard to beat from scratch with a few thousand
samples, so the network's heads are residuals over them:

* :class:`HistoryPrior` scatters the user's own (behaviour-weighted, recency-decayed)
  history into the ``(B, V)`` next-category space, plus a popularity bias;
* :class:`PersistencePrior` turns the period features into the log of a persistence
  distribution over trajectory buckets;
* :class:`ActivityFeatures` exposes the counts and recency the purchase/churn heuristics use.

Registered under the ``interest`` package (imported by :mod:`modelkit.layers`), so saved models
load with ``safe_mode=True``. Shapes: ``B`` batch, ``N`` events, ``V`` categories, ``P``
periods, ``C1`` buckets, ``Bc`` core behaviours.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

_PACKAGE = "interest"
#: Recency channels of the history prior: fixed half-lives (days) mixed by learned weights,
#: so one model fits both hour-scale (Taobao) and month-scale (Tmall) decay.
HALF_LIVES_DAYS: tuple[float, ...] = (0.25, 1.0, 4.0, 16.0, 64.0)
#: Initial behaviour weights by behaviour index (pad, view, fav, cart, buy, search, review):
#: the README's personal-frequency weights.
INITIAL_BEHAVIOR_WEIGHTS: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0, 1.0, 1.0, 1.0)
#: Prior parameters are stored divided by this (Adam's step is scale-free, so they move
#: ``SPEED`` times faster than ordinary weights). Measured on Taobao: 10 pulls the prior
#: away from the heuristic within an epoch (recall 0.38 -> 0.25), so it stays at 1.
SPEED = 1.0
_EPS = 1e-6
#: The next-category gate is stored divided by this, so Adam opens it ``1 / GATE_SPEED``
#: times slower than ordinary weights: on Taobao the learned logits overfit (test recall
#: 0.3885 at the prior -> 0.375 after two epochs at lr 2.7e-3 with a full-speed gate).
GATE_SPEED = 0.1


def _scaled_weight(layer: keras.layers.Layer, name: str, values: list[float]) -> Any:
    init = keras.initializers.Constant([v / SPEED for v in values])
    return layer.add_weight(name=name, shape=(len(values),), initializer=init)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class HistoryPrior(keras.layers.Layer):
    """Personal-frequency-with-decay scores as next-category logits ``(B, V)``.

    For each half-life ``h_k`` the layer sums ``w_beh * 0.5 ** (age_days / h_k)`` over the
    user's events of each category (``s_k``, a scatter into ``(B, V)``), and returns
    ``sum_k a_k log1p(s_k) + b * seen + pop_v``: learned channel weights ``a``, a bonus
    ``b`` for categories in the history and a per-category popularity bias ``pop``
    (set from data by ``training.fit``; zeros otherwise). Padding (``cat == 0``) adds nothing.

    Call: ``(cat (B, N) int, beh (B, N) int, age (B, N) log1p hours)`` -> ``(B, V)``.
    """

    def __init__(self, n_categories: int, n_behaviors: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_categories = n_categories
        self.n_behaviors = n_behaviors

    def build(self, cat_shape: Any, beh_shape: Any = None, age_shape: Any = None) -> None:
        weights = list(INITIAL_BEHAVIOR_WEIGHTS[: self.n_behaviors])
        weights += [1.0] * (self.n_behaviors - len(weights))
        self.behavior_weights = _scaled_weight(self, "behavior_weights", weights)
        k = len(HALF_LIVES_DAYS)
        # Steep enough that small learned logits only reorder near-ties of the history.
        self.channel_weights = _scaled_weight(self, "channel_weights", [1.0] * k)
        self.seen_bonus = _scaled_weight(self, "seen_bonus", [8.0])
        self.popularity = self.add_weight(
            name="popularity", shape=(self.n_categories,), initializer="zeros"
        )

    def call(self, cat: Any, beh: Any, age: Any) -> Any:
        cat = ops.cast(cat, "int32")
        real = ops.cast(ops.not_equal(cat, 0), "float32")
        beh_w = ops.take(ops.relu(self.behavior_weights * SPEED), ops.cast(beh, "int32"))
        days = ops.expm1(ops.cast(age, "float32")) / 24.0
        half = ops.convert_to_tensor(HALF_LIVES_DAYS, dtype="float32")
        decay = ops.power(0.5, days[..., None] / half)  # (B, N, K)
        values = (beh_w * real)[..., None] * decay
        values = ops.concatenate([values, real[..., None]], axis=-1)  # last: seen count
        batch = ops.shape(cat)[0]
        rows = ops.arange(batch, dtype="int32")[:, None] * self.n_categories + cat
        summed = ops.segment_sum(
            ops.reshape(values, (-1, len(HALF_LIVES_DAYS) + 1)),
            ops.reshape(rows, (-1,)),
            num_segments=batch * self.n_categories,
        )
        summed = ops.reshape(summed, (batch, self.n_categories, len(HALF_LIVES_DAYS) + 1))
        channels = ops.log1p(summed[..., :-1])
        seen = ops.cast(summed[..., -1] > 0, "float32")
        scores = ops.tensordot(channels, self.channel_weights * SPEED, axes=1)
        return scores + seen * self.seen_bonus[0] * SPEED + self.popularity

    def compute_output_shape(self, cat_shape: Any, beh_shape: Any, age_shape: Any) -> tuple:
        return (cat_shape[0], self.n_categories)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "n_categories": self.n_categories,
            "n_behaviors": self.n_behaviors,
        }


def persistence_parts(period_dist: Any, period_counts: Any) -> Any:
    """``(B, 3, C1)``: last period's distribution, the count-weighted window's, uniform."""
    counts = ops.sum(ops.expm1(period_counts), axis=-1)  # (B, P) events per period
    window = ops.sum(period_dist * counts[..., None], axis=1)
    window = window / ops.maximum(ops.sum(window, axis=-1, keepdims=True), _EPS)
    last = period_dist[:, -1, :]
    uniform = ops.ones_like(last) / ops.cast(ops.shape(last)[-1], last.dtype)
    return ops.stack([last, window, uniform], axis=1)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PersistencePrior(keras.layers.Layer):
    """Log of a learned mixture of persistence distributions over buckets, ``(B, C1)``.

    Mixes the last period's bucket shares, the whole window's (count-weighted) and the
    uniform distribution with softmax weights (initially 0.6 / 0.35 / 0.05). An empty part
    contributes nothing, so a user silent in the last period falls back to the window.

    Call: ``(period_dist (B, P, C1), period_counts (B, P, Bc))`` -> ``(B, C1)`` log-probs
    up to a per-row constant (use as logits).
    """

    def build(self, period_dist_shape: Any, period_counts_shape: Any = None) -> None:
        init = [float(x) for x in ops.convert_to_numpy(ops.log([0.6, 0.35, 0.05]))]
        self.mix = _scaled_weight(self, "mix", init)

    def call(self, period_dist: Any, period_counts: Any) -> Any:
        parts = persistence_parts(period_dist, period_counts)
        weights = ops.softmax(self.mix * SPEED)
        mixture = ops.einsum("bjc,j->bc", parts, weights)
        return ops.log(mixture + _EPS)

    def compute_output_shape(self, period_dist_shape: Any, period_counts_shape: Any) -> tuple:
        return (period_dist_shape[0], period_dist_shape[-1])


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ActivityFeatures(keras.layers.Layer):
    """Counts and recency for the purchase and churn heads, ``(B, 2 * Bc + 4)``.

    Columns: log1p of each core behaviour's count over the window and in the last period,
    log1p hours since the last event (position ``N - 1``; events are left-padded), log1p
    events in the sequence, the share of non-empty periods and a has-history flag.

    Call: ``(age (B, N), cat (B, N) int, period_counts (B, P, Bc))`` -> ``(B, 2 Bc + 4)``.
    """

    def call(self, age: Any, cat: Any, period_counts: Any) -> Any:
        total = ops.log1p(ops.sum(ops.expm1(period_counts), axis=1))
        last = period_counts[:, -1, :]
        real = ops.cast(ops.not_equal(cat, 0), "float32")
        n_events = ops.sum(real, axis=1, keepdims=True)
        has = ops.cast(n_events > 0, "float32")
        active = ops.cast(ops.sum(period_counts, axis=-1) > 0, "float32")
        share = ops.mean(active, axis=1, keepdims=True)
        recency = ops.cast(age[:, -1:], "float32")
        return ops.concatenate([total, last, recency, ops.log1p(n_events), share, has], axis=-1)

    def compute_output_shape(
        self, age_shape: Any, cat_shape: Any, period_counts_shape: Any
    ) -> tuple:
        return (age_shape[0], 2 * period_counts_shape[-1] + 4)


#: Hours standing in for "since the last event" when a user has none (ten years): such a
#: user is the likeliest to churn, as in the heuristic.
NO_HISTORY_HOURS = 24.0 * 3650.0


@keras.saving.register_keras_serializable(package=_PACKAGE)
class HeuristicFeatures(keras.layers.Layer):
    """The purchase and churn heuristics' inputs, ``(B, 2)``.

    Column 0: log1p of past carts + buys over the window (core behaviours 2 and 3);
    column 1: log1p hours since the last event (``NO_HISTORY_HOURS`` without events).

    Call: ``(age (B, N), cat (B, N) int, period_counts (B, P, Bc))`` -> ``(B, 2)``.
    """

    def call(self, age: Any, cat: Any, period_counts: Any) -> Any:
        counts = ops.sum(ops.expm1(period_counts[..., 2:4]), axis=(1, 2))
        has = ops.any(ops.not_equal(cat, 0), axis=1)
        none = ops.full_like(counts, math.log1p(NO_HISTORY_HOURS))
        recency = ops.where(has, ops.cast(age[:, -1], "float32"), none)
        return ops.stack([ops.log1p(counts), recency], axis=-1)

    def compute_output_shape(
        self, age_shape: Any, cat_shape: Any, period_counts_shape: Any
    ) -> tuple:
        return (age_shape[0], 2)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class HeuristicLogit(keras.layers.Layer):
    """``scale * x[:, column] + bias`` as a ``(B, 1)`` logit: a 1-D logistic heuristic.

    ``scale`` and ``bias`` start at ``(1, 0)``; ``training.fit.initialise_priors`` sets
    them from a logistic fit on the training labels, so the head starts at the heuristic.
    """

    def __init__(self, column: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.column = column

    def build(self, features_shape: Any) -> None:
        self.scale = self.add_weight(name="scale", shape=(), initializer="ones")
        self.bias = self.add_weight(name="bias", shape=(), initializer="zeros")

    def call(self, features: Any) -> Any:
        return features[:, self.column : self.column + 1] * self.scale + self.bias

    def compute_output_shape(self, features_shape: Any) -> tuple:
        return (features_shape[0], 1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "column": self.column}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ScalarGate(keras.layers.Layer):
    """Standardises each row of its input, then multiplies it by one learned scalar.

    Gates the learned next-category logits over the history prior. Per-row standardising
    (zero mean, unit deviation over the last axis) leaves the gate alone to set their
    scale: the learned weights cannot grow the logits past it. Starting near 0, the model
    starts at the prior and training opens the gate only as far as it lowers the loss.
    """

    def __init__(self, initial: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.initial = float(initial)

    def build(self, input_shape: Any) -> None:
        init = keras.initializers.Constant(self.initial / GATE_SPEED)
        self.gate = self.add_weight(name="gate", shape=(), initializer=init)

    def call(self, x: Any) -> Any:
        x = x - ops.mean(x, axis=-1, keepdims=True)
        x = x / (ops.std(x, axis=-1, keepdims=True) + _EPS)
        return x * (self.gate * GATE_SPEED)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "initial": self.initial}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ListwiseLoss(keras.losses.Loss):
    """Softmax cross-entropy of ``(B, V)`` probabilities against the normalised multi-hot.

    Each sample's target is its horizon categories with equal mass; a sample with none
    (a churned user) contributes zero. Ranks better than per-category binary cross-entropy
    because every category competes for the same probability mass.
    """

    def __init__(self, name: str = "listwise", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_true = ops.cast(y_true, y_pred.dtype)
        total = ops.sum(y_true, axis=-1, keepdims=True)
        target = y_true / ops.maximum(total, 1.0)
        return -ops.sum(target * ops.log(ops.clip(y_pred, 1e-12, 1.0)), axis=-1)
