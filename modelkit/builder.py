"""Pure Keras 3 model builder for user-interest evolution.

``build_model(config, spec)`` is a function from a :class:`ModelConfig` and a
:class:`~core.arrays.FeatureSpec` to a functional ``keras.Model``: no I/O, no compile, no fit.
The custom layers live in :mod:`modelkit.layers` so that ``modelkit.bundle`` can load saved models
with ``safe_mode=True`` without importing ``training``.

Layer names are stable (``cat_embedding``, ``encoder_rnn_0``, ``pooling``, ...) because
:func:`training.pretrain.transfer_encoder_weights` matches layers by name.
"""

from __future__ import annotations

import keras
from keras import KerasTensor

from core.arrays import INPUT_NAMES, FeatureSpec
from modelkit.layers import (
    ActivityFeatures,
    CategoryEmbedding,
    HeuristicFeatures,
    HeuristicLogit,
    HistoryPrior,
    LinearLogit,
    ListwiseLoss,
    MaskedPooling,
    MaskedTrajectoryLoss,
    PersistencePrior,
    ScalarGate,
    SequenceMask,
    TargetAttention,
    TiedLogits,
)
from modelkit.mixture import mixture_output
from modelkit.model_config import ModelConfig
from modelkit.text_layers import category_content, fuse_text, text_input_names

EVENT_INPUTS: tuple[str, ...] = ("cat", "beh", "hour", "gap", "age")


def make_inputs(spec: FeatureSpec, names: tuple[str, ...]) -> dict[str, KerasTensor]:
    """Keras inputs named and shaped per :mod:`core.arrays` (batch dimension omitted)."""
    n, p = spec.max_events, spec.n_periods
    shapes: dict[str, tuple[tuple[int, ...], str]] = {
        "cat": ((n,), "int32"),
        "beh": ((n,), "int32"),
        "hour": ((n,), "int32"),
        "gap": ((n,), "float32"),
        "age": ((n,), "float32"),
        "period_dist": ((p, spec.n_buckets), "float32"),
        "period_counts": ((p, spec.n_core_behaviors), "float32"),
        "text_tokens": ((spec.text_len,), "int32"),
        "attr_tokens": ((spec.attr_len,), "int32"),
    }
    return {
        name: keras.Input(shape=shapes[name][0], dtype=shapes[name][1], name=name) for name in names
    }


def _recurrent(cell: str, units: int, name: str) -> keras.layers.Layer:
    if cell == "gru":
        return keras.layers.GRU(units, return_sequences=True, name=name)
    if cell == "lstm":
        return keras.layers.LSTM(units, return_sequences=True, name=name)
    lstm = keras.layers.LSTM(units, return_sequences=True, name=f"{name}_lstm")
    return keras.layers.Bidirectional(lstm, name=name)


def encode_events(
    config: ModelConfig, spec: FeatureSpec, inputs: dict[str, KerasTensor]
) -> tuple[KerasTensor, KerasTensor, KerasTensor]:
    """Embed and run the recurrent encoder over the event sequence.

    Args:
        config: model settings.
        spec: feature sizes.
        inputs: Keras inputs holding at least :data:`EVENT_INPUTS`.

    Returns:
        ``(seq, mask, table)``: recurrent outputs ``(batch, N, D)`` (``D`` = units, or
        2 * units for bilstm), the padding mask ``(batch, N)`` bool and the category
        embedding table ``(V, cat_embed_dim)``.
    """
    mask = SequenceMask(name="event_mask")(inputs["cat"])
    cat_emb, table = CategoryEmbedding(
        spec.n_categories, config.cat_embed_dim, name="cat_embedding"
    )(inputs["cat"])
    if config.use_content:  # content embeddings join the id table on both sides
        cat_emb, table = category_content(config, spec, table, inputs["cat"])
    parts = [
        cat_emb,
        keras.layers.Embedding(spec.n_behaviors, config.beh_embed_dim, name="beh_embedding")(
            inputs["beh"]
        ),
    ]
    if config.use_time_features:
        parts.append(
            keras.layers.Embedding(25, config.hour_embed_dim, name="hour_embedding")(inputs["hour"])
        )
        for name in ("gap", "age"):
            parts.append(
                keras.layers.Reshape((spec.max_events, 1), name=f"{name}_column")(inputs[name])
            )
    x = keras.layers.Concatenate(name="event_features")(parts)
    x = keras.layers.Dropout(config.dropout, name="event_dropout")(x)
    for i in range(config.n_layers):
        if i:
            x = keras.layers.Dropout(config.dropout, name=f"encoder_dropout_{i}")(x)
        x = _recurrent(config.cell, config.units, f"encoder_rnn_{i}")(x, mask=mask)
    return x, mask, table


