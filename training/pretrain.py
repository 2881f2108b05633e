"""Self-supervised pre-training of the sequence encoder and weight transfer.

Transfer form 1: pre-train on next-event category prediction over unlabeled history, then
copy the encoder into the multi-head model. Form 2 (warm start from the champion) uses the
same :func:`transfer_encoder_weights` with the champion model as source.

The pre-training model is built by the same :func:`modelkit.builder.encode_user` as the main
model, so its layers carry the same names (``cat_embedding``, ``encoder_rnn_0``, ``pooling``,
``user_dense``, ``next_cats_logits``, ...) and transfer is a by-name copy.
"""

from __future__ import annotations

from collections.abc import Collection

import keras
import numpy as np

from core.arrays import FeatureSpec, SequenceArrays
from modelkit.builder import EVENT_INPUTS, encode_user, make_inputs
from modelkit.model_config import ModelConfig

# Layers whose weights are indexed by category: only transferable between models that
# share a vocabulary (equal shapes alone do not prove that).
CATEGORY_LAYERS: tuple[str, ...] = ("cat_embedding", "next_cats_logits", "target_attention")


def build_pretrain_model(config: ModelConfig, spec: FeatureSpec) -> keras.Model:
    """Encoder + next-category head trained to predict the next event's category.

    Inputs: :data:`modelkit.builder.EVENT_INPUTS` shaped ``(batch, N)``.

    Returns:
        Model with output ``next_event`` ``(batch, V)``: softmax over categories.
    """
    inputs = make_inputs(spec, EVENT_INPUTS)
    _, logits, _ = encode_user(config, spec, inputs)
    output = keras.layers.Softmax(name="next_event")(logits)
    return keras.Model(inputs=inputs, outputs={"next_event": output}, name="interest_pretrain")


def compile_pretrain_model(
    model: keras.Model, config: ModelConfig, *, jit_compile: bool | str = "auto"
) -> keras.Model:
    """Compile with Adam and sparse categorical cross-entropy; returns ``model``."""
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss={"next_event": keras.losses.SparseCategoricalCrossentropy()},
        metrics={"next_event": [keras.metrics.SparseTopKCategoricalAccuracy(10, name="top10")]},
        jit_compile=jit_compile,
    )
    return model


def make_pretrain_arrays(
    arrays: SequenceArrays,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Build the self-supervised task: history without its last event -> that event's category.

    Every event input is shifted right by one position (events stay left-padded) and the
    ``age`` of the remaining events is re-expressed relative to the dropped event, which
    plays the cutoff. Samples with fewer than two events carry no task and are dropped.

    Returns:
        ``(inputs, targets)``: inputs keyed by :data:`modelkit.builder.EVENT_INPUTS`
        ``(m, N)``, targets ``{"next_event": (m,) int32}``.
    """
    keep = (arrays.cat > 0).sum(axis=1) >= 2
    inputs: dict[str, np.ndarray] = {}
    for name in EVENT_INPUTS:
        values = getattr(arrays, name)[keep]
        shifted = np.zeros_like(values)
        shifted[:, 1:] = values[:, :-1]
        inputs[name] = shifted
    real = inputs["cat"] > 0
    age_hours = np.expm1(arrays.age[keep].astype(np.float64))
    hours_to_new_cutoff = np.zeros_like(age_hours)
    hours_to_new_cutoff[:, 1:] = age_hours[:, :-1] - age_hours[:, -1:]
    inputs["age"] = np.where(real, np.log1p(np.maximum(hours_to_new_cutoff, 0.0)), 0.0).astype(
        np.float32
    )
    targets = {"next_event": arrays.cat[keep][:, -1].astype(np.int32)}
    return inputs, targets


def transfer_encoder_weights(
    src: keras.Model, dst: keras.Model, *, skip: Collection[str] = ()
) -> int:
    """Copy weights of same-named layers whose weight shapes match from ``src`` into ``dst``.

    Args:
        src: pre-trained or champion model.
        dst: freshly built model (modified in place).
        skip: layer names not to copy, e.g. :data:`CATEGORY_LAYERS` when the two models'
            vocabularies differ (``FeatureSpec.vocab_hash``).

    Returns:
        Number of layers copied.
    """
    by_name = {layer.name: layer for layer in src.layers}
    copied = 0
    for layer in dst.layers:
        source = by_name.get(layer.name)
        if source is None or layer.name in skip or not layer.weights:
            continue
        values = source.get_weights()
        if [v.shape for v in values] != [tuple(w.shape) for w in layer.weights]:
            continue
        layer.set_weights(values)
        copied += 1
    return copied
