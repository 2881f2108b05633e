"""The text layer of the saved-model contract (registered for ``safe_mode`` loading).

Shapes: ``B`` batch, ``T`` token ids per sample, ``d`` embedding width.
"""

from __future__ import annotations

import hashlib
from typing import Any

import keras
from keras import KerasTensor, ops

from core.arrays import FeatureSpec
from modelkit.content import decode_profile
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


@keras.saving.register_keras_serializable(package="interest")
class CategoryContent(keras.layers.Layer):
    """The category table plus a content embedding from each category's text profile.

    ``content_v = mean(token embeddings of profile_v) @ W`` (zero for a category without
    text: it keeps its learned id embedding alone); the call returns the input-side
    embeddings and the combined ``(V, d)`` table the tied output logits read, so an item
    seen a handful of times scores like items whose texts share its words. ``W`` starts at
    zero: the untrained model is the id-only model. Two non-trainable profiles
    (:mod:`modelkit.content`): ``profile_fit`` while training, ``profile`` otherwise.

    Call: ``(table (V, d), cat (B, N) int)`` -> ``((B, N, d), (V, d))``.
    """

    def __init__(
        self, n_categories: int, length: int, n_tokens: int, token_dim: int, dim: int,
        **kwargs: Any,
    ) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.n_categories, self.length, self.n_tokens = n_categories, length, n_tokens
        self.token_dim, self.dim = token_dim, dim

    def build(self, table_shape: Any, cat_shape: Any) -> None:
        shape = (self.n_categories, self.length)
        self.profile = self.add_weight(
            name="profile", shape=shape, dtype="int32", initializer="zeros", trainable=False
        )
        self.profile_fit = self.add_weight(
            name="profile_fit", shape=shape, dtype="int32", initializer="zeros", trainable=False
        )
        self.tokens = self.add_weight(
            name="tokens",
            shape=(self.n_tokens, self.token_dim),
            initializer=keras.initializers.RandomUniform(-0.05, 0.05),
        )
        self.projection = self.add_weight(
            name="projection", shape=(self.token_dim, self.dim), initializer="zeros"
        )

    def content(self, training: bool | None = None) -> Any:
        """``(V, d)`` content embeddings of the profile in use."""
        profile = ops.convert_to_tensor(self.profile_fit if training else self.profile)
        vectors = ops.take(ops.convert_to_tensor(self.tokens), profile, axis=0)
        mask = ops.expand_dims(ops.cast(ops.greater(profile, 0), vectors.dtype), -1)
        mean = ops.sum(vectors * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1.0)
        return ops.matmul(mean, ops.convert_to_tensor(self.projection))

    def call(self, table: Any, cat: Any, training: bool | None = None) -> tuple[Any, Any]:
        combined = table + self.content(training)
        return ops.take(combined, ops.cast(cat, "int32"), axis=0), combined

    def compute_output_spec(self, table: Any, cat: Any, training: Any = None) -> tuple[Any, Any]:
        return (
            keras.KerasTensor((*cat.shape, self.dim), dtype=self.compute_dtype),
            keras.KerasTensor((self.n_categories, self.dim), dtype=self.compute_dtype),
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "n_categories": self.n_categories,
            "length": self.length,
            "n_tokens": self.n_tokens,
            "token_dim": self.token_dim,
            "dim": self.dim,
        }


def category_content(
    config: ModelConfig, spec: FeatureSpec, table: KerasTensor, cat: KerasTensor
) -> tuple[KerasTensor, KerasTensor]:
    """:class:`CategoryContent` over ``table`` with ``spec``'s profiles loaded.

    Raises:
        ValueError: when ``spec`` has no content profile (no text before the cutoffs).
    """
    if not spec.content_len:
        raise ValueError(
            "ModelConfig.use_content needs a feature spec with content profiles (the "
            "training events carry no text; fit the text features first)"
        )
    # Named after the profiles: a warm start never copies another vocabulary's profiles.
    digest = hashlib.sha256((spec.content + spec.content_fit).encode()).hexdigest()
    name = f"cat_content_{digest[:8]}"
    layer = CategoryContent(
        spec.n_categories, spec.content_len, spec.n_content_tokens, config.text_embed_dim,
        config.cat_embed_dim, name=name,
    )  # fmt: skip
    out = layer(table, cat)
    layer.profile.assign(decode_profile(spec.content))
    layer.profile_fit.assign(decode_profile(spec.content_fit))
    return out


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
