"""From the MLflow Model Registry to the BentoML model store (``interest bento import``).

The registry names a version (by alias, e.g. ``champion``, or by number); its run holds the
model bundle under ``bundle/``. Importing copies that bundle into the BentoML store at
``paths.bentoml_home`` and labels it with where it came from, so a running service (and
``bentoml models list``) can always say which registry version it serves.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.arrays import FeatureSpec
from core.config import ProjectConfig
from modelkit.registry import download_bundle, model_aliases, registry_client, resolve_version
from serving.store import import_bundle


@dataclass(frozen=True)
class ImportedModel:
    """A registry version now in the BentoML model store."""

    tag: str  # BentoML tag, ``name:version``
    home: Path  # BentoML home holding it
    labels: dict[str, str]


def bundle_labels(bundle_dir: Path) -> dict[str, str]:
    """Hashes that identify what a bundle expects: feature spec, vocabulary, training data."""
    spec = FeatureSpec.from_json((bundle_dir / "feature_spec.json").read_text())
    meta = json.loads((bundle_dir / "metadata.json").read_text())
    fingerprint = meta.get("fingerprint") or meta.get("data_fingerprint") or {}
    labels = {"feature_spec_hash": spec.spec_hash, "vocab_hash": spec.vocab_hash}
    if fingerprint.get("content_hash"):
        labels["data_content_hash"] = str(fingerprint["content_hash"])
    if fingerprint.get("dataset"):
        labels["dataset"] = str(fingerprint["dataset"])
    return labels


def import_from_registry(
    config: ProjectConfig,
    alias: str | None = "champion",
    version: str | None = None,
    *,
    home: Path | None = None,
) -> ImportedModel:
    """Download a registered version's bundle and import it into the BentoML model store.

    Args:
        config: project configuration (tracking URI, registry and BentoML model names).
        alias: registry alias to resolve (ignored when ``version`` is given).
        version: registry version number; wins over ``alias``.
        home: BentoML home; default ``paths.bentoml_home``.

    Returns:
        The imported model: tag and labels (registry name, version, alias, run id,
        feature-spec, vocabulary and data hashes).

    Raises:
        LookupError: the model, alias or version does not exist, or its run has no bundle.
        ValueError: neither ``alias`` nor ``version`` was given.
    """
    ref = version or alias
    if not ref:
        raise ValueError("give a registry alias (e.g. champion) or a version number")
    client = registry_client(config)
    name = config.registry.model_name
    found = resolve_version(client, name, str(ref))
    number = str(found.version)
    # Every alias that points at this version, not only the one asked for.
    aliases = sorted(a for a, v in (model_aliases(client, name) or {}).items() if v == number)
    home = Path(home or config.paths.resolved().bentoml_home)
    with tempfile.TemporaryDirectory() as tmp:
        bundle_dir = download_bundle(config, number, Path(tmp))
        labels = {
            "model_name": name,
            "version": number,
            "run_id": str(found.run_id),
            "source": "mlflow-registry",
            **bundle_labels(bundle_dir),
        }
        if aliases:
            labels["alias"] = alias if alias in aliases and not version else aliases[0]
            labels["aliases"] = ",".join(aliases)
        meta: dict[str, Any] = json.loads((bundle_dir / "metadata.json").read_text())
        meta.update({"model_name": name, "version": number, "registry_uri": client.tracking_uri})
        # The run's bundle predates its registration; the stored copy learns its version.
        (bundle_dir / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        tag = import_bundle(
            bundle_dir, config.serving.bento_model, labels=labels, metadata=meta, home=home
        )
    return ImportedModel(tag=tag, home=home, labels=labels)
