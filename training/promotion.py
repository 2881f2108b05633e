"""The champion/challenger promotion gate: decide (pure), log the decision, then move aliases.

A challenger is promoted only if it beats the best baseline and the current champion, all
measured on the same test split, by a relative margin. The decision is always logged (an
MLflow run in the ``promotions`` experiment plus model-version tags) before any alias moves.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from modelkit.registry import CHALLENGER, CHAMPION, PREVIOUS, model_aliases

if TYPE_CHECKING:
    from mlflow import MlflowClient

PROMOTIONS_EXPERIMENT = "promotions"
# MLflow caps model-version tag values; keep reasons readable and within the limit.
_MAX_TAG_CHARS = 5000
# Decision fields logged as metrics or artifacts rather than params.
_NOT_PARAMS = ("reasons", "labels", "challenger", "baseline", "champion")


@dataclass(frozen=True)
class Candidate:
    """One contender: a model version or a baseline, with metrics on one test split."""

    label: str  # human-readable, e.g. "challenger v3" or "baseline 'popularity'"
    metrics: Mapping[str, float]
    split_hash: str | None = None  # fingerprint of the test split the metrics came from
    version: str | None = None


@dataclass
class PromotionDecision:
    """The outcome of the gate, with the numbers it compared."""

    promote: bool
    reasons: list[str]
    primary_metric: str
    challenger: float
    baseline: float
    champion: float | None
    min_improvement: float
    higher_is_better: bool
    labels: dict[str, str] = field(default_factory=dict)
    forced: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dict (NaN becomes ``None``)."""
        out = asdict(self)
        for key in ("challenger", "baseline", "champion"):
            if out[key] is not None and not math.isfinite(out[key]):
                out[key] = None
        return out


def _value(candidate: Candidate, metric: str) -> float:
    raw = candidate.metrics.get(metric)
    return float("nan") if raw is None else float(raw)


def _relative_gain(value: float, reference: float, higher_is_better: bool) -> float:
    delta = value - reference if higher_is_better else reference - value
    if reference == 0:
        return math.inf if delta > 0 else (0.0 if delta == 0 else -math.inf)
    return delta / abs(reference)


def _compare(
    challenger: Candidate, other: Candidate, metric: str, min_improvement: float, hib: bool
) -> tuple[bool, str]:
    ours, theirs = _value(challenger, metric), _value(other, metric)
    if not math.isfinite(theirs):
        return False, f"{other.label} has no finite {metric} ({theirs}): cannot compare"
    gain = _relative_gain(ours, theirs, hib)
    ok = gain > 0 and gain >= min_improvement
    verdict = "beats" if ok else "does not beat"
    return ok, (
        f"{challenger.label} {metric}={ours:.4f} vs {other.label} {theirs:.4f}: "
        f"{gain:+.2%} relative, needs > 0 and >= {min_improvement:+.2%} -> {verdict}"
    )


def _same_split(challenger: Candidate, other: Candidate) -> tuple[bool, str]:
    if challenger.split_hash == other.split_hash:
        return True, ""
    return False, (
        f"test split fingerprints differ: {challenger.label} {challenger.split_hash or 'unknown'}"
        f" vs {other.label} {other.split_hash or 'unknown'}; re-evaluate on the same split"
    )


