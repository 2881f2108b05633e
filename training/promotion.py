"""Log the gate's decision, then move the aliases: the promotion's side effects.

The decision itself is pure and lives in :mod:`training.gate` (re-exported here). A decision
is always logged (an MLflow run in the ``promotions`` experiment with ``decision.json``,
plus model-version tags) before any alias moves, and every alias move is appended to the
model's alias history (:mod:`training.aliases`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelkit.registry import CHALLENGER, CHAMPION, PREVIOUS, model_aliases
from training.aliases import invoked_command, move_alias
from training.decision import Candidate, PromotionDecision
from training.gate import GateRule, decide_promotion

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = [
    "PROMOTIONS_EXPERIMENT",
    "Candidate",
    "GateRule",
    "PromotionDecision",
    "apply_decision",
    "decide_promotion",
    "ensure_experiment",
    "log_action",
]

PROMOTIONS_EXPERIMENT = "promotions"
# MLflow caps model-version tag values; keep reasons readable and within the limit.
_MAX_TAG_CHARS = 5000
# Scalar decision fields logged as run params (the full decision is in decision.json).
_PARAMS = ("primary_metric", "margin", "confidence", "n_users", "n_resamples", "forced")


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


def _decision_metrics(decision: PromotionDecision) -> dict[str, float | None]:
    out: dict[str, float | None] = {
        "challenger": decision.challenger,
        "baseline": decision.baseline,
        "champion": decision.champion,
    }
    for comp in decision.comparisons:
        if comp.interval is not None:
            out[f"gain.{comp.role}"] = comp.interval.point
            out[f"gain.{comp.role}.lower"] = comp.interval.lower
            out[f"gain.{comp.role}.upper"] = comp.interval.upper
    return out


def apply_decision(
    client: MlflowClient,
    model_name: str,
    version: str,
    decision: PromotionDecision,
    artifact_location: str | None = None,
    command: str | None = None,
) -> str:
    """Log ``decision`` for ``model_name`` version ``version``, then move aliases if it promotes.

    Order matters for crash safety: the decision is logged first; then the old champion gets
    ``previous`` before the challenger gets ``champion``, so a crash between steps never
    leaves the model without a champion. Each move is appended to the alias history with
    ``command`` (default: this process's command line) and the promotion run's id.

    Returns:
        The id of the MLflow run that recorded the decision.
    """
    version = str(version)
    verdict = "promoted" if decision.promote else "refused"
    params: dict[str, Any] = {"model_name": model_name, "version": version, "decision": verdict}
    params.update({k: getattr(decision, k) for k in _PARAMS})
    params.update({f"label.{k}": v for k, v in decision.labels.items()})
    metrics = _decision_metrics(decision)
    run_id = log_action(client, "promote", params, metrics, decision.reasons, artifact_location)
    client.log_text(run_id, json.dumps(decision.to_dict(), indent=2), "decision.json")
    client.set_tag(run_id, "decision", verdict)
    client.set_model_version_tag(model_name, version, "promotion.decision", verdict)
    reasons = "; ".join(decision.reasons)[:_MAX_TAG_CHARS]
    client.set_model_version_tag(model_name, version, "promotion.reasons", reasons)
    client.set_model_version_tag(model_name, version, "promotion.run_id", run_id)
    if not decision.promote:
        return run_id
    why = f"{'forced by user' if decision.forced else 'gate passed'} (promotions run {run_id})"
    command = command or invoked_command()
    aliases = model_aliases(client, model_name) or {}
    old = aliases.get(CHAMPION)
    moves = [(CHAMPION, version)]
    if old is not None and old != version:
        moves.insert(0, (PREVIOUS, old))
    if aliases.get(CHALLENGER) == version:
        moves.append((CHALLENGER, None))
    for alias, target in moves:
        # Each alias moves once, so ``aliases`` still holds its state before the move.
        move_alias(client, model_name, alias, target, command=command, reason=why, aliases=aliases)
    return run_id