def encode_user(
    config: ModelConfig, spec: FeatureSpec, inputs: dict[str, KerasTensor]
) -> tuple[KerasTensor, KerasTensor, KerasTensor]:
    """Encode events into a user vector and next-category logits.

    Returns:
        ``(user, logits, seq)``: user vector ``(batch, head_units)``, next-category logits
        ``(batch, V)`` and the recurrent outputs ``(batch, N, D)`` (the mixture head's copy
        scores read them). The period branch is not included (pre-training has no periods);
        see :func:`build_model`.
    """
    seq, mask, table = encode_events(config, spec, inputs)
    if config.pooling == "target_attention":
        logits, pooled = TargetAttention(config.n_interests, name="target_attention")(
            seq, mask, table
        )
    else:
        pooled = MaskedPooling(config.pooling, config.attention_units, name="pooling")(seq, mask)
        logits = None
    pooled = fuse_text(config, spec, inputs, pooled)
    user = keras.layers.Dense(config.head_units, activation="relu", name="user_dense")(pooled)
    if logits is None:
        if config.tie_output_embeddings:
            query = keras.layers.Dense(config.cat_embed_dim, name="next_cats_query")(user)
            logits = TiedLogits(name="next_cats_logits")(query, table)
        else:
            logits = keras.layers.Dense(spec.n_categories, name="next_cats_logits")(user)
    return user, logits, seq


def next_cats_output(
    config: ModelConfig, spec: FeatureSpec, inputs: dict[str, KerasTensor], logits: KerasTensor
) -> KerasTensor:
    """Add the history prior to the learned logits and apply the output activation."""
    if config.use_history_prior:
        logits = ScalarGate(config.next_cats_gate, name="next_cats_gate")(logits)
        prior = HistoryPrior(spec.n_categories, spec.n_behaviors, name="history_prior")(
            inputs["cat"], inputs["beh"], inputs["age"]
        )
        logits = keras.layers.Add(name="next_cats_scores")([logits, prior])
    activation = "softmax" if config.next_cats_loss == "softmax" else "sigmoid"
    return keras.layers.Activation(activation, name="next_cats")(logits)


def activity_output(
    config: ModelConfig, name: str, column: int, features: KerasTensor, activity: KerasTensor
) -> KerasTensor:
    """``(batch, 1)`` sigmoid; a zero-initialised residual over the fitted heuristic logit.

    ``column`` picks the heuristic input of :class:`modelkit.layers.HeuristicFeatures`
    (0: past carts + buys for ``buy``, 1: recency for ``churn``).
    """
    if not config.use_heuristic_heads:
        return keras.layers.Dense(1, activation="sigmoid", name=name)(activity)
    if config.linear_heads:
        prior = LinearLogit(name=f"{name}_prior")(features)
    else:
        prior = HeuristicLogit(column, name=f"{name}_prior")(features)
    residual = keras.layers.Dense(
        1, kernel_initializer="zeros", use_bias=False, name=f"{name}_residual"
    )(activity)
    logit = keras.layers.Add(name=f"{name}_logit")([prior, residual])
    return keras.layers.Activation("sigmoid", name=name)(logit)


def trajectory_output(
    config: ModelConfig, spec: FeatureSpec, inputs: dict[str, KerasTensor], hidden: KerasTensor
) -> KerasTensor:
    """``(batch, K, C1)`` softmax; a residual over log(persistence) when configured."""
    k, c1 = spec.future_periods, spec.n_buckets
    # Zero-initialised residual: the untrained head predicts the persistence mixture.
    init = "zeros" if config.use_persistence_prior else "glorot_uniform"
    traj = keras.layers.Dense(k * c1, kernel_initializer=init, name="trajectory_logits")(hidden)
    traj = keras.layers.Reshape((k, c1), name="trajectory_grid")(traj)
    if config.use_persistence_prior:
        prior = PersistencePrior(name="persistence_prior")(
            inputs["period_dist"], inputs["period_counts"]
        )
        prior = keras.layers.RepeatVector(k, name="persistence_repeat")(prior)
        traj = keras.layers.Add(name="trajectory_scores")([traj, prior])
    return keras.layers.Softmax(axis=-1, name="trajectory")(traj)