def decide_promotion(
    challenger: Candidate,
    champion: Candidate | None,
    best_baseline: Candidate,
    primary_metric: str,
    min_improvement: float,
    higher_is_better: bool = True,
) -> PromotionDecision:
    """Decide whether ``challenger`` replaces ``champion`` (pure: no I/O).

    Args:
        challenger: the new version, with metrics on its test split.
        champion: the current champion re-evaluated on the challenger's split, or ``None``.
        best_baseline: the strongest baseline on the challenger's split.
        primary_metric: metric name compared, e.g. ``recall_at_10``.
        min_improvement: relative margin required over each reference (0.02 = 2 %).
        higher_is_better: direction of ``primary_metric``.

    Returns:
        The decision; ``promote`` is true only if every check passed.
    """
    reasons: list[str] = []
    ok = True
    value = _value(challenger, primary_metric)
    if not math.isfinite(value):
        ok = False
        reasons.append(f"{challenger.label} has no finite {primary_metric} ({value}): refused")
    references = [best_baseline] + ([champion] if champion is not None else [])
    if champion is None:
        reasons.append("no current champion: only the baseline comparison applies")
    for other in references:
        same, why = _same_split(challenger, other)
        if not same:
            ok = False
            reasons.append(why)
            continue
        if math.isfinite(value):
            beats, why = _compare(
                challenger, other, primary_metric, min_improvement, higher_is_better
            )
            ok = ok and beats
            reasons.append(why)
    labels = {"challenger": challenger.label, "baseline": best_baseline.label}
    if champion is not None:
        labels["champion"] = champion.label
    return PromotionDecision(
        promote=ok,
        reasons=reasons,
        primary_metric=primary_metric,
        challenger=value,
        baseline=_value(best_baseline, primary_metric),
        champion=None if champion is None else _value(champion, primary_metric),
        min_improvement=min_improvement,
        higher_is_better=higher_is_better,
        labels=labels,
    )


def ensure_experiment(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    """Return the id of experiment ``name``, creating it (with its artifact location) if absent."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    return client.create_experiment(name, artifact_location=artifact_location)


def log_action(
    client: MlflowClient,
    action: str,
    params: Mapping[str, Any],
    metrics: Mapping[str, float | None],
    reasons: list[str],
    artifact_location: str | None = None,
) -> str:
    """Record a registry action as a finished run in the ``promotions`` experiment.

    Uses the client API (not the fluent one) so a caller's active run is left alone.

    Returns:
        The run id.
    """
    exp_id = ensure_experiment(client, PROMOTIONS_EXPERIMENT, artifact_location)
    run = client.create_run(exp_id, tags={"action": action}, run_name=f"{action}")
    run_id = run.info.run_id
    for key, val in params.items():
        client.log_param(run_id, key, str(val))
    for key, num in metrics.items():
        if num is not None and math.isfinite(num):
            client.log_metric(run_id, key, float(num))
    client.log_text(run_id, "\n".join(reasons) + "\n", "reasons.txt")
    client.set_terminated(run_id)
    return run_id


def apply_decision(
    client: MlflowClient,
    model_name: str,
    version: str,
    decision: PromotionDecision,
    artifact_location: str | None = None,
) -> str:
    """Log ``decision`` for ``model_name`` version ``version``, then move aliases if it promotes.

    Order matters for crash safety: the decision is logged first; then the old champion gets
    ``previous`` before the challenger gets ``champion``, so a crash between steps never
    leaves the model without a champion.

    Returns:
        The id of the MLflow run that recorded the decision.
    """
    version = str(version)
    verdict = "promoted" if decision.promote else "refused"
    params = {"model_name": model_name, "version": version, "decision": verdict}
    params.update({k: v for k, v in decision.to_dict().items() if k not in _NOT_PARAMS})
    metrics = {k: getattr(decision, k) for k in ("challenger", "baseline", "champion")}
    run_id = log_action(client, "promote", params, metrics, decision.reasons, artifact_location)
    client.log_text(run_id, json.dumps(decision.to_dict(), indent=2), "decision.json")
    client.set_tag(run_id, "decision", verdict)
    client.set_model_version_tag(model_name, version, "promotion.decision", verdict)
    reasons = "; ".join(decision.reasons)[:_MAX_TAG_CHARS]
    client.set_model_version_tag(model_name, version, "promotion.reasons", reasons)
    client.set_model_version_tag(model_name, version, "promotion.run_id", run_id)
    if not decision.promote:
        return run_id
    aliases = model_aliases(client, model_name) or {}
    old = aliases.get(CHAMPION)
    if old is not None and old != version:
        client.set_registered_model_alias(model_name, PREVIOUS, old)
    client.set_registered_model_alias(model_name, CHAMPION, version)
    if aliases.get(CHALLENGER) == version:
        client.delete_registered_model_alias(model_name, CHALLENGER)
    return run_id
