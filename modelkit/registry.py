"""Read-side access to the MLflow Model Registry, shared by training, serving and monitoring.

Serving (``bento import``) and monitoring (reference lookup) need the champion and its bundle
but must not import ``training``; this module holds that small, MLflow-client-only part.
Aliases, never the deprecated stages, name the roles of versions.
"""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from core.config import ProjectConfig

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous"
# Artifact path of the model bundle inside the version's run (CONTRACT.md).
BUNDLE_PATH = "bundle"


def registry_client(config: ProjectConfig) -> MlflowClient:
    """Return an MLflow client for the configured tracking store (also the registry)."""
    uri = config.paths.resolved().tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def tracking_store_exists(config: ProjectConfig) -> bool:
    """Say whether the tracking store exists, without creating a SQLite file as a side effect."""
    uri = config.paths.resolved().tracking_uri
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).is_file()
    return True


def model_aliases(client: MlflowClient, model_name: str) -> dict[str, str] | None:
    """Return ``{alias: version}`` of a registered model, or ``None`` if it is not registered."""
    try:
        model = client.get_registered_model(model_name)
    except MlflowException as err:
        if err.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    return {alias: str(version) for alias, version in (model.aliases or {}).items()}


def resolve_version(client: MlflowClient, model_name: str, alias_or_version: str) -> ModelVersion:
    """Return the model version named by an alias (``champion``) or a number (``3``).

    Raises:
        LookupError: the model, alias or version does not exist (the message names which).
    """
    aliases = model_aliases(client, model_name)
    if aliases is None:
        raise LookupError(f"registered model {model_name!r} does not exist")
    ref = str(alias_or_version).strip()
    if ref.isdigit():
        try:
            return client.get_model_version(model_name, ref)
        except MlflowException as err:
            raise LookupError(f"model {model_name!r} has no version {ref}") from err
    if ref not in aliases:
        known = ", ".join(f"{a}->v{v}" for a, v in sorted(aliases.items())) or "none"
        raise LookupError(f"model {model_name!r} has no alias {ref!r} (aliases: {known})")
    return client.get_model_version(model_name, aliases[ref])


def registered_champion(config: ProjectConfig) -> tuple[str, str] | None:
    """Return ``(version, run_id)`` of the configured model's champion, or ``None`` if none."""
    if not tracking_store_exists(config):
        return None
    client = registry_client(config)
    name = config.registry.model_name
    aliases = model_aliases(client, name)
    if not aliases or CHAMPION not in aliases:
        return None
    version = client.get_model_version(name, aliases[CHAMPION])
    return str(version.version), str(version.run_id)


def download_bundle(config: ProjectConfig, alias_or_version: str, dst: Path) -> Path:
    """Download the ``bundle/`` artifact directory of a version's run.

    Args:
        config: project configuration (tracking URI, model name).
        alias_or_version: ``"champion"``, ``"previous"``, ... or a version number.
        dst: local folder; the bundle lands in ``dst / "bundle"``.

    Returns:
        The local bundle directory.

    Raises:
        LookupError: the model, alias or version does not exist, or its run has no bundle.
    """
    client = registry_client(config)
    name = config.registry.model_name
    version = resolve_version(client, name, alias_or_version)
    if not version.run_id:
        raise LookupError(f"model {name!r} version {version.version} has no source run")
    names = {Path(f.path).name for f in client.list_artifacts(version.run_id)}
    if BUNDLE_PATH not in names:
        raise LookupError(
            f"run {version.run_id} of model {name!r} version {version.version} "
            f"has no {BUNDLE_PATH!r} artifact directory"
        )
    dst.mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(version.run_id, BUNDLE_PATH, str(dst)))