def build_model(config: ModelConfig, spec: FeatureSpec) -> keras.Model:
    """Build the multi-head interest-evolution network.

    Inputs are named :data:`core.arrays.INPUT_NAMES` with the shapes of :mod:`core.arrays`;
    padding (``cat == 0``) is masked in the recurrent layers and in pooling.

    Returns:
        A functional model with dict outputs: ``next_cats`` ``(batch, V)`` scores (softmax
        probabilities for ``next_cats_loss="softmax"``, else sigmoid; the repeat/explore
        mixture's probabilities for ``next_cats_head="mixture"``), ``buy`` and
        ``churn`` ``(batch, 1)`` sigmoid, ``trajectory`` ``(batch, K, C1)`` softmax over
        buckets.
    """
    inputs = make_inputs(spec, INPUT_NAMES + text_input_names(config, spec))
    user, logits, seq = encode_user(config, spec, inputs)
    if config.next_cats_head == "mixture":
        next_cats = mixture_output(spec, inputs, seq, user, logits)
    else:
        next_cats = next_cats_output(config, spec, inputs, logits)
    if config.use_period_branch:
        periods = keras.layers.Concatenate(name="period_features")(
            [inputs["period_dist"], inputs["period_counts"]]
        )
        # Empty periods stay unmasked on purpose: inactivity is part of the trajectory.
        cell = "gru" if config.cell == "gru" else "lstm"
        layer = keras.layers.GRU if cell == "gru" else keras.layers.LSTM
        long_term = layer(config.period_units, name="period_rnn")(periods)
        user = keras.layers.Concatenate(name="user_with_periods")([user, long_term])
    hidden = keras.layers.Dropout(config.dropout, name="head_dropout")(user)
    activity = hidden
    if config.use_activity_features:
        counts = ActivityFeatures(name="activity_features")(
            inputs["age"], inputs["cat"], inputs["period_counts"]
        )
        # synchronized: under a tf.distribute strategy the statistics are the global batch's,
        # so data-parallel workers train the single-worker model (a no-op on one worker).
        norm = keras.layers.BatchNormalization(name="activity_norm", synchronized=True)
        counts = norm(counts)
        activity = keras.layers.Concatenate(name="hidden_with_activity")([hidden, counts])
    features = None
    if config.use_heuristic_heads:
        features = HeuristicFeatures(name="heuristic_features")(
            inputs["age"], inputs["cat"], inputs["period_counts"]
        )
        if config.linear_heads:
            raw = ActivityFeatures(name="head_counts")(
                inputs["age"], inputs["cat"], inputs["period_counts"]
            )
            features = keras.layers.Concatenate(name="head_features")([features, raw])
    outputs = {
        "next_cats": next_cats,
        "buy": activity_output(config, "buy", 0, features, activity),
        "churn": activity_output(config, "churn", 1, features, activity),
        "trajectory": trajectory_output(config, spec, inputs, hidden),
    }
    return keras.Model(inputs=inputs, outputs=outputs, name="interest_evolution")


def compile_model(
    model: keras.Model, config: ModelConfig, *, jit_compile: bool | str = "auto"
) -> keras.Model:
    """Compile with Adam, per-head losses and weights from ``config``; returns ``model``.

    ``next_cats`` is listwise softmax cross-entropy (:class:`modelkit.layers.ListwiseLoss`) or
    multi-label binary cross-entropy per ``config.next_cats_loss``; ``trajectory`` uses
    :class:`modelkit.layers.MaskedTrajectoryLoss`, which ignores empty future periods.
    ``jit_compile=False`` skips XLA: much faster to start for tiny fits (tests).
    """
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss={
            "next_cats": ListwiseLoss()
            if config.next_cats_loss == "softmax"
            else keras.losses.BinaryCrossentropy(),
            "buy": keras.losses.BinaryCrossentropy(),
            "churn": keras.losses.BinaryCrossentropy(),
            "trajectory": MaskedTrajectoryLoss(),
        },
        loss_weights=config.loss_weights(),
        metrics={
            "buy": [keras.metrics.AUC(name="auc")],
            "churn": [keras.metrics.AUC(name="auc")],
        },
        jit_compile=jit_compile,
    )
    return model
