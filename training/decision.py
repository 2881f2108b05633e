"""The promotion gate's record: contenders in, a decision out (``decision.json``).

:mod:`training.gate` fills these; :func:`training.promotion.apply_decision` writes
:meth:`PromotionDecision.to_dict` as ``decision.json`` in the MLflow ``promotions``
experiment. Gains are relative (0.0086 = +0.86 %); intervals are paired-bootstrap
percentile intervals over users (:class:`evaluation.paired.Interval`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from evaluation.paired import Interval
from evaluation.samples import SampleScores


@dataclass(frozen=True)
class Candidate:
    """One contender: a model version or a baseline, with its scores on one test split."""

    label: str  # human-readable, e.g. "challenger v3" or "baseline 'popularity'"
    metrics: Mapping[str, float]
    split_hash: str | None = None  # fingerprint of the test split the scores came from
    version: str | None = None
    samples: SampleScores | None = None  # per-sample scores, keyed by (user, cutoff)


@dataclass
class Comparison:
    """The challenger against one opponent, on the samples they share."""

    role: str  # "baseline" or "champion"
    label: str
    passed: bool
    challenger: float  # primary metric of the challenger on the shared samples
    opponent: float
    interval: Interval | None = None
    recall_split: dict[str, dict[str, float]] = field(default_factory=dict)
    guards: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; ``interval`` holds ``lower``/``upper`` (relative gains)."""
        out = asdict(self)
        out["interval"] = None if self.interval is None else self.interval.to_dict()
        return out


@dataclass
class PromotionDecision:
    """The outcome of the gate, with the numbers it compared."""

    promote: bool
    reasons: list[str]
    primary_metric: str
    challenger: float
    baseline: float
    champion: float | None
    margin: float
    confidence: float
    n_users: int  # users with a defined primary metric in the challenger's samples
    n_resamples: int
    higher_is_better: bool = True
    comparisons: list[Comparison] = field(default_factory=list)
    recall_split: dict[str, dict[str, float]] = field(default_factory=dict)  # label -> split
    labels: dict[str, str] = field(default_factory=dict)
    forced: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN becomes ``None``); ``opponents`` is keyed by role."""
        out = {k: v for k, v in asdict(self).items() if k != "comparisons"}
        out["opponents"] = {c.role: c.to_dict() for c in self.comparisons}
        return _json_safe(out)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value
