"""Score a model bundle on labelled events at a cutoff: shared by the gate and monitoring."""

from __future__ import annotations

import pandas as pd

from core.features import build_features
from evaluation.metrics import evaluate_predictions
from modelkit.bundle import Bundle


def evaluate_bundle(bundle: Bundle, events: pd.DataFrame, cutoff: pd.Timestamp) -> dict[str, float]:
    """Encode ``events`` at ``cutoff`` with the bundle's own vocabulary and score it.

    Labels come from ``[cutoff, cutoff + horizon)`` of the bundle's feature config, so a
    champion and a challenger evaluated at the same cutoff on the same events face the
    same users and the same horizon.

    Raises:
        ValueError: if no user has history before ``cutoff``.
    """
    arrays = build_features(events, [cutoff], bundle.vocab, bundle.feature_config)
    if len(arrays) == 0:
        raise ValueError(f"no user has events before the cutoff {cutoff}")
    return evaluate_predictions(bundle.predict(arrays.inputs()), arrays)
