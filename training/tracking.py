"""MLflow plumbing for training: tracking set-up, data fingerprint inputs, flat logging."""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Mapping
from typing import Any

import mlflow
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset

from core.config import ProjectConfig
from core.dataset import PreparedData
from core.splits import Splits
from training.describe import EXPERIMENT_DESCRIPTION

NOTE = "mlflow.note.content"  # the description MLflow's UI shows on experiments and runs


def setup_tracking(config: ProjectConfig, experiment: str | None = None) -> str:
    """Point MLflow at the configured store and return the experiment id (created if new).

    New experiments store artifacts under ``paths.artifact_root/<experiment>`` so that the
    embedded default keeps everything inside the project state folder.
    """
    paths = config.paths.resolved()
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(paths.tracking_uri)
    mlflow.set_registry_uri(paths.tracking_uri)
    name = experiment or config.train.experiment
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        mlflow.set_experiment(experiment_id=found.experiment_id)
        if name == config.train.experiment and NOTE not in (found.tags or {}):
            mlflow.set_experiment_tag(NOTE, EXPERIMENT_DESCRIPTION)  # older experiments
        return found.experiment_id
    location = None
    remote = paths.tracking_uri.startswith(("http://", "https://"))
    # A tracking server proxies artifacts itself unless a root was configured explicitly.
    if not (remote and not config.paths.artifact_root):
        location = f"{paths.artifact_root.rstrip('/')}/{name}"
    tags = {NOTE: EXPERIMENT_DESCRIPTION} if name == config.train.experiment else None
    exp_id = mlflow.create_experiment(name, artifact_location=location, tags=tags)
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def fingerprint_tags(data: PreparedData) -> dict[str, str]:
    """``data.*`` tags: dataset, rows, content hash, vocab hash, cutoffs, test split hash."""
    fp = data.fingerprint.to_dict()
    tags = {
        "data.dataset": str(fp["dataset"]),
        "data.rows": str(fp["rows"]),
        "data.content_hash": str(fp["content_hash"]),
        "data.vocab_hash": str(fp["vocab_hash"]),
        "data.split_hash": split_hash(data),
    }
    for key, value in fp["cutoffs"].items():
        tags[f"data.cutoff.{key}"] = str(value)
    return tags


def split_hash(data: PreparedData) -> str:
    """Identify the test split: same events and same test cutoff and horizon."""
    return hash_test_split(data.fingerprint.content_hash, data.splits)


def hash_test_split(content_hash: str, splits: Splits) -> str:
    """:func:`split_hash` from the events' content hash and the splits alone."""
    text = f"{content_hash}:{splits.test.isoformat()}:{splits.horizon}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def log_data_input(data: PreparedData, source: str, context: str = "training") -> None:
    """Log the dataset fingerprint as an MLflow dataset input of the active run."""
    with warnings.catch_warnings():  # a local path matches two equivalent source kinds
        warnings.simplefilter("ignore")
        resolved = resolve_dataset_source(source)
    dataset = MetaDataset(
        source=resolved,
        name=data.fingerprint.dataset,
        digest=data.fingerprint.content_hash,
    )
    mlflow.log_input(dataset, context=context, tags={"vocab_hash": data.fingerprint.vocab_hash})


def finite_metrics(values: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric, finite entries of ``values`` (MLflow rejects NaN in some stores)."""
    out = {}
    for key, value in values.items():
        if isinstance(value, int | float) and math.isfinite(float(value)):
            out[f"{prefix}{key}"] = float(value)
    return out


def flat_params(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Scalar entries of ``values`` as MLflow params, integers kept integers (``epochs 2``)."""
    return {
        f"{prefix}{key}": value
        for key, value in values.items()
        if value is not None and isinstance(value, str | int | float | bool)
    }


def log_figure_html(figure: Any, artifact_file: str) -> None:
    """Log a plotly figure as a self-contained HTML artifact of the active run.

    ``mlflow.log_figure`` writes plotly.js as a CDN link, and the page renders blank offline
    (on an air-gapped tracking server); this embeds the library (about 4 MB) instead.
    """
    mlflow.log_text(figure.to_html(include_plotlyjs=True, full_html=True), artifact_file)


def baseline_metrics(baselines: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Flatten ``{baseline: {metric: v}}`` to ``baseline.<baseline>.<metric>`` metrics."""
    out: dict[str, float] = {}
    for name, values in baselines.items():
        out.update(finite_metrics(values, prefix=f"baseline.{name}."))
    return out
