"""Repeat/explore mixture head for ``next_cats``: copy from the history or generate.

RepeatNet (AAAI 2019) and Taobao's ULIM pointer-generator split the next-category
distribution into a *repeat* part, which can only name categories of the user's own
history, and an *explore* part over the whole vocabulary, mixed by a learned per-user gate::

    next_cats = p_repeat * copy + (1 - p_repeat) * generate

* ``copy`` (:class:`CopyDistribution`): softmax over the categories present in the history
  of ``history_prior + pointer``, where the history prior is the decayed, behaviour-weighted
  frequency of :class:`modelkit.priors.HistoryPrior` and ``pointer`` is the mean over the
  category's events of a learned score of the encoder output at that event (zero-initialised,
  so the copy part starts at the heuristic) and the prior's scale ``sharpness`` is learned.
  Padding (0), OOV (1) and categories absent from
  the history get exactly zero copy mass; a user without history has an all-zero copy row.
* ``generate``: softmax over all non-padding indices of the learned logits plus a
  per-category popularity bias (set from the training labels by ``training.fit``); OOV (1)
  keeps generator mass because a horizon can hold categories the vocabulary cannot name.
* ``p_repeat = sigmoid(gate_logit)`` (0 for a user without history), so the generator's
  mass sums to ``1 - p_repeat`` and each row sums to 1.

The output is a probability vector, so :class:`modelkit.priors.ListwiseLoss` applies as is.
Registered under the ``interest`` package (imported by :mod:`modelkit.layers`), so saved
models load with ``safe_mode=True``. Shapes: ``B`` batch, ``N`` events, ``D`` encoder
width, ``V`` categories.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import KerasTensor, ops

from core.arrays import FeatureSpec
from modelkit.priors import HistoryPrior

_PACKAGE = "interest"
_NEG = -1e9  # additive mask before softmax; finite so empty rows stay NaN-free
#: Indices below this (padding, OOV) never name a history category.
FIRST_NAMED = 2
#: Initial scale of the history prior inside the copy softmax. The prior sums five decay
#: channels of log1p(weighted count), so at scale 1 the copy mass grows like count**5 and
#: sits on the top one or two history categories; 0.2 starts it near proportional to the
#: decayed count, which keeps the rest of the history above the generator's picks.
COPY_SHARPNESS = 0.2


def history_presence(cat: Any, n_categories: int) -> tuple[Any, Any]:
    """Per-category event counts ``(B, V)`` of the history and its ``(B, V)`` float mask.

    Only named categories count: padding and OOV events (``cat < 2``) add nothing.
    """
    cat = ops.cast(cat, "int32")
    named = ops.cast(cat >= FIRST_NAMED, "float32")
    batch = ops.shape(cat)[0]
    rows = ops.reshape(ops.arange(batch, dtype="int32")[:, None] * n_categories + cat, (-1,))
    counts = ops.segment_sum(ops.reshape(named, (-1,)), rows, num_segments=batch * n_categories)
    counts = ops.reshape(counts, (batch, n_categories))
    return counts, ops.cast(counts > 0, "float32")


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CopyDistribution(keras.layers.Layer):
    """Softmax over the user's history categories: the repeat part of the mixture.

    Call: ``(seq (B, N, D), cat (B, N) int, prior (B, V))`` -> ``(B, V)`` probabilities,
    zero outside the named history categories (rows without history are all zero).
    """

    def __init__(self, n_categories: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True  # accepts the RNN's propagated mask; uses ``cat``
        self.n_categories = n_categories

    def build(self, seq_shape: Any, cat_shape: Any = None, prior_shape: Any = None) -> None:
        # Zero-initialised: the copy distribution starts at the softmax of the scaled prior.
        self.score = self.add_weight(name="score", shape=(seq_shape[-1],), initializer="zeros")
        self.sharpness = self.add_weight(
            name="sharpness", shape=(), initializer=keras.initializers.Constant(COPY_SHARPNESS)
        )

    def call(self, seq: Any, cat: Any, prior: Any) -> Any:
        cat = ops.cast(cat, "int32")
        named = ops.cast(cat >= FIRST_NAMED, seq.dtype)
        events = ops.tensordot(seq, self.score, axes=1) * named  # (B, N)
        batch = ops.shape(cat)[0]
        rows = ops.reshape(
            ops.arange(batch, dtype="int32")[:, None] * self.n_categories + cat, (-1,)
        )
        summed = ops.segment_sum(
            ops.reshape(events, (-1,)), rows, num_segments=batch * self.n_categories
        )
        counts, seen = history_presence(cat, self.n_categories)
        pointer = ops.reshape(summed, (batch, self.n_categories)) / ops.maximum(counts, 1.0)
        logits = prior * self.sharpness + pointer
        weights = ops.softmax(logits + (1.0 - seen) * _NEG, axis=-1)
        return weights * seen

    def compute_mask(self, *args: Any, **kwargs: Any) -> None:
        return None

    def compute_output_shape(self, seq_shape: Any, cat_shape: Any, prior_shape: Any) -> tuple:
        return (seq_shape[0], self.n_categories)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n_categories": self.n_categories}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class RepeatExploreMixture(keras.layers.Layer):
    """``p_repeat * copy + (1 - p_repeat) * softmax(logits + popularity)`` over ``V``.

    ``popularity`` starts at zero; ``training.fit.initialise_priors`` sets it to the log
    share of each category in the training horizons. Padding (index 0) gets no generator
    mass; ``p_repeat`` is forced to 0 for a user whose history names no category.

    Call: ``(copy (B, V), logits (B, V), gate_logit (B, 1), cat (B, N) int)`` -> ``(B, V)``
    probabilities summing to 1 per row.
    """

    def __init__(self, n_categories: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_categories = n_categories

    def build(self, *shapes: Any) -> None:
        self.popularity = self.add_weight(
            name="popularity", shape=(self.n_categories,), initializer="zeros"
        )

    def call(self, copy: Any, logits: Any, gate_logit: Any, cat: Any) -> Any:
        has = ops.cast(ops.any(ops.cast(cat, "int32") >= FIRST_NAMED, axis=1), copy.dtype)
        p_repeat = ops.sigmoid(gate_logit[:, 0]) * has  # (B,)
        pad = ops.cast(ops.arange(self.n_categories) == 0, copy.dtype) * _NEG
        generate = ops.softmax(logits + self.popularity + pad, axis=-1)
        return p_repeat[:, None] * copy + (1.0 - p_repeat[:, None]) * generate

    def compute_output_shape(self, copy_shape: Any, *shapes: Any) -> tuple:
        return (copy_shape[0], self.n_categories)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n_categories": self.n_categories}


def mixture_output(
    spec: FeatureSpec,
    inputs: dict[str, KerasTensor],
    seq: KerasTensor,
    user: KerasTensor,
    logits: KerasTensor,
) -> KerasTensor:
    """The ``next_cats`` output ``(batch, V)`` of the repeat/explore mixture head.

    Args:
        spec: feature sizes.
        inputs: the model inputs (``cat``, ``beh``, ``age`` are read).
        seq: recurrent outputs ``(batch, N, D)``.
        user: user vector ``(batch, H)``; the gate reads it.
        logits: learned next-category logits ``(batch, V)``; the generator reads them.

    Layer names ``history_prior``, ``repeat_gate`` and ``next_cats`` (the
    :class:`RepeatExploreMixture`) are what ``training.fit.initialise_priors`` looks up.
    """
    prior = HistoryPrior(spec.n_categories, spec.n_behaviors, name="history_prior")(
        inputs["cat"], inputs["beh"], inputs["age"]
    )
    copy = CopyDistribution(spec.n_categories, name="copy_distribution")(seq, inputs["cat"], prior)
    gate = keras.layers.Dense(1, kernel_initializer="zeros", name="repeat_gate")(user)
    return RepeatExploreMixture(spec.n_categories, name="next_cats")(
        copy, logits, gate, inputs["cat"]
    )
