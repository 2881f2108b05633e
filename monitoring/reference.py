"""The champion's bundle and reference profile, the other side of a drift check.

The current side, a window of the prediction log, is read by
``core.predlog.read_prediction_log`` (the record is described in CONTRACT.md).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pandas as pd

from core.config import ProjectConfig
from core.profile import LEGACY_COLUMNS
from modelkit.registry import download_bundle, registered_champion

logger = logging.getLogger(__name__)
REFERENCE_FILE = "reference.parquet"


def version_bundle(config: ProjectConfig, version: str) -> Path:
    """Return a registry version's bundle folder, downloaded once per version.

    The cache is ``<state>/monitoring/reference/v<N>/bundle`` (a version's artifacts never
    change).

    Raises:
        LookupError: if the version does not exist or its run has no bundle.
    """
    cache = config.paths.resolved().state_dir / "monitoring" / "reference" / f"v{version}"
    if not (cache / "bundle").is_dir():
        partial = cache.with_name(f"{cache.name}.partial")
        if partial.exists():
            shutil.rmtree(partial)
        # Download beside the cache and rename: an interrupted download is never used.
        download_bundle(config, version, partial)
        if cache.exists():
            shutil.rmtree(cache)
        partial.rename(cache)
    return cache / "bundle"


def champion_bundle(config: ProjectConfig) -> tuple[Path, str]:
    """Return the champion's bundle folder and version (see :func:`version_bundle`).

    Raises:
        FileNotFoundError: if no champion is registered.
        LookupError: if the champion's run has no bundle.
    """
    name = config.registry.model_name
    champion = registered_champion(config)
    if champion is None:
        raise FileNotFoundError(
            f"model {name!r} has no registered champion at "
            f"{config.paths.resolved().tracking_uri}: pass a bundle folder instead"
        )
    return version_bundle(config, champion[0]), champion[0]


def version_reference(config: ProjectConfig, version: str) -> Path:
    """Return a registry version's reference profile (downloaded and cached).

    Raises:
        LookupError: the version does not exist or has no bundle.
        FileNotFoundError: its bundle has no reference profile.
    """
    found = version_bundle(config, version) / REFERENCE_FILE
    if not found.is_file():
        name = config.registry.model_name
        raise FileNotFoundError(f"v{version} of {name!r} has no bundle/{REFERENCE_FILE}")
    return found


def champion_reference(config: ProjectConfig) -> tuple[Path, str]:
    """Return the champion bundle's reference profile and the champion's version.

    Raises:
        FileNotFoundError: if no champion is registered (pass ``--reference`` instead), or
            its bundle has no reference profile.
        LookupError: if the champion's run has no bundle.
    """
    try:
        bundle, version = champion_bundle(config)
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"{err} (--reference: a model bundle folder or a {REFERENCE_FILE} file)"
        ) from None
    found = bundle / REFERENCE_FILE
    if not found.is_file():
        name = config.registry.model_name
        raise FileNotFoundError(f"champion v{version} of {name!r} has no bundle/{REFERENCE_FILE}")
    return found, version


def resolve_reference(config: ProjectConfig) -> Path:
    """Return the registry champion's reference profile (downloaded and cached).

    Raises:
        FileNotFoundError: if no champion is registered (pass ``--reference`` instead).
    """
    return champion_reference(config)[0]


def load_reference(path: Path) -> pd.DataFrame:
    """Read a reference profile from a bundle folder or a parquet file.

    Args:
        path: a bundle folder holding ``reference.parquet`` (directly or under ``bundle/``),
            or the parquet file itself.

    Raises:
        FileNotFoundError: if no reference profile is found at ``path``.
        ValueError: if the profile lacks a behaviour column every profile version has
            (``core.profile.LEGACY_COLUMNS``).
    """
    path = Path(path)
    if path.is_dir():
        candidates = [path / REFERENCE_FILE, path / "bundle" / REFERENCE_FILE]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise FileNotFoundError(f"bundle folder {path} has no {REFERENCE_FILE}")
        path = found
    elif not path.is_file():
        raise FileNotFoundError(f"reference {path} does not exist")
    frame = pd.read_parquet(path)
    # Profiles written before the newer columns existed still hold every legacy column;
    # the drift check then tests the columns both sides have.
    missing = [c for c in LEGACY_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"reference {path} lacks profile columns {missing}")
    return frame
