"""Register trained runs as model versions; promote and roll back champions.

Conventions on a model version (all strings, as MLflow stores tags):
    ``data.<key>``               data fingerprint; ``data.split_hash`` names the test split
    ``study``                    Optuna study that produced the run
The version's metrics live on its run: test metrics as ``<name>``, baselines on the same
split as ``baseline.<baseline>.<metric>`` (metrics handed to :func:`register_run` are logged
there). Versions registered before this carry them as ``metric.*``/``baseline.*`` tags,
which readers still honour (a given non-finite metric, which a run cannot hold, is still
tagged so). The version's description holds the card's headline metrics and
a link to the card; the registered model gets a description when it is created.
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
from training.aliases import (
    AliasMove,
    alias_history,
    invoked_command,
    move_alias,
    rollback_target,
)
from training.contenders import rescore_version, stored_contenders, version_metrics
from training.describe import MODEL_DESCRIPTION, log_run_metrics, version_description
from training.gate import GateRule
from training.promotion import (
    Candidate,
    PromotionDecision,
    apply_decision,
    decide_promotion,
    log_action,
)

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

__all__ = [
    "ChampionEvaluator",
    "RollbackResult",
    "model_history",
    "promote_version",
    "register_run",
    "rollback",
    "version_metrics",  # pipelines.status reads it from here
]

# (champion_version, challenger_version) -> champion re-evaluated on the challenger's test split.
ChampionEvaluator = Callable[[str, str], Candidate]
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
        metrics: test metrics, logged on the run where it lacks them; default: the run's.
        baselines: ``{baseline: {metric: value}}``, logged on the run as
            ``baseline.<b>.<m>`` where it lacks them; default: the run's.
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
    given = dict(metrics or {})
    for base, values in (baselines or {}).items():
        given.update({f"baseline.{base}.{m}": v for m, v in values.items()})
    log_run_metrics(client, run_id, given, run.data.metrics)
    run_metrics = {**run.data.metrics, **given}
    # A run metric cannot be NaN: a given non-finite value stays a version tag, which wins.
    bad = {k: repr(float(v)) for k, v in given.items() if not math.isfinite(float(v))}
    tags: dict[str, str] = _flat_tags("metric.", {k: v for k, v in bad.items() if "." not in k})
    tags.update({k: v for k, v in bad.items() if k.startswith("baseline.")})
    if data_fingerprint is None:
        tags.update({k: v for k, v in run.data.tags.items() if k.startswith("data.")})
    else:
        tags.update(_flat_tags("data.", _as_mapping(data_fingerprint)))
    if study_name:
        tags["study"] = study_name
    if model_aliases(client, name) is None:
        client.create_registered_model(name, description=MODEL_DESCRIPTION)
    source, model_id = _find_model_source(client, run, artifact)
    description = version_description(run_metrics, run, study_name, tags.get("data.split_hash"))
    version = client.create_model_version(
        name, source, run_id=run_id, tags=tags, model_id=model_id, description=description
    )
    move_alias(
        client, name, CHALLENGER, str(version.version),
        command=invoked_command(), reason=f"registered run {run_id}",
    )  # fmt: skip
    return client.get_model_version(name, version.version)


def promote_version(
    config: ProjectConfig,
    version: str,
    force: bool = False,
    evaluate: ChampionEvaluator | None = None,
    higher_is_better: bool = True,
    *,
    events: pd.DataFrame | None = None,
    command: str | None = None,
) -> PromotionDecision:
    """Run the gate for ``version`` against champion and baselines, log it, move aliases.

    Args:
        config: project configuration (model name, the gate's rule in ``registry``).
        version: version number or alias (e.g. ``challenger``) to promote.
        force: promote even if the gate refuses; the reasons record "forced by user".
        evaluate: re-scores the champion on the challenger's split (the refit passes one).
        higher_is_better: direction of the primary metric.
        events: an event log: challenger, champion and baselines are all re-scored on its
            current test split, so versions trained on other data can be compared. Without
            it (and always with ``force``) the stored per-sample scores are used, and the
            gate refuses when the splits differ, saying to pass the data.
        command: recorded in the alias history with every alias this moves (default: this
            process's command line, e.g. ``interest tune --data ...``).

    Returns:
        The logged decision.
    """
    client = registry_client(config)
    name = config.registry.model_name
    target = resolve_version(client, name, version)
    number = str(target.version)
    champ_version = (model_aliases(client, name) or {}).get(CHAMPION)
    if champ_version == number:
        raise ValueError(f"model {name!r} version {number} is already the champion")
    champion: Candidate | None = None
    if events is not None and not force:
        challenger, baselines = rescore_version(config, events, number).candidates("challenger")
        if champ_version is not None:
            rescored = rescore_version(config, events, champ_version, baselines=False)
            champion = rescored.candidates("champion")[0]
    else:
        challenger, baselines = stored_contenders(client, target, "challenger")
        if champ_version is not None and evaluate is not None and not force:
            champion = evaluate(champ_version, number)
        elif champ_version is not None:
            stored = client.get_model_version(name, champ_version)
            champion = stored_contenders(client, stored, "champion")[0]
    rule = GateRule.from_config(config.registry, higher_is_better)
    decision = decide_promotion(challenger, champion, baselines, rule)
    if force:
        gate = [
            f"gate {'accepted' if decision.promote else 'refused'}: {r}" for r in decision.reasons
        ]
        decision = replace(decision, promote=True, forced=True, reasons=["forced by user", *gate])
    artifacts = f"{config.paths.resolved().artifact_root}/promotions"
    apply_decision(client, name, number, decision, artifact_location=artifacts, command=command)
    return decision


@dataclass(frozen=True)
class RollbackResult:
    """What a rollback changed."""

    model_name: str
    from_version: str
    to_version: str
    run_id: str


def rollback(
    config: ProjectConfig, *, reason: str = "requested by user", command: str | None = None
) -> RollbackResult:
    """Undo the last champion move (see :func:`training.aliases.rollback_target`).

    The demoted version gets ``previous`` (so a second rollback undoes this one) and the
    tag ``rolled_back``; the action is logged in the ``promotions`` experiment and in the
    alias history.

    Raises:
        training.aliases.NothingToRollBack: no champion, or no earlier one to return to.
        LookupError: the model does not exist, or its champion moved outside ``interest``.
    """
    client = registry_client(config)
    name = config.registry.model_name
    aliases = model_aliases(client, name)
    if aliases is None:
        raise LookupError(f"registered model {name!r} does not exist")
    new = rollback_target(alias_history(client, name), aliases)
    old = aliases[CHAMPION]
    reasons = [f"rollback of {name!r}: champion v{old} -> v{new} ({reason})"]
    artifacts = f"{config.paths.resolved().artifact_root}/promotions"
    params = {"model_name": name, "from_version": old, "to_version": new, "reason": reason}
    run_id = log_action(client, "rollback", params, {}, reasons, artifacts)
    why = f"rollback: {reason} (promotions run {run_id})"
    # Champion moves first so that a crash never leaves the model without one.
    for alias, target in ((CHAMPION, new), (PREVIOUS, old)):
        move_alias(
            client,
            name,
            alias,
            target,
            command=command or invoked_command(),
            reason=why,
            aliases=aliases,
        )
    client.set_model_version_tag(name, old, "rolled_back", "true")
    client.set_model_version_tag(name, old, "rollback.run_id", run_id)
    if "rolled_back" in (client.get_model_version(name, new).tags or {}):
        client.delete_model_version_tag(name, new, "rolled_back")
    return RollbackResult(name, old, new, run_id)


def model_history(config: ProjectConfig) -> list[AliasMove]:
    """Every recorded alias move of the configured model, oldest first.

    Raises:
        LookupError: the model does not exist.
    """
    client = registry_client(config)
    name = config.registry.model_name
    if model_aliases(client, name) is None:
        raise LookupError(f"registered model {name!r} does not exist")
    return alias_history(client, name)
