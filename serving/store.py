"""The BentoML model store: import a model bundle, list and find the stored models.

A stored BentoML model is the bundle directory copied verbatim under ``bundle/``; its
BentoML labels carry the registry identity (``model_name``, ``version``, ``alias``). The
service loads it with :func:`modelkit.bundle.load_bundle` on :func:`bundle_path`.

BentoML reads ``BENTOML_HOME`` once per process, so every function here takes the home
explicitly. BentoML has no public way to open a store at a given home: this module is the
one place that builds its ``ModelStore`` and hands it to the public ``bentoml.models`` calls.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import bentoml
from bentoml._internal.models import ModelStore

BUNDLE_SUBDIR = "bundle"


def _store(home: Path | None) -> ModelStore | None:
    # BentoML reads BENTOML_HOME once per process; an explicit home avoids that global.
    if home is None:
        return None
    return ModelStore(str(Path(home) / "models"))


def _clean(value: Any) -> Any:
    # BentoML metadata takes plain values only, no None: undefined (NaN) metrics are dropped.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        cleaned = {str(k): _clean(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v is not None}
    if isinstance(value, list | tuple):
        return [c for c in (_clean(v) for v in value) if c is not None]
    return value


def import_bundle(
    bundle_dir: Path,
    name: str,
    labels: dict[str, str] | None = None,
    metadata: dict[str, Any] | None = None,
    *,
    home: Path | None = None,
) -> str:
    """Copy a bundle directory into the BentoML model store as a new model version.

    Args:
        bundle_dir: folder written by ``modelkit.bundle.save_bundle``.
        name: BentoML model name (``ServingConfig.bento_model``).
        labels: string labels, e.g. ``{"alias": "champion"}``; ``model_name`` and ``version``
            default to the bundle's metadata.
        metadata: extra metadata; defaults to the bundle's ``metadata.json``.
        home: BentoML home (default: ``BENTOML_HOME`` / BentoML's default).

    Returns:
        The new tag, ``name:version``.

    Raises:
        FileNotFoundError: if ``bundle_dir`` has no ``metadata.json``.
    """
    bundle_dir = Path(bundle_dir)
    meta_file = bundle_dir / "metadata.json"
    if not meta_file.is_file():
        raise FileNotFoundError(f"{bundle_dir} is not a model bundle (no metadata.json)")
    bundle_meta = json.loads(meta_file.read_text())
    all_labels = {
        "model_name": str(bundle_meta.get("model_name", name)),
        "version": str(bundle_meta.get("version", "")),
    }
    all_labels.update({k: str(v) for k, v in (labels or {}).items()})
    kwargs: dict[str, Any] = {}
    if (store := _store(home)) is not None:
        kwargs["_model_store"] = store
    with bentoml.models.create(
        name, labels=all_labels, metadata=_clean(metadata or bundle_meta), **kwargs
    ) as model:
        shutil.copytree(bundle_dir, Path(model.path) / BUNDLE_SUBDIR, dirs_exist_ok=True)
    return str(model.tag)


def get_stored_model(tag: str, *, home: Path | None = None) -> bentoml.Model:
    """Return the stored BentoML model for ``tag`` (``name:version`` or ``name:latest``)."""
    store = _store(home)
    if store is None:
        return bentoml.models.get(tag)
    return bentoml.models.get(tag, _model_store=store)


def list_stored_models(home: Path) -> list[bentoml.Model]:
    """Return every model version in the store at ``home``, newest first (none: ``[]``).

    Reads only: a missing ``<home>/models`` folder is an empty store, not one to create.
    """
    if not (Path(home) / "models").is_dir():
        return []
    models = bentoml.models.list(_model_store=_store(home))
    return sorted(models, key=lambda m: m.creation_time, reverse=True)


def bundle_path(model: bentoml.Model) -> Path:
    """Return the bundle directory inside a stored BentoML model."""
    return Path(model.path) / BUNDLE_SUBDIR
