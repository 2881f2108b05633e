"""Text channels for a training job: fit the vectorisers on the training window, attach inputs.

``train.text_features`` switches this on (off by default: logs without text train exactly as
before). Selection fits the vectorisers on events before the validation cutoff, the refit on
events before the test cutoff, like the category vocabulary (:mod:`core.dataset`); the
fitted :class:`~modelkit.text_features.TextFeatures` travel in ``PreparedData.text`` into the
bundle, so serving and batch scoring vectorise with the same vocabulary.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import pandas as pd

from core.arrays import TEXT_INPUT_NAMES, FeatureSpec, SequenceArrays
from core.config import ProjectConfig
from core.dataset import PreparedData
from evaluation.samples import score_predictions
from modelkit.content import content_spec
from modelkit.text_features import attach_text, event_tokens, fit_text_features, text_spec
from training.fit import fit_model, predict_arrays
from training.search import TrialPlan

#: Metrics the model card compares with and without text.
CARD_KEYS: tuple[str, ...] = ("recall_at_10", "ndcg_at_10", "explore_recall_at_10", "buy_auc")


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
    spec = content_spec(
        text_spec(data.spec, features), events, data.vocab, features, tokens,
        fit_until=min(data.splits.train), score_until=cutoff,
    )  # fmt: skip
    return dataclasses.replace(data, spec=spec, text=features)


def text_channels(spec: FeatureSpec) -> tuple[str, ...]:
    """The text inputs ``spec`` carries, and ``content`` when it has category profiles
    (what the search space may switch on)."""
    sizes = {"text_tokens": spec.text_len, "attr_tokens": spec.attr_len}
    names = tuple(name for name in TEXT_INPUT_NAMES if sizes[name])
    return names + (("content",) if spec.content_len else ())


def without_text(arrays: SequenceArrays) -> SequenceArrays:
    """``arrays`` without the text inputs (what the text-free twin of a model reads)."""
    return dataclasses.replace(arrays, text_tokens=None, attr_tokens=None)


def text_ablation(
    data: PreparedData,
    plan: TrialPlan,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    metrics: dict[str, float],
    pretrain_epochs: int = 0,
) -> dict[str, Any] | None:
    """The model card's comparison: ``plan`` refitted with its text channels off.

    The same architecture, seed, epochs and train + validation samples, scored on the same
    test samples; ``None`` when ``plan`` reads no text (nothing to compare).
    """
    model = plan.model
    if not (model.use_text or model.use_item_attrs or model.use_content):
        return None
    plain_model = dataclasses.replace(model, use_text=False, use_item_attrs=False,
                                      use_content=False)  # fmt: skip
    twin = dataclasses.replace(plan, model=plain_model)
    trainval = without_text(SequenceArrays.concat([data.train, data.val]))
    fitted = fit_model(
        twin, data.spec, trainval, epochs=epochs, batch_size=batch_size, seed=seed,
        pretrain_epochs=pretrain_epochs,
    )  # fmt: skip
    test = without_text(data.test)
    plain = score_predictions(predict_arrays(fitted.model, test), test).metrics
    key = "recall_at_10"
    return {
        "channels": [n for n in ("use_text", "use_item_attrs", "use_content") if getattr(model, n)],
        "with_text": {k: metrics.get(k) for k in CARD_KEYS},
        "without_text": {k: plain.get(k) for k in CARD_KEYS},
        "text_over_no_text_recall_ratio": metrics[key] / plain[key] if plain.get(key) else None,
    }
