"""One view of the project's state: registry versions, Optuna studies, BentoML models.

It reads what training (registry, studies) and serving (the BentoML store) left behind, so
it lives here, above both. Every section reads without creating anything: a missing SQLite
file or BentoML home is reported as empty, not made.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import optuna

from core.config import ProjectConfig
from modelkit.deployments import champion_version, current_deployment
from modelkit.registry import registry_client, tracking_store_exists
from serving.store import list_stored_models
from training.registry import version_metrics

# Metrics shown per version besides the configured primary metric.
KEY_METRICS = ("recall_at_10", "ndcg_at_10", "buy_auc", "churn_auc", "trajectory_js")
MAX_STUDIES = 5


def _iso(millis: int | None) -> str | None:
    if millis is None:
        return None
    return dt.datetime.fromtimestamp(millis / 1000, tz=dt.UTC).isoformat(timespec="seconds")


def _finite(value: float) -> float | None:
    # JSON has no NaN: report undefined metrics as null.
    return value if math.isfinite(value) else None


def _sqlite_missing(uri: str) -> bool:
    return uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file()


def list_registered_models(config: ProjectConfig) -> list[dict[str, Any]]:
    """Return each registered model with its versions, newest first."""
    if not tracking_store_exists(config):
        return []
    client = registry_client(config)
    wanted = (config.registry.primary_metric, *KEY_METRICS)
    models = []
    for model in client.search_registered_models():
        versions = client.search_model_versions(f"name = '{model.name}'")
        # search_model_versions leaves ModelVersion.aliases empty; the model's map is complete.
        by_version: dict[str, list[str]] = {}
        for alias, number in (model.aliases or {}).items():
            by_version.setdefault(str(number), []).append(alias)
        rows = []
        for mv in sorted(versions, key=lambda v: int(v.version), reverse=True):
            metrics = version_metrics(client, mv)
            tags = mv.tags or {}
            rows.append(
                {
                    "version": str(mv.version),
                    "aliases": sorted(by_version.get(str(mv.version), [])),
                    "created": _iso(mv.creation_timestamp),
                    "run_id": mv.run_id,
                    "metrics": {
                        k: _finite(metrics[k]) for k in dict.fromkeys(wanted) if k in metrics
                    },
                    "split_hash": tags.get("data.split_hash"),
                    "decision": tags.get("promotion.decision"),
                    "rolled_back": tags.get("rolled_back") == "true",
                }
            )
        aliases = {a: str(n) for a, n in (model.aliases or {}).items()}
        models.append({"name": model.name, "aliases": aliases, "versions": rows})
    return models


def list_studies(config: ProjectConfig) -> list[dict[str, Any]]:
    """Return the latest Optuna studies: best value and trial counts by state."""
    storage = config.paths.resolved().optuna_storage
    if _sqlite_missing(storage):
        return []
    summaries = optuna.get_all_study_summaries(storage)
    latest = dt.datetime.min
    summaries.sort(key=lambda s: s.datetime_start or latest, reverse=True)
    out = []
    for summary in summaries[:MAX_STUDIES]:
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        states = Counter(t.state.name for t in study.get_trials(deepcopy=False))
        best = summary.best_trial
        out.append(
            {
                "name": summary.study_name,
                "direction": summary.direction.name if summary.direction else None,
                "started": summary.datetime_start.isoformat() if summary.datetime_start else None,
                "best_value": best.value if best is not None else None,
                "best_trial": best.number if best is not None else None,
                "n_trials": summary.n_trials,
                "trials_by_state": dict(sorted(states.items())),
            }
        )
    return out


def list_bento_models(config: ProjectConfig) -> list[dict[str, Any]]:
    """Return the models in the configured BentoML model store (``<home>/models``)."""
    return [
        {
            "tag": str(m.tag),
            "created": m.creation_time.isoformat(timespec="seconds"),
            "labels": dict(m.info.labels or {}),
        }
        for m in list_stored_models(config.paths.resolved().bentoml_home)
    ]


def list_bentos(config: ProjectConfig, models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the built bentos (``<home>/bentos``) and the registry version each carries.

    The version comes from the labels of the bento's model in the store (``models``, as
    :func:`list_bento_models` returns them); ``None`` when that model is gone or unlabelled.
    """
    from bentoml._internal.bento import BentoStore  # no public way to open a given home

    folder = config.paths.resolved().bentoml_home / "bentos"
    if not folder.is_dir():
        return []
    labels = {m["tag"]: m["labels"] for m in models}
    out = []
    for bento in BentoStore(str(folder)).list():
        tags = [str(info.tag) for info in bento.info.models]
        carried = [labels.get(tag, {}) for tag in tags]
        out.append(
            {
                "tag": str(bento.tag),
                "created": bento.info.creation_time.isoformat(timespec="seconds"),
                "models": tags,
                "model_name": next((c["model_name"] for c in carried if "model_name" in c), None),
                "registry_version": next((c["version"] for c in carried if "version" in c), None),
            }
        )
    return sorted(out, key=lambda b: b["created"], reverse=True)


def deployment_status(config: ProjectConfig) -> dict[str, Any] | None:
    """What is deployed (the registry's deployment record) next to what holds ``champion``.

    Returns:
        ``{model_version, bento_tag, model_tag, at, by, command, url, champion_version,
        is_champion}``, or ``None`` when nothing was deployed yet.
    """
    record = current_deployment(config)
    if record is None:
        return None
    champion = champion_version(config)
    return {
        **asdict(record),
        "champion_version": champion,
        "is_champion": champion is not None and champion == record.model_version,
    }


def status(config: ProjectConfig) -> dict[str, Any]:
    """Collect the project's state for ``interest status``.

    Returns:
        ``{state_dir, tracking_uri, optuna_storage, bentoml_home, registered_models,
        studies, bento_models, bentos, deployment}``; each list is empty when its store does
        not exist yet, ``deployment`` is ``None`` until a first ``interest deploy``.
    """
    paths = config.paths.resolved()
    models = list_bento_models(config)
    return {
        "state_dir": str(paths.state_dir),
        "tracking_uri": paths.tracking_uri,
        "optuna_storage": paths.optuna_storage,
        "bentoml_home": str(paths.bentoml_home),
        "registered_models": list_registered_models(config),
        "studies": list_studies(config),
        "bento_models": models,
        "bentos": list_bentos(config, models),
        "deployment": deployment_status(config),
    }
