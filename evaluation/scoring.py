"""Score a model bundle and the baselines on labelled events at a cutoff (gate, monitoring).

:func:`score_bundle` and :func:`score_baselines` return per-sample scores next to the means
(:class:`evaluation.samples.Scored`), keyed by (user, cutoff), so the promotion gate can
compare contenders on the very same users.
"""

from __future__ import annotations

import pandas as pd

from core.arrays import SequenceArrays
from core.config import FeatureConfig, TrainConfig
from core.features import build_features
from core.vocab import Vocabulary
from evaluation.metrics import evaluate_predictions
from evaluation.samples import Scored, score_predictions
from evaluation.suite import run_baseline_suite
from modelkit.bundle import Bundle
from modelkit.text_features import attach_text
from modelkit.text_layers import reads_text


def bundle_arrays(bundle: Bundle, events: pd.DataFrame, cutoff: pd.Timestamp) -> SequenceArrays:
    """Encode ``events`` at ``cutoff`` with the bundle's own vocabulary and feature config.

    Labels come from ``[cutoff, cutoff + horizon)`` of the bundle's feature config, so a
    champion and a challenger encoded at the same cutoff on the same events face the same
    users and the same horizon.

    Raises:
        ValueError: if no user has history before ``cutoff``.
    """
    arrays = build_features(events, [cutoff], bundle.vocab, bundle.feature_config)
    if len(arrays) == 0:
        raise ValueError(f"no user has events before the cutoff {cutoff}")
    if getattr(bundle, "text", None) is not None and reads_text(bundle.model):
        attach_text(arrays, events, bundle.text, bundle.feature_config)
    return arrays


def evaluate_bundle(bundle: Bundle, events: pd.DataFrame, cutoff: pd.Timestamp) -> dict[str, float]:
    """Mean metrics of ``bundle`` at ``cutoff`` (see :func:`bundle_arrays`).

    Raises:
        ValueError: if no user has history before ``cutoff``.
    """
    arrays = bundle_arrays(bundle, events, cutoff)
    return evaluate_predictions(bundle.predict(arrays.inputs()), arrays)


def score_bundle(bundle: Bundle, events: pd.DataFrame, cutoff: pd.Timestamp) -> Scored:
    """Mean metrics and per-sample scores of ``bundle`` at ``cutoff``.

    Raises:
        ValueError: if no user has history before ``cutoff``.
    """
    arrays = bundle_arrays(bundle, events, cutoff)
    return score_predictions(bundle.predict(arrays.inputs()), arrays)


def score_baselines(
    events: pd.DataFrame,
    arrays: SequenceArrays,
    vocab: Vocabulary,
    features: FeatureConfig,
    train: TrainConfig,
    val: SequenceArrays | None = None,
) -> dict[str, Scored]:
    """Every baseline scored on ``arrays`` like a model, per sample and on average.

    The heuristics are tuned on ``val`` (:func:`evaluation.suite.run_baseline_suite`) and
    read the full history before each cutoff; ``gbdt_rerank`` learns on earlier cutoffs.

    Args:
        events: canonical events covering the history before the cutoffs of ``arrays``.
        arrays: labelled samples (a model's test split in its vocabulary).
        vocab: the vocabulary ``arrays`` were encoded with.
        features: the samples' horizon.
        train: the heuristics' untuned popularity window and half-life (used without
            ``val``) and the learned baseline's seed.
        val: labelled validation samples in the same vocabulary, to tune on.

    Returns:
        ``{baseline: Scored}`` keyed by :data:`evaluation.baselines.BASELINE_NAMES`.
    """
    suite = run_baseline_suite(
        events,
        arrays,
        vocab,
        features.horizon,
        val=val,
        pop_window=train.baseline_pop_window,
        half_life_days=train.baseline_half_life_days,
        seed=train.seed,
    )
    return suite.scored
