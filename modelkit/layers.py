"""Custom Keras layers and the trajectory loss: part of the saved-model contract.

They live in ``core`` (not ``training``) because ``modelkit.bundle`` must deserialize a ``.keras``
file with ``safe_mode=True`` and serving/monitoring never import ``training``. Every class is
registered under the ``interest`` package and has a complete ``get_config``; importing this
module is enough for ``keras.saving.load_model`` to find them (it also imports the prior
layers of :mod:`modelkit.priors` and :mod:`modelkit.mixture`). No Lambda layers anywhere.

Shapes: ``B`` batch, ``N`` events, ``D`` sequence width, ``d`` category-embedding width,
``V`` categories, ``M`` interest queries.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from modelkit.heads import LinearLogit  # noqa: F401  (registered for safe_mode loading too)
from modelkit.mixture import (  # noqa: F401  (registered for safe_mode loading too)
    CopyDistribution,
    RepeatExploreMixture,
)
from modelkit.priors import (  # noqa: F401  (registered for safe_mode loading too)
    ActivityFeatures,
    HeuristicFeatures,
    HeuristicLogit,
    HistoryPrior,
    ListwiseLoss,
    PersistencePrior,
    ScalarGate,
)

_PACKAGE = "interest"
_NEG = -1e9  # additive mask for softmax; finite so all-padding rows stay NaN-free


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SequenceMask(keras.layers.Layer):
    """``(B, N)`` int category indices -> ``(B, N)`` bool, True for real events (index != 0)."""

    def call(self, cat: Any) -> Any:
        return ops.not_equal(cat, 0)

    def compute_output_spec(self, cat: Any) -> Any:
        return keras.KerasTensor(cat.shape, dtype="bool")


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CategoryEmbedding(keras.layers.Layer):
    """Category lookup that also exposes its table so output heads can tie to it.

    Call: ``(B, N)`` int -> ``((B, N, d) embeddings, (V, d) table)``.
    """

    def __init__(self, n_categories: int, dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_categories = n_categories
        self.dim = dim

    def build(self, input_shape: Any) -> None:
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.n_categories, self.dim),
            initializer=keras.initializers.RandomUniform(-0.05, 0.05),
        )

    def call(self, cat: Any) -> tuple[Any, Any]:
        table = ops.convert_to_tensor(self.embeddings)
        return ops.take(table, ops.cast(cat, "int32"), axis=0), table

    def compute_output_spec(self, cat: Any) -> tuple[Any, Any]:
        return (
            keras.KerasTensor((*cat.shape, self.dim), dtype=self.compute_dtype),
            keras.KerasTensor((self.n_categories, self.dim), dtype=self.compute_dtype),
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n_categories": self.n_categories, "dim": self.dim}


def _masked_softmax(scores: Any, mask: Any, axis: int = -1) -> Any:
    """Softmax over ``axis`` ignoring masked positions; all-masked rows get zero weights."""
    mask_f = ops.cast(mask, scores.dtype)
    weights = ops.softmax(scores + (1.0 - mask_f) * _NEG, axis=axis)
    return weights * mask_f


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MaskedPooling(keras.layers.Layer):
    """Pool ``(B, N, D)`` sequence outputs to ``(B, D)`` honouring the ``(B, N)`` bool ``valid``
    mask (named so because Keras treats a ``mask`` argument specially).

    Modes: ``last`` (position ``N-1``: events are left-padded, so it is the most recent
    event; zeros for an empty history), ``mean`` (mean over real events) and ``attention``
    (additive self-attention: ``softmax_t(v . tanh(W h_t + b))`` over real events).
    """

    def __init__(self, mode: str = "attention", attention_units: int = 32, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True  # accepts the RNN's propagated mask; uses ``valid``
        if mode not in ("last", "mean", "attention"):
            raise ValueError(f"MaskedPooling mode must be last/mean/attention, got {mode!r}")
        self.mode = mode
        self.attention_units = attention_units

    def build(self, seq_shape: Any, valid_shape: Any = None) -> None:
        if self.mode == "attention":
            self.proj = keras.layers.Dense(self.attention_units, activation="tanh", name="proj")
            self.proj.build(seq_shape)
            self.score = self.add_weight(
                name="score", shape=(self.attention_units,), initializer="glorot_uniform"
            )

    def call(self, seq: Any, valid: Any) -> Any:
        mask_f = ops.cast(valid, seq.dtype)
        if self.mode == "last":
            return seq[:, -1, :] * ops.max(mask_f, axis=1, keepdims=True)
        if self.mode == "mean":
            total = ops.sum(seq * mask_f[..., None], axis=1)
            return total / ops.maximum(ops.sum(mask_f, axis=1, keepdims=True), 1.0)
        scores = ops.tensordot(self.proj(seq), self.score, axes=1)  # (B, N)
        weights = _masked_softmax(scores, valid)
        return ops.sum(seq * weights[..., None], axis=1)

    def compute_mask(self, *args: Any, **kwargs: Any) -> None:
        return None

    def compute_output_shape(self, seq_shape: Any, valid_shape: Any = None) -> tuple:
        return (seq_shape[0], seq_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "mode": self.mode,
            "attention_units": self.attention_units,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TiedLogits(keras.layers.Layer):
    """Logits from a ``(B, d)`` vector and a ``(V, d)`` embedding table: ``h @ E^T + b``."""

    def build(self, h_shape: Any, table_shape: Any) -> None:
        self.bias = self.add_weight(name="bias", shape=(table_shape[0],), initializer="zeros")

    def call(self, h: Any, table: Any) -> Any:
        return ops.matmul(h, ops.transpose(table)) + self.bias

    def compute_output_shape(self, h_shape: Any, table_shape: Any) -> tuple:
        return (h_shape[0], table_shape[0])


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TargetAttention(keras.layers.Layer):
    """DIN-style candidate scoring made linear in ``V`` by a low-rank query mixture.

    Exact DIN attends the history once per candidate: ``O(B * V * N * D)``, too dear for
    ``V`` in the thousands. Here each candidate's attention query is a convex mixture of
    ``M`` learned interest queries (mixture weights ``alpha_v = softmax(E_v W_a)``). The
    history is attention-pooled once per interest query (``p_m``, ``O(B * M * N * D)``),
    the candidate's pooled history is approximated by ``sum_m alpha_vm p_m`` and its score
    is ``e_v . W_o (sum_m alpha_vm p_m)`` computed as ``sum_m alpha_vm (e_v . W_o p_m)``:
    one ``(B, M, d) x (d, V)`` product, i.e. ``O(B * M * V * d)``.

    Call: ``(seq (B, N, D), valid (B, N) bool, table (V, d))`` ->
    ``(logits (B, V), interests (B, M * D))``.
    """

    def __init__(self, n_interests: int = 4, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True  # accepts the RNN's propagated mask; uses ``valid``
        self.n_interests = n_interests

    def compute_mask(self, *args: Any, **kwargs: Any) -> None:
        return None

    def build(self, seq_shape: Any, valid_shape: Any, table_shape: Any) -> None:
        width, dim = seq_shape[-1], table_shape[-1]
        m = self.n_interests
        self.keys = keras.layers.Dense(width, use_bias=False, name="keys")
        self.keys.build(seq_shape)
        self.queries = self.add_weight(
            name="queries", shape=(m, width), initializer="glorot_uniform"
        )
        self.route = self.add_weight(name="route", shape=(dim, m), initializer="glorot_uniform")
        self.out = self.add_weight(name="out", shape=(width, dim), initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(table_shape[0],), initializer="zeros")

    def call(self, seq: Any, valid: Any, table: Any) -> tuple[Any, Any]:
        keys = self.keys(seq)  # (B, N, D)
        scores = ops.einsum("bnd,md->bmn", keys, self.queries)
        scores = scores / ops.sqrt(ops.cast(ops.shape(seq)[-1], seq.dtype))
        weights = _masked_softmax(scores, ops.expand_dims(valid, 1))  # (B, M, N)
        pooled = ops.einsum("bmn,bnd->bmd", weights, seq)  # (B, M, D)
        per_interest = ops.einsum("bmd,de,ve->bmv", pooled, self.out, table)  # (B, M, V)
        alpha = ops.softmax(ops.matmul(table, self.route), axis=-1)  # (V, M)
        logits = ops.einsum("bmv,vm->bv", per_interest, alpha) + self.bias
        return logits, ops.reshape(pooled, (-1, self.n_interests * seq.shape[-1]))

    def compute_output_spec(self, seq: Any, valid: Any, table: Any) -> tuple[Any, Any]:
        return (
            keras.KerasTensor((seq.shape[0], table.shape[0]), dtype=self.compute_dtype),
            keras.KerasTensor(
                (seq.shape[0], self.n_interests * seq.shape[-1]), dtype=self.compute_dtype
            ),
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n_interests": self.n_interests}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MaskedTrajectoryLoss(keras.losses.Loss):
    """Cross-entropy of ``(B, K, C1)`` bucket distributions that skips empty future periods.

    An empty period has an all-zero target row; its cross-entropy is zero, and each
    sample's loss is averaged over its non-empty periods only (a sample with none scores 0).
    Cross-entropy equals KL divergence up to the target's entropy, so gradients match.
    """

    def __init__(self, name: str = "masked_trajectory", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_true = ops.cast(y_true, y_pred.dtype)
        y_pred = ops.clip(y_pred, 1e-7, 1.0)
        per_period = -ops.sum(y_true * ops.log(y_pred), axis=-1)  # (B, K)
        present = ops.cast(ops.sum(y_true, axis=-1) > 0, y_pred.dtype)
        return ops.sum(per_period * present, axis=-1) / ops.maximum(ops.sum(present, axis=-1), 1.0)
