"""The promotion gate's decision, pure (no I/O): paired intervals, a margin and guards.

The rule:

1. The opponents are the current champion, re-scored on the challenger's test split, and
   the best baseline on that split (the highest mean primary metric on the shared samples).
2. For each opponent, both contenders' per-sample primary metric is matched by (user,
   cutoff), and a paired bootstrap over users (:func:`evaluation.paired.paired_bootstrap`)
   gives an interval of the challenger's relative gain. The challenger beats the opponent
   only if the interval's **lower end** is above the margin: a gain the data cannot tell
   from noise (+0.9 % on 900 users) is not a gain.
3. Guards: a challenger that loses more than ``guard_tolerance`` of a guard metric (purchase
   AUC, churn AUC, explore recall) to the champion is refused, whatever its primary metric.
   The drop is judged on **point values** on the same users: AUCs are not means of
   per-sample values, so they have no paired bootstrap here, and a point drop errs towards
   refusing, the safe side for a guard. Baselines are the bar for the primary metric only.
4. Without per-sample scores there is no interval, and the gate refuses, saying how to
   re-score (``interest promote VERSION --data LOG``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from core.config import RegistryConfig
from evaluation.paired import paired_bootstrap
from evaluation.samples import SampleScores, align
from training.decision import Candidate, Comparison, PromotionDecision

RESCORE_HINT = "re-score every contender on one split: interest promote VERSION --data LOG"


@dataclass(frozen=True)
class GateRule:
    """What the gate requires; :meth:`from_config` reads :class:`core.config.RegistryConfig`."""

    primary_metric: str = "recall_at_10"
    margin: float = 0.0  # relative; the interval's lower end must be above it
    confidence: float = 0.95
    n_resamples: int = 1000
    seed: int = 0
    guard_metrics: tuple[str, ...] = ("buy_auc", "churn_auc", "explore_recall_at_10")
    guard_tolerance: float = 0.01  # absolute drop allowed on every guard metric
    higher_is_better: bool = True  # direction of the primary metric (guards: higher is better)
    split_metrics: tuple[str, ...] = ("repeat_recall_at_10", "explore_recall_at_10")

    @classmethod
    def from_config(cls, registry: RegistryConfig, higher_is_better: bool = True) -> GateRule:
        """The rule configured in ``registry``."""
        return cls(
            primary_metric=registry.primary_metric,
            margin=registry.min_improvement,
            confidence=registry.confidence,
            n_resamples=registry.bootstrap_resamples,
            seed=registry.bootstrap_seed,
            guard_metrics=tuple(registry.guard_metrics),
            guard_tolerance=registry.guard_tolerance,
            higher_is_better=higher_is_better,
        )


def _value(candidate: Candidate | None, metric: str, samples: SampleScores | None = None) -> float:
    """Mean over ``samples`` (default: the candidate's own) if they hold it, else the metric."""
    if candidate is None:
        return float("nan")
    samples = samples if samples is not None else candidate.samples
    if samples is not None and metric in samples.values:
        return samples.mean(metric)
    raw = candidate.metrics.get(metric)
    return float("nan") if raw is None else float(raw)


def _split(candidate: Candidate, samples: SampleScores | None, rule: GateRule) -> dict[str, float]:
    return {m: _value(candidate, m, samples) for m in rule.split_metrics}


def _point_gain(ours: float, theirs: float, hib: bool) -> float:
    """Relative gain of two point values (shown when no interval can be computed)."""
    delta = ours - theirs if hib else theirs - ours
    if theirs == 0:
        return 0.0 if delta == 0 else math.copysign(math.inf, delta)
    return delta / abs(theirs)


def best_baseline(
    challenger: Candidate, baselines: Sequence[Candidate], rule: GateRule
) -> Candidate | None:
    """The baseline with the best primary metric on the samples it shares with ``challenger``."""
    scored = []
    for base in baselines:
        shared = None
        if base.samples is not None and challenger.samples is not None:
            shared = align(challenger.samples, base.samples)[1]
        value = _value(base, rule.primary_metric, shared)
        if math.isfinite(value):
            scored.append((value if rule.higher_is_better else -value, base))
    return max(scored, key=lambda item: item[0])[1] if scored else None


def _guards(
    ours: Candidate,
    mine: SampleScores,
    other: Candidate,
    theirs: SampleScores,
    rule: GateRule,
    comp: Comparison,
) -> list[str]:
    reasons = []
    for metric in rule.guard_metrics:
        a, b = _value(ours, metric, mine), _value(other, metric, theirs)
        if not (math.isfinite(a) and math.isfinite(b)):
            reasons.append(f"guard {metric} not checked: {a:.4f} vs {other.label} {b:.4f}")
            continue
        drop = b - a
        comp.guards[metric] = {"challenger": a, "opponent": b, "drop": drop}
        if drop > rule.guard_tolerance:
            comp.passed = False
            reasons.append(
                f"guard {metric}: {a:.4f} vs {other.label} {b:.4f}, a drop of {drop:.4f} "
                f"> tolerance {rule.guard_tolerance:.4f} -> refused"
            )
    return reasons


def compare(
    challenger: Candidate, other: Candidate, role: str, rule: GateRule
) -> tuple[Comparison, list[str]]:
    """Compare ``challenger`` with one opponent; returns the comparison and its reasons."""
    metric = rule.primary_metric
    comp = Comparison(role, other.label, False, _value(challenger, metric), _value(other, metric))
    if challenger.split_hash != other.split_hash:
        return comp, [
            f"test split fingerprints differ: {challenger.label} "
            f"{challenger.split_hash or 'unknown'} vs {other.label} "
            f"{other.split_hash or 'unknown'}; {RESCORE_HINT}"
        ]
    if challenger.samples is None or other.samples is None:
        gain = _point_gain(comp.challenger, comp.opponent, rule.higher_is_better)
        missing = other.label if challenger.samples is not None else challenger.label
        return comp, [
            f"{metric} {gain:+.2%} vs {other.label} ({comp.challenger:.4f} vs {comp.opponent:.4f}) "
            f"is a point estimate: {missing} has no per-sample scores, so the gain cannot be "
            f"bounded -> does not beat; {RESCORE_HINT}"
        ]
    mine, theirs = align(challenger.samples, other.samples)
    comp.recall_split = {
        "challenger": _split(challenger, mine, rule),
        "opponent": _split(other, theirs, rule),
    }
    if metric not in mine.values or metric not in theirs.values or len(mine) == 0:
        return comp, [f"no shared samples with {metric} for {challenger.label} and {other.label}"]
    try:
        interval = paired_bootstrap(
            mine.values[metric],
            theirs.values[metric],
            mine.user_id,
            n_resamples=rule.n_resamples,
            confidence=rule.confidence,
            seed=rule.seed,
            higher_is_better=rule.higher_is_better,
        )
    except ValueError as err:
        return comp, [f"{challenger.label} vs {other.label}: {err}"]
    comp.interval, comp.challenger, comp.opponent = interval, interval.mean_a, interval.mean_b
    comp.passed = interval.lower > rule.margin
    reasons = [
        f"{metric} {interval.point:+.2%} vs {other.label}, {rule.confidence:.0%} CI "
        f"[{interval.lower:+.1%}, {interval.upper:+.1%}] on {interval.n_users} users: "
        f"{'above' if comp.passed else 'not above'} {rule.margin:+.2%} -> "
        f"{'beats' if comp.passed else 'does not beat'} "
        f"({interval.mean_a:.4f} vs {interval.mean_b:.4f})",
        _split_line(comp, other.label),
    ]
    if role == "champion":
        reasons += _guards(challenger, mine, other, theirs, rule, comp)
    return comp, reasons


def _split_line(comp: Comparison, label: str) -> str:
    def text(values: Mapping[str, float]) -> str:
        return "/".join(f"{v:.4f}" for v in values.values())

    names = "/".join(m.split("_recall")[0] for m in comp.recall_split["challenger"])
    return (
        f"{names} recall: challenger {text(comp.recall_split['challenger'])}, "
        f"{label} {text(comp.recall_split['opponent'])}"
    )


def decide_promotion(
    challenger: Candidate,
    champion: Candidate | None,
    baselines: Sequence[Candidate],
    rule: GateRule | None = None,
) -> PromotionDecision:
    """Decide whether ``challenger`` replaces ``champion`` (pure: no I/O).

    Args:
        challenger: the new version, with per-sample scores on its test split.
        champion: the current champion scored on the challenger's split, or ``None``.
        baselines: every baseline scored on the challenger's split; the best one is faced.
        rule: margin, confidence, guards (default :class:`GateRule`'s defaults).

    Returns:
        The decision; ``promote`` is true only if every comparison and guard passed.
    """
    rule = rule or GateRule()
    metric = rule.primary_metric
    value = _value(challenger, metric)
    ok = math.isfinite(value)
    reasons = [] if ok else [f"{challenger.label} has no finite {metric} ({value}): refused"]
    if champion is None:
        reasons.append("no current champion: only the baseline comparison applies")
    baseline = best_baseline(challenger, baselines, rule)
    if baseline is None:
        ok = False
        reasons.append(f"no baseline has a finite {metric} on this split: refused; {RESCORE_HINT}")
    comparisons = []
    for role, other in (("baseline", baseline), ("champion", champion)):
        if other is None or not math.isfinite(value):
            continue
        comp, why = compare(challenger, other, role, rule)
        comparisons.append(comp)
        reasons += why
        ok = ok and comp.passed
    split = {challenger.label: _split(challenger, None, rule)}
    split.update({c.label: c.recall_split["opponent"] for c in comparisons if c.recall_split})
    # Opponents' values on the samples shared with the challenger, where compared.
    faced = {c.role: c.opponent for c in comparisons}
    roles = {"baseline": baseline, "champion": champion}
    labels = {"challenger": challenger.label}
    labels.update({role: other.label for role, other in roles.items() if other is not None})
    return PromotionDecision(
        promote=ok,
        reasons=reasons,
        primary_metric=metric,
        challenger=value,
        baseline=faced.get("baseline", _value(baseline, metric)),
        champion=faced.get("champion", _value(champion, metric)) if champion else None,
        margin=rule.margin,
        confidence=rule.confidence,
        n_users=0 if challenger.samples is None else challenger.samples.users_with(metric),
        n_resamples=rule.n_resamples,
        higher_is_better=rule.higher_is_better,
        comparisons=comparisons,
        recall_split=split,
        labels=labels,
    )
