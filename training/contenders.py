"""The gate's contenders: model versions and baselines, with their per-sample scores.

Two sources:

* **stored**: what a version's refit run logged: metrics (run metrics, or ``metric.*`` and
  ``baseline.<b>.*`` tags on the version) and the per-sample scores of the model and of
  every baseline on its test split, in the run artifact ``evaluation/samples.parquet``
  (:func:`log_samples`, format in :mod:`evaluation.samples`);
* **re-scored**: versions and baselines scored now on the current split of an event log
  (:func:`rescore_version`), each version with its own vocabulary and feature config, the
  baselines on the challenger's samples.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import numpy as np
import pandas as pd

from core.arrays import SequenceArrays
from core.config import ProjectConfig
from core.dataset import hash_events
from core.splits import Splits, make_splits
from evaluation.samples import (
    Scored,
    score_predictions,
    score_samples,
    write_samples,
)
from evaluation.scoring import bundle_arrays, score_baselines
from evaluation.stored import SAMPLES_DIR, SAMPLES_FILE, read_stored_samples
from modelkit.bundle import load_bundle
from modelkit.registry import download_bundle, registry_client, resolve_version
from training.decision import Candidate
from training.tracking import finite_metrics, hash_test_split

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

MODEL = "model"  # the version's own model among the stored contenders
SPLIT_TAG = "data.split_hash"
SPLIT_METRICS = ("repeat_recall_at_10", "explore_recall_at_10")


def log_samples(
    arrays: SequenceArrays,
    pred: Mapping[str, np.ndarray],
    baseline_pred: Mapping[str, Mapping[str, np.ndarray]],
) -> dict[str, float]:
    """Log per-sample scores of a model and the baselines to the active MLflow run.

    Also logs the repeat/explore recall means as metrics (``repeat_recall_at_10``,
    ``baseline.<b>.explore_recall_at_10``, ...), which registration copies onto the version.

    Returns:
        The metrics logged.
    """
    contenders = {MODEL: score_samples(pred, arrays)}
    contenders.update({f"baseline.{b}": score_samples(p, arrays) for b, p in baseline_pred.items()})
    metrics = {}
    for name, samples in contenders.items():
        prefix = "" if name == MODEL else f"{name}."
        metrics.update(finite_metrics({m: samples.mean(m) for m in SPLIT_METRICS}, prefix))
    with tempfile.TemporaryDirectory() as tmp:
        mlflow.log_artifact(str(write_samples(Path(tmp) / SAMPLES_FILE, contenders)), SAMPLES_DIR)
    mlflow.log_metrics(metrics)
    return metrics


def version_metrics(client: MlflowClient, version: ModelVersion) -> dict[str, float]:
    """Return a version's metrics: its run's metrics overridden by ``metric.<name>`` tags."""
    out: dict[str, float] = {}
    if version.run_id:
        out.update(client.get_run(version.run_id).data.metrics)
    for key, raw in (version.tags or {}).items():
        if key.startswith("metric."):
            try:
                out[key.removeprefix("metric.")] = float(raw)
            except ValueError:
                out[key.removeprefix("metric.")] = math.nan
    return {k: v for k, v in out.items() if not k.startswith("baseline.")}


def stored_contenders(
    client: MlflowClient, version: ModelVersion, role: str
) -> tuple[Candidate, list[Candidate]]:
    """A version (as ``role``, e.g. "challenger") and its baselines, as stored at refit time."""
    tags = version.tags or {}
    split = tags.get(SPLIT_TAG)
    samples = read_stored_samples(client, version.run_id)
    per_base: dict[str, dict[str, float]] = {}
    logged = client.get_run(version.run_id).data.metrics if version.run_id else {}
    # baselines live on the run (``baseline.<b>.<m>``); older versions also carry them as
    # version tags, which win, as they did
    for key, raw in [*logged.items(), *tags.items()]:
        parts = key.split(".", 2)
        if parts[0] == "baseline" and len(parts) == 3:
            per_base.setdefault(parts[1], {})[parts[2]] = float(raw)
    for name in samples:
        if name.startswith("baseline."):
            per_base.setdefault(name.removeprefix("baseline."), {})
    label = f"{role} v{version.version}"
    metrics = version_metrics(client, version)
    candidate = Candidate(label, metrics, split, str(version.version), samples.get(MODEL))
    baselines = [
        Candidate(f"baseline {b!r}", values, split, None, samples.get(f"baseline.{b}"))
        for b, values in sorted(per_base.items())
    ]
    return candidate, baselines


@dataclass
class Rescored:
    """A version and the baselines scored now, on one split of an event log."""

    version: str
    splits: Splits
    split_hash: str
    model: Scored
    baselines: dict[str, Scored]

    def candidates(self, role: str) -> tuple[Candidate, list[Candidate]]:
        """The version as ``role`` and the baselines, ready for the gate."""
        label = f"{role} v{self.version}"
        model = Candidate(
            label, self.model.metrics, self.split_hash, self.version, self.model.samples
        )
        baselines = [
            Candidate(f"baseline {b!r}", s.metrics, self.split_hash, None, s.samples)
            for b, s in self.baselines.items()
        ]
        return model, baselines


def current_split(config: ProjectConfig, events: pd.DataFrame) -> tuple[Splits, str]:
    """The split ``interest tune`` would use on ``events`` now, and its fingerprint."""
    splits = make_splits(events, config.split, config.features)
    return splits, hash_test_split(hash_events(events), splits)


def rescore_version(
    config: ProjectConfig, events: pd.DataFrame, version: str, *, baselines: bool = True
) -> Rescored:
    """Score registered ``version`` (number or alias) on the current test split of ``events``.

    The version encodes the samples with its own vocabulary and feature config; the
    baselines are tuned on the validation cutoff and scored on the same test samples.

    Raises:
        LookupError: the version or its bundle does not exist.
        ValueError: no usable split, or no user with history before the test cutoff.
    """
    client = registry_client(config)
    number = str(resolve_version(client, config.registry.model_name, version).version)
    splits, split = current_split(config, events)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = load_bundle(download_bundle(config, number, Path(tmp)))
        arrays = bundle_arrays(bundle, events, splits.test)
        model = score_predictions(bundle.predict(arrays.inputs()), arrays)
    scored = {}
    if baselines:
        # The heuristics are tuned on the validation cutoff, as a user would tune them.
        try:
            val = bundle_arrays(bundle, events, splits.val)
        except ValueError:  # no validation users: the heuristics keep their defaults
            val = None
        features = bundle.feature_config
        scored = score_baselines(events, arrays, bundle.vocab, features, config.train, val)
    return Rescored(number, splits, split, model, scored)
