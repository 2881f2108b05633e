"""Deployment records: which registry version runs as which bento, since when, put there by whom.

The record lives with the registry, so ``interest status``, the service and a person in the
MLflow UI read the same thing:

* the registered model's tag ``deployment`` holds the current :class:`DeploymentRecord` as
  JSON (what is deployed now);
* the deployed version gets tags ``deployment.bento_tag``, ``deployment.model_tag``,
  ``deployment.at``, ``deployment.by`` and ``deployment.command`` (the last time that version
  was deployed), visible in the version table.

Writer and reader sit side by side here; CONTRACT.md describes the fields.
"""

from __future__ import annotations

import getpass
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from mlflow.exceptions import MlflowException

from core.config import ProjectConfig
from modelkit.registry import CHAMPION, model_aliases, registry_client, tracking_store_exists

DEPLOYMENT_TAG = "deployment"


@dataclass(frozen=True)
class DeploymentRecord:
    """One deployment of a registry version as a bento."""

    model_name: str
    model_version: str
    bento_tag: str | None
    model_tag: str
    at: str  # UTC ISO time
    by: str  # user name of whoever ran the command
    command: str  # the command that deployed it, e.g. ``interest deploy``
    url: str | None = None  # the service told to reload, if any

    def to_json(self) -> str:
        """The record as one JSON object."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DeploymentRecord:
        """Parse :meth:`to_json` output.

        Raises:
            ValueError: not a deployment record (names the missing field).
        """
        data = json.loads(text)
        try:
            return cls(**data)
        except TypeError as err:
            raise ValueError(f"tag {DEPLOYMENT_TAG!r} is not a deployment record: {err}") from err


def new_record(
    config: ProjectConfig,
    version: str,
    model_tag: str,
    bento_tag: str | None,
    command: str,
    url: str | None = None,
) -> DeploymentRecord:
    """A record stamped now, by the current user."""
    return DeploymentRecord(
        model_name=config.registry.model_name,
        model_version=str(version),
        bento_tag=bento_tag,
        model_tag=model_tag,
        at=datetime.now(UTC).isoformat(),
        by=getpass.getuser(),
        command=command,
        url=url,
    )


def record_deployment(config: ProjectConfig, record: DeploymentRecord) -> None:
    """Write ``record`` to the registered model and to the deployed version."""
    client = registry_client(config)
    name = record.model_name
    client.set_registered_model_tag(name, DEPLOYMENT_TAG, record.to_json())
    for key in ("bento_tag", "model_tag", "at", "by", "command"):
        value = getattr(record, key)
        if value is not None:
            client.set_model_version_tag(name, record.model_version, f"deployment.{key}", value)


def current_deployment(config: ProjectConfig) -> DeploymentRecord | None:
    """The current deployment of the configured model, or ``None`` when nothing was deployed."""
    if not tracking_store_exists(config):
        return None
    client = registry_client(config)
    try:
        model = client.get_registered_model(config.registry.model_name)
    except MlflowException:
        return None
    text = (model.tags or {}).get(DEPLOYMENT_TAG)
    return DeploymentRecord.from_json(text) if text else None


def champion_version(config: ProjectConfig) -> str | None:
    """The version holding ``champion`` now (``None`` when there is none)."""
    if not tracking_store_exists(config):
        return None
    aliases = model_aliases(registry_client(config), config.registry.model_name) or {}
    return aliases.get(CHAMPION)
