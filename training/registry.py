"""Register trained runs as model versions; promote and roll back champions.

Conventions on a model version (all strings, as MLflow stores tags):
    ``metric.<name>``            test metrics of the version (on its own test split)
    ``baseline.<name>.<metric>`` baseline metrics on the same split
    ``data.<key>``               data fingerprint; ``data.split_hash`` names the test split
    ``study``                    Optuna study that produced the run
The version's run also holds its metrics; tags win when both exist.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, is_dataclass, replace
from typing import TYPE_CHECKING, Any

from core.config import ProjectConfig
from modelkit.registry import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS,
    model_aliases,
    registry_client,
    resolve_version,
)
from training.promotion import (
    Candidate,
    PromotionDecision,
    apply_decision,
    decide_promotion,
    log_action,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

# (champion_version, challenger_version) -> champion re-evaluated on the challenger's test split.
ChampionEvaluator = Callable[[str, str], Candidate]
SPLIT_TAG = "data.split_hash"
_MAX_TAG_CHARS = 5000  # MLflow's limit on a model-version tag value


def _flat_tags(prefix: str, values: Mapping[str, Any]) -> dict[str, str]:
    def text(value: Any) -> str:
        raw = value if isinstance(value, str) else json.dumps(value, default=str)
        return raw[:_MAX_TAG_CHARS]

    return {f"{prefix}{k}": text(v) for k, v in values.items() if v is not None}


def _as_mapping(fingerprint: Any) -> Mapping[str, Any]:
    """Accept a mapping, an object with ``to_dict()`` or a dataclass (e.g. DataFingerprint)."""
    if isinstance(fingerprint, Mapping):
        return fingerprint
    if hasattr(fingerprint, "to_dict"):
        return fingerprint.to_dict()
    if is_dataclass(fingerprint) and not isinstance(fingerprint, type):
        return asdict(fingerprint)
    raise TypeError(f"data_fingerprint must be a mapping or dataclass, not {type(fingerprint)}")


def _find_model_source(client: MlflowClient, run: Any, artifact: str) -> tuple[str, str | None]:
    """Return (source URI, logged model id) of the model logged as ``artifact`` in ``run``."""
    run_id = run.info.run_id
    found = client.search_logged_models(
        experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"
    )
    for logged in found:
        if logged.name == artifact:
            return logged.model_uri, logged.model_id
    return f"runs:/{run_id}/{artifact}", None


def register_run(
    config: ProjectConfig,
    run_id: str,
    *,
    data_fingerprint: Mapping[str, Any] | Any | None = None,
    study_name: str | None = None,
    metrics: Mapping[str, float] | None = None,
    baselines: Mapping[str, Mapping[str, float]] | None = None,
    artifact: str = "model",
) -> ModelVersion:
    """Register the model logged in ``run_id`` as a new version and alias it ``challenger``.

    Args:
        config: project configuration (tracking URI, model name).
        run_id: MLflow run holding a model logged with ``name=artifact`` and a ``bundle/``.
        data_fingerprint: data facts to tag as ``data.<key>`` (a mapping, an object with
            ``to_dict()`` or a dataclass; its ``split_hash`` names the test split); default:
            the run's ``data.*`` tags.
        study_name: Optuna study name to tag.
        metrics: test metrics to tag; default: the run's metrics not named ``baseline.*``.
        baselines: ``{baseline: {metric: value}}``; default: run metrics ``baseline.<b>.<m>``.
        artifact: name the model was logged under.

    Returns:
        The new model version (aliased ``challenger``).
    """
    from mlflow.exceptions import MlflowException

    client = registry_client(config)
    name = config.registry.model_name
    try:
        run = client.get_run(run_id)
    except MlflowException as err:
        raise LookupError(f"MLflow run {run_id!r} not found at {client.tracking_uri}") from err
    run_metrics = run.data.metrics
    if metrics is None:
        metrics = {k: v for k, v in run_metrics.items() if not k.startswith("baseline.")}
    tags = _flat_tags("metric.", {k: repr(float(v)) for k, v in metrics.items()})
    if baselines is None:
        tags.update({k: repr(v) for k, v in run_metrics.items() if k.startswith("baseline.")})
    else:
        for base, values in baselines.items():
            tags.update(
                _flat_tags(f"baseline.{base}.", {m: repr(float(v)) for m, v in values.items()})
            )
    if data_fingerprint is None:
        tags.update({k: v for k, v in run.data.tags.items() if k.startswith("data.")})
    else:
        tags.update(_flat_tags("data.", _as_mapping(data_fingerprint)))
    if study_name:
        tags["study"] = study_name
    if model_aliases(client, name) is None:
        client.create_registered_model(name)
    source, model_id = _find_model_source(client, run, artifact)
    version = client.create_model_version(name, source, run_id=run_id, tags=tags, model_id=model_id)
    client.set_registered_model_alias(name, CHALLENGER, version.version)
    return client.get_model_version(name, version.version)


def version_metrics(client: MlflowClient, version: ModelVersion) -> dict[str, float]:
    """Return a version's metrics: its run's metrics overridden by ``metric.<name>`` tags."""
    out: dict[str, float] = {}
    if version.run_id:
        out.update(client.get_run(version.run_id).data.metrics)
    for key, raw in (version.tags or {}).items():
        if key.startswith("metric."):
            try:
                out[key.removeprefix("metric.")] = float(raw)
            except ValueError:
                out[key.removeprefix("metric.")] = math.nan
    return {k: v for k, v in out.items() if not k.startswith("baseline.")}


def version_candidate(client: MlflowClient, version: ModelVersion, role: str) -> Candidate:
    """Build the gate's view of a model version (``role`` is e.g. "challenger")."""
    return Candidate(
        label=f"{role} v{version.version}",
        metrics=version_metrics(client, version),
        split_hash=(version.tags or {}).get(SPLIT_TAG),
        version=str(version.version),
    )


