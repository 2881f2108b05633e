"""The packaging pipeline: registry version -> BentoML model store -> bento.

``interest bento import`` + ``bento build`` by hand, the monitoring pass after a promotion
(``monitor run --rebuild``) and the demo all call :func:`package_version`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.config import ProjectConfig
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
