"""Text channels for a training job: fit the vectorisers on the training window, attach inputs.

``train.text_features`` switches this on (off by default: logs without text train exactly as
before). Selection fits the vectorisers on events before the validation cutoff, the refit on
events before the test cutoff, like the category vocabulary (:mod:`core.dataset`); the
fitted :class:`~modelkit.text_features.TextFeatures` travel in ``PreparedData.text`` into the
bundle, so serving and batch scoring vectorise with the same vocabulary.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import pandas as pd

from core.arrays import TEXT_INPUT_NAMES, FeatureSpec
from core.config import ProjectConfig
from core.dataset import PreparedData
from modelkit.text_features import attach_text, event_tokens, fit_text_features, text_spec


def add_text(
    events: pd.DataFrame,
    data: PreparedData,
    config: ProjectConfig,
    until: Literal["val", "test"] = "val",
) -> PreparedData:
    """``data`` with text inputs on every split and the text sizes in its spec.

    Args:
        events: the canonical events ``data`` was built from.
        data: prepared arrays (``core.dataset.prepare_dataset`` or ``prepare_refit_data``).
        config: the project configuration (``features`` is read).
        until: fit the vectorisers on events before this cutoff.

    Returns:
        ``data`` unchanged when the training window holds neither text nor item attributes.

    Raises:
        ValueError: with ``train.input == "stream"`` (feature shards carry no text yet).
    """
    if getattr(config.train, "input", "memory") != "memory":
        raise ValueError('train.text_features needs train.input="memory" (shards carry no text)')
    cutoff = data.splits.val if until == "val" else data.splits.test
    features = fit_text_features(events, cutoff)
    if features.text is None and features.attrs is None:
        return data
    tokens = event_tokens(features, events)
    for arrays in (data.train, data.val, data.test):
        attach_text(arrays, events, features, config.features, tokens)
    return dataclasses.replace(data, spec=text_spec(data.spec, features), text=features)


def text_channels(spec: FeatureSpec) -> tuple[str, ...]:
    """The text inputs ``spec`` carries (what the search space may switch on)."""
    sizes = {"text_tokens": spec.text_len, "attr_tokens": spec.attr_len}
    return tuple(name for name in TEXT_INPUT_NAMES if sizes[name])