def best_baseline(version: ModelVersion, metric: str, higher_is_better: bool = True) -> Candidate:
    """Return the strongest baseline tagged on ``version`` for ``metric`` (empty if none)."""
    per_base: dict[str, dict[str, float]] = {}
    for key, raw in (version.tags or {}).items():
        parts = key.split(".", 2)
        if parts[0] == "baseline" and len(parts) == 3:
            per_base.setdefault(parts[1], {})[parts[2]] = float(raw)
    split = (version.tags or {}).get(SPLIT_TAG)
    scored = [(b, m) for b, m in per_base.items() if math.isfinite(m.get(metric, math.nan))]
    if not scored:
        return Candidate(f"baseline (none recorded for v{version.version})", {}, split)
    pick = max if higher_is_better else min
    name, values = pick(scored, key=lambda item: item[1][metric])
    return Candidate(f"baseline {name!r}", values, split)


def promote_version(
    config: ProjectConfig,
    version: str,
    force: bool = False,
    evaluate: ChampionEvaluator | None = None,
    higher_is_better: bool = True,
) -> PromotionDecision:
    """Run the gate for ``version`` against champion and baselines, log it, move aliases.

    Args:
        config: project configuration (model name, primary metric, margin).
        version: version number or alias (e.g. ``challenger``) to promote.
        force: promote even if the gate refuses; the reasons record "forced by user".
        evaluate: re-evaluates the champion on the challenger's split. Without it (and
            always with ``force``) the champion's stored metrics are used, and the gate
            refuses if the splits differ.
        higher_is_better: direction of the primary metric.

    Returns:
        The logged decision.
    """
    client = registry_client(config)
    name, reg = config.registry.model_name, config.registry
    target = resolve_version(client, name, version)
    challenger = version_candidate(client, target, "challenger")
    champ_version = (model_aliases(client, name) or {}).get(CHAMPION)
    if champ_version == str(target.version):
        raise ValueError(f"model {name!r} version {target.version} is already the champion")
    champion = None
    if champ_version is not None:
        if evaluate is not None and not force:
            champion = evaluate(champ_version, str(target.version))
        else:
            champion = version_candidate(
                client, client.get_model_version(name, champ_version), "champion"
            )
    baseline = best_baseline(target, reg.primary_metric, higher_is_better)
    decision = decide_promotion(
        challenger, champion, baseline, reg.primary_metric, reg.min_improvement, higher_is_better
    )
    if force:
        gate = [
            f"gate {'accepted' if decision.promote else 'refused'}: {r}" for r in decision.reasons
        ]
        decision = replace(decision, promote=True, forced=True, reasons=["forced by user", *gate])
    artifacts = f"{config.paths.resolved().artifact_root}/promotions"
    apply_decision(client, name, str(target.version), decision, artifact_location=artifacts)
    return decision


@dataclass(frozen=True)
class RollbackResult:
    """What a rollback changed."""

    model_name: str
    from_version: str
    to_version: str
    run_id: str


def rollback(config: ProjectConfig) -> RollbackResult:
    """Make the ``previous`` version champion again; the demoted one is tagged ``rolled_back``.

    Raises:
        LookupError: the model, its champion or its ``previous`` alias does not exist.
    """
    client = registry_client(config)
    name = config.registry.model_name
    aliases = model_aliases(client, name)
    if aliases is None:
        raise LookupError(f"registered model {name!r} does not exist")
    if CHAMPION not in aliases:
        raise LookupError(f"model {name!r} has no champion to roll back")
    if PREVIOUS not in aliases:
        raise LookupError(f"model {name!r} has no 'previous' alias: nothing to roll back to")
    old, new = aliases[CHAMPION], aliases[PREVIOUS]
    reasons = [f"rollback of {name!r}: champion v{old} -> v{new} (requested by user)"]
    artifacts = f"{config.paths.resolved().artifact_root}/promotions"
    params = {"model_name": name, "from_version": old, "to_version": new}
    run_id = log_action(client, "rollback", params, {}, reasons, artifacts)
    # Champion moves first so that a crash never leaves the model without one.
    client.set_registered_model_alias(name, CHAMPION, new)
    client.delete_registered_model_alias(name, PREVIOUS)
    client.set_model_version_tag(name, old, "rolled_back", "true")
    client.set_model_version_tag(name, old, "rollback.run_id", run_id)
    return RollbackResult(name, old, new, run_id)
