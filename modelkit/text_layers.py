"""The text layer of the saved-model contract (registered for ``safe_mode`` loading).

Shapes: ``B`` batch, ``T`` token ids per sample, ``d`` embedding width.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import KerasTensor, ops

from core.arrays import FeatureSpec
from modelkit.model_config import ModelConfig


@keras.saving.register_keras_serializable(package="interest")
class TokenBag(keras.layers.Layer):
    """Mean of token embeddings, padding (id 0) left out: ``(B, T)`` int -> ``(B, d)``.

    A sample without any token gets the zero vector (no NaN from an empty mean). OOV ids (1)
    keep their own embedding: how much unknown text a user writes is itself a signal.
    """

    def __init__(self, n_tokens: int, dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_tokens = n_tokens
        self.dim = dim
        self.embedding = keras.layers.Embedding(n_tokens, dim, name="tokens")

    def build(self, input_shape: Any) -> None:
        self.embedding.build(input_shape)
        super().build(input_shape)

    def call(self, tokens: Any) -> Any:
        vectors = self.embedding(tokens)
        mask = ops.expand_dims(ops.cast(ops.greater(tokens, 0), vectors.dtype), -1)
        total = ops.sum(vectors * mask, axis=1)
        return total / ops.maximum(ops.sum(mask, axis=1), 1.0)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        return (input_shape[0], self.dim)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n_tokens": self.n_tokens, "dim": self.dim}


def text_input_names(config: ModelConfig, spec: FeatureSpec) -> tuple[str, ...]:
    """The optional text inputs ``config`` switches on.

    Raises:
        ValueError: when a channel is on but ``spec`` has none (no text in the training window).
    """
    names = []
    for flag, name, size in (
        ("use_text", "text_tokens", spec.text_len),
        ("use_item_attrs", "attr_tokens", spec.attr_len),
    ):
        if getattr(config, flag):
            if not size:
                raise ValueError(
                    f"ModelConfig.{flag} needs a feature spec with {name} (the training "
                    "events carry no such text; fit the text features first)"
                )
            names.append(name)
    return tuple(names)


def fuse_text(
    config: ModelConfig, spec: FeatureSpec, inputs: dict[str, KerasTensor], pooled: KerasTensor
) -> KerasTensor:
    """Concatenate the text bags present in ``inputs`` to ``pooled`` ``(batch, D)``."""
    parts = [pooled]
    for name, size, flag in (
        ("text_tokens", spec.n_text_tokens, config.use_text),
        ("attr_tokens", spec.n_attr_tokens, config.use_item_attrs),
    ):
        if flag and name in inputs:
            # Named after the text vocabularies: a warm start (transfer by layer name) never
            # copies embeddings learned for other token ids.
            layer = f"{name}_bag_{spec.text_hash[:8]}"
            bag = TokenBag(size, config.text_embed_dim, name=layer)(inputs[name])
            parts.append(keras.layers.Dropout(config.dropout, name=f"{name}_dropout")(bag))
    if len(parts) == 1:
        return pooled
    return keras.layers.Concatenate(name="pooled_with_text")(parts)


def reads_text(model: keras.Model) -> bool:
    """Whether ``model`` has a text input (``text_tokens`` or ``attr_tokens``)."""
    return any(t.name in ("text_tokens", "attr_tokens") for t in model.inputs)
