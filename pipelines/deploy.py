"""The deployment pipeline: registry version -> BentoML model -> bento -> record -> service.

``interest bento import`` + ``bento build`` package by hand (:func:`package_version`);
``interest deploy``, ``monitor run --rebuild`` and the demo deploy (:func:`deploy`): package,
write the deployment record with the registry (:mod:`modelkit.deployments`), and reload a
running service so that a promotion reaches traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx

from core.config import ProjectConfig
from modelkit.deployments import DeploymentRecord, new_record, record_deployment
from serving.launch import Server, free_port, start_server
from serving.package import bentoml_env, build_bento
from serving.registry_import import import_from_registry


@dataclass(frozen=True)
class Packaged:
    """A registry version imported into BentoML and built into a bento."""

    version: str  # registry version number
    model_tag: str  # BentoML model tag
    bento_tag: str | None  # None when the build was not asked for
    labels: dict[str, str]


def package_version(
    config: ProjectConfig,
    alias: str | None = "champion",
    version: str | None = None,
    *,
    build: bool = True,
    config_path: Path | None = None,
) -> Packaged:
    """Import a registered version (by alias or number) into BentoML and build its bento.

    Raises:
        LookupError: the model, alias or version does not exist.
        serving.package.BentoBuildError: ``bentoml build`` failed.
    """
    imported = import_from_registry(config, alias=alias, version=version)
    bento = build_bento(config, imported.tag, config_path) if build else None
    return Packaged(imported.labels["version"], imported.tag, bento, imported.labels)


def start_service(config: ProjectConfig, model_tag: str, timeout: float = 240) -> Server:
    """Start ``bentoml serve`` for ``model_tag`` on a free loopback port; wait for ``/readyz``.

    Raises:
        serving.launch.ServerStartError: it exited or was not ready in time (log tail inside).
    """
    port = free_port()
    log = config.paths.resolved().logs / f"bentoml-serve-{port}.log"
    return start_server(bentoml_env(config, model_tag), log, port, timeout)


@dataclass(frozen=True)
class DeployResult:
    """A deployment: what was packaged, the record written, and what the service answers."""

    packaged: Packaged
    record: DeploymentRecord
    served_version: str | None  # the version the running service reports after a reload


def reload_service(url: str, model_tag: str, token: str | None, timeout: float = 120) -> str:
    """Tell a running service to load ``model_tag``; return the version it then serves.

    Raises:
        RuntimeError: the service refused or is unreachable (status and body in the message).
    """
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(base_url=url, timeout=timeout, headers=headers) as client:
            answer = client.post("/admin/reload", json={"model_tag": model_tag})
            if answer.status_code != 200:
                raise RuntimeError(
                    f"{url}/admin/reload answered {answer.status_code}: {answer.text[:500]}"
                )
            return str(client.get("/model").json()["model"]["version"])
    except httpx.HTTPError as err:
        raise RuntimeError(f"service at {url} is unreachable: {err}") from err


def deploy(
    config: ProjectConfig,
    alias: str | None = "champion",
    version: str | None = None,
    *,
    url: str | None = None,
    config_path: Path | None = None,
    command: str = "interest deploy",
) -> DeployResult:
    """Package a registry version, record the deployment with the registry, reload the service.

    Args:
        config: project configuration.
        alias: registry alias to deploy (default ``champion``); ``version`` wins over it.
        version: registry version number.
        url: a running service to reload with the new model (none: package and record only;
            restart the service with ``interest serve``).
        config_path: project config file the ``bentoml`` children must read.
        command: what to record as the deploying command.

    Raises:
        LookupError: the version or alias does not exist.
        serving.package.BentoBuildError: the build failed (nothing recorded).
        RuntimeError: the service did not reload (the deployment is recorded: the bento exists).
    """
    packaged = package_version(config, alias, version, config_path=config_path)
    record = new_record(
        config, packaged.version, packaged.model_tag, packaged.bento_tag, command, url
    )
    record_deployment(config, record)
    served = None
    if url is not None:
        served = reload_service(url, packaged.model_tag, config.serving.auth_token)
    return DeployResult(packaged, record, served)
