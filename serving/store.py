"""The BentoML model store: import a model bundle, and load it back as a :class:`Bundle`.

A stored BentoML model is the bundle directory copied verbatim under ``bundle/``; its
BentoML labels carry the registry identity (``model_name``, ``version``, ``alias``).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bentoml._internal.models import Model, ModelStore

    from modelkit.bundle import Bundle

BUNDLE_SUBDIR = "bundle"


def _store(home: Path | None) -> ModelStore | None:
    # BentoML reads BENTOML_HOME once per process; an explicit home avoids that global.
    if home is None:
        return None
    from bentoml._internal.models import ModelStore

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
    import bentoml

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


def get_stored_model(tag: str, *, home: Path | None = None) -> Model:
    """Return the stored BentoML model for ``tag`` (``name:version`` or ``name:latest``)."""
    import bentoml

    store = _store(home)
    return store.get(tag) if store is not None else bentoml.models.get(tag)


def bundle_path(model: Model) -> Path:
    """Return the bundle directory inside a stored BentoML model."""
    return Path(model.path) / BUNDLE_SUBDIR


def load_bundle_from_store(tag: str, *, home: Path | None = None) -> Bundle:
    """Load the bundle stored under ``tag`` (see :func:`modelkit.bundle.load_bundle`)."""
    from modelkit.bundle import load_bundle

    return load_bundle(bundle_path(get_stored_model(tag, home=home)))
