"""Seed ensembles as one Keras model: the members' outputs averaged inside the graph.

``average_members(members)`` wraps K trained copies of the same network (different seeds) in
one functional model with the members' named inputs and the same dict of outputs, each the
mean of the members' (next-category probabilities, ``buy``/``churn`` probabilities,
trajectory distributions). A mean of probability distributions is a distribution, so every
consumer of a bundle (serving, its TFLite conversion, the pyfunc, batch scoring, monitoring)
runs an ensemble exactly like a single model.

:func:`first_member` gives back one member (e.g. for a warm start, which copies weights by
layer name and would find none at the ensemble's top level).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

MEMBER_PREFIX = "member_"


def average_members(members: Sequence[keras.Model], name: str = "interest_ensemble") -> keras.Model:
    """One model whose every output is the mean of ``members``' outputs (one member: itself).

    Args:
        members: trained models with identical input names/shapes and dict outputs.
        name: the ensemble model's name.

    Returns:
        A functional model with the members' inputs and output keys; the members are its
        sub-models ``member_0 .. member_{K-1}`` (renamed in place: layer names must be unique).
    """
    if not members:
        raise ValueError("average_members needs at least one member model")
    if len(members) == 1:
        return members[0]
    first = members[0]
    inputs = {
        t.name: keras.Input(shape=tuple(t.shape[1:]), dtype=t.dtype, name=t.name)
        for t in first.inputs
    }
    outs = []
    for i, member in enumerate(members):
        names = sorted(t.name for t in member.inputs)
        if names != sorted(inputs):
            raise ValueError(f"ensemble member {i} reads inputs {names}, member 0 {sorted(inputs)}")
        member.name = f"{MEMBER_PREFIX}{i}"
        outs.append(dict(member(inputs)))
    outputs = {key: keras.layers.Average(name=key)([out[key] for out in outs]) for key in outs[0]}
    return keras.Model(inputs=inputs, outputs=outputs, name=name)


def members_of(model: keras.Model) -> list[keras.Model]:
    """The member models of an :func:`average_members` ensemble (``[model]`` otherwise)."""
    found = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.Model) and layer.name.startswith(MEMBER_PREFIX)
    ]
    return found or [model]


def first_member(model: keras.Model) -> keras.Model:
    """Member 0 of an ensemble, or ``model`` itself when it is a single network."""
    return members_of(model)[0]
