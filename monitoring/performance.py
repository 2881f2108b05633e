"""Realised performance of logged predictions, scored on the promotion gate's scale.

Labels come from the training code: ``core.features.build_features`` (``core.labels``) with
the champion bundle's vocabulary and feature config, at each record's own cutoff, for each
record's user (the event log's user ids hashed with ``core.hashing.hash_user`` to match
``user_hash``). The logged predictions become the arrays a model returns (ranking ->
``next_cats`` scores, ``p_buy``, ``p_churn``, trajectory shares) and are scored by
``evaluation.metrics.evaluate_predictions``, the function behind the gate's
``evaluation.scoring.evaluate_bundle``: the figures carry its names (``recall_at_10``,
``ndcg_at_10``, ``buy_auc``, ``churn_auc``, ``trajectory_js``, ...) and meaning.

A record is *labelled* when it has a user hash, the events cover its whole horizon and hold
the user's history before the cutoff (the gate has no sample otherwise). It is *scored*
when it also ranks at least ``min(K, V - 2)`` categories of the bundle's vocabulary (serving
logs ``core.predlog.RANKED_CATEGORIES``) and carries ``p_buy``, ``p_churn`` and every
trajectory period; labelled records that do not are counted in ``n_incomplete``.
CONTRACT.md ("Prediction log") describes the record this reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from core.arrays import SequenceArrays
from core.config import FeatureConfig
from core.encoding import EncodedEvents, encode_events
from core.features import build_features
from core.hashing import hash_user
from core.periods import duration_ns, flatten_ranges
from core.vocab import Vocabulary
from evaluation.metrics import FIRST_RANKED, evaluate_predictions
from evaluation.samples import SampleScores, score_samples
from monitoring.logged import logged_outputs

ALL = "all"
SHADOW = "-shadow"  # suffix of a shadow model's rows; ``all`` holds served records only


class Labelling(Protocol):
    """What labelling needs from a bundle (``modelkit.bundle.Bundle`` has it)."""

    vocab: Vocabulary
    feature_config: FeatureConfig


@dataclass(frozen=True)
class BundleLabelling:
    """A bundle folder's vocabulary and feature config, read without loading the model."""

    vocab: Vocabulary
    feature_config: FeatureConfig

    @classmethod
    def load(cls, directory: Path) -> BundleLabelling:
        """Read ``vocab.json`` and ``feature_config.json`` of a bundle (CONTRACT.md)."""
        directory = Path(directory)
        for name in ("vocab.json", "feature_config.json"):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"bundle {directory} has no {name}")
        config = FeatureConfig.model_validate_json((directory / "feature_config.json").read_text())
        return cls(Vocabulary.load(directory / "vocab.json"), config)


@dataclass
class PerformanceResult:
    """Scores per model version (plus an ``all`` row) and how many records were scored."""

    table: pd.DataFrame  # index: model_version; columns: evaluate_predictions' names
    k: int
    n_records: int
    n_labelled: int  # labelled and scored
    n_incomplete: int  # labelled, but too short a ranking or missing outputs
    labels_until: pd.Timestamp | None
    samples: dict[str, SampleScores] = field(default_factory=dict)  # per version label
    # shadow label -> the served versions that answered the same requests
    shadowing: dict[str, set[str]] = field(default_factory=dict)

    def overall(self) -> dict[str, float]:
        """The ``all`` row as a dict (empty when no served record was scored)."""
        if ALL not in self.table.index:
            return {}
        return {k: float(v) for k, v in self.table.loc[ALL].items()}


def _subset(enc: EncodedEvents, users: np.ndarray) -> EncodedEvents:
    """The events of ``users`` (ascending positions in ``enc``), still sorted by user."""
    starts, stops = enc.starts[users], enc.stops()[users]
    _, pos = flatten_ranges(starts, stops)
    lengths = stops - starts
    return EncodedEvents(
        user_ids=enc.user_ids[users],
        starts=(np.cumsum(lengths) - lengths).astype(np.int64),
        time=enc.time[pos],
        cat=enc.cat[pos],
        beh=enc.beh[pos],
        vocab_hash=enc.vocab_hash,
    )


def label_records(
    records: pd.DataFrame, events: pd.DataFrame, bundle: Labelling
) -> tuple[np.ndarray, SequenceArrays | None]:
    """Build the labels of every labelled record (see the module docstring).

    Returns:
        The positions of the labelled records in ``records`` and their samples, row ``i``
        for position ``i`` (``None`` when no record is labelled).

    Raises:
        ValueError: if the log lacks ``user_hash`` or ``cutoff`` (names the columns).
    """
    missing = [c for c in ("user_hash", "cutoff") if c not in records]
    if missing:
        raise ValueError(f"prediction log lacks columns {missing} needed to score it")
    if events.empty or records.empty:
        return np.empty(0, np.int64), None
    config = bundle.feature_config
    cutoff = pd.to_datetime(records["cutoff"], utc=True, errors="coerce", format="ISO8601")
    horizon = pd.Timedelta(duration_ns(config.horizon, "horizon"), unit="ns")
    users = pd.unique(events["user_id"])
    by_hash = {hash_user(u): u for u in users}
    user = records["user_hash"].map(by_hash)
    usable = user.notna() & cutoff.notna() & (cutoff + horizon <= events["timestamp"].max())
    if not usable.any():
        return np.empty(0, np.int64), None
    enc = encode_events(events[events["user_id"].isin(set(user[usable]))], bundle.vocab)
    labelled, parts = [], []
    frame = pd.DataFrame({"user": user, "cutoff": cutoff}).reset_index(drop=True)
    frame = frame[usable.to_numpy()]  # index: positions in ``records``
    # build_features pairs every user with the cutoff: one call per cutoff, its users only.
    for when, group in frame.groupby("cutoff", sort=True):
        wanted = np.unique(np.searchsorted(enc.user_ids, group["user"].to_numpy(object)))
        arrays = build_features(_subset(enc, wanted), [when], bundle.vocab, config)
        row = {u: i for i, u in enumerate(arrays.user_id.tolist())}
        found = group["user"].map(row)
        keep = found.notna().to_numpy()
        labelled.append(group.index.to_numpy()[keep])
        parts.append(arrays.select(found[keep].to_numpy(np.int64)))
    positions = np.concatenate(labelled)
    if positions.size == 0:
        return positions, None
    arrays = SequenceArrays.concat(parts)
    order = np.argsort(positions, kind="stable")  # back to log order
    return positions[order], arrays.select(order)


def _version_labels(records: pd.DataFrame) -> np.ndarray:
    version = records.get("model_version", pd.Series("unknown", index=records.index))
    labels = version.fillna("unknown").astype(str)
    if "shadow" in records:
        labels = labels.where(~records["shadow"].eq(True), labels + SHADOW)
    return labels.to_numpy()


def score_records(
    pred: dict[str, np.ndarray], arrays: SequenceArrays, versions: np.ndarray, k: int
) -> pd.DataFrame:
    """Score per model version and overall (row ``all``, served records only)."""
    rows = {}
    for version in sorted(set(versions.tolist())):
        mask = versions == version
        rows[version] = evaluate_predictions(
            {name: value[mask] for name, value in pred.items()}, arrays.select(mask), k
        )
    served = np.array([not v.endswith(SHADOW) for v in versions.tolist()])
    if served.any():
        rows[ALL] = evaluate_predictions(
            {name: value[served] for name, value in pred.items()}, arrays.select(served), k
        )
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("model_version")


def evaluate_log(
    records: pd.DataFrame, events: pd.DataFrame, bundle: Labelling, k: int = 10
) -> PerformanceResult:
    """Label the logged predictions with ``events`` and score them (module docstring).

    Args:
        records: a prediction-log window (``core.predlog.read_prediction_log``).
        events: canonical events that include the records' horizons.
        bundle: the labelling vocabulary and feature config (the champion's bundle).
        k: ranking cut-off, as in ``recall_at_{k}``.

    Raises:
        ValueError: if the log lacks ``user_hash`` or ``cutoff``.
    """
    positions, arrays = label_records(records, events, bundle)
    last = events["timestamp"].max() if len(events) else None
    if arrays is None:
        return PerformanceResult(pd.DataFrame(), k, len(records), 0, 0, last)
    labelled = records.iloc[positions]
    needed = min(k, bundle.vocab.size - FIRST_RANKED)
    pred, complete = logged_outputs(labelled, bundle.vocab, bundle.feature_config, needed)
    versions = _version_labels(labelled)[complete]
    pred = {name: value[complete] for name, value in pred.items()}
    n_scored = int(complete.sum())
    if not n_scored:
        return PerformanceResult(pd.DataFrame(), k, len(records), 0, len(positions), last)
    scored = arrays.select(complete)
    table = score_records(pred, scored, versions, k)
    per_sample = score_samples(pred, scored, k)
    samples = {v: per_sample.select(np.flatnonzero(versions == v)) for v in set(versions.tolist())}
    return PerformanceResult(
        table,
        k,
        len(records),
        n_scored,
        len(positions) - n_scored,
        last,
        samples,
        shadowed_versions(records),
    )


def shadowed_versions(records: pd.DataFrame) -> dict[str, set[str]]:
    """For each shadow version label, the served versions of the requests it shadowed."""
    if "shadow" not in records or "request_id" not in records:
        return {}
    labels = _version_labels(records)
    shadow = records["shadow"].eq(True).to_numpy()
    served = dict(zip(records["request_id"][~shadow], labels[~shadow], strict=True))
    out: dict[str, set[str]] = {}
    for request, label in zip(records["request_id"][shadow], labels[shadow], strict=True):
        if request in served:
            out.setdefault(label, set()).add(served[request])
    return out


def log_performance(
    result: PerformanceResult, tracking_uri: str, artifact_root: str, params: dict[str, str]
) -> str:
    """Log overall and per-version figures to the MLflow experiment ``monitoring``.

    Metric names are ``perf_<name>`` (the ``all`` row) and ``perf_v<version>_<name>``.

    Returns:
        The MLflow run id.
    """
    import mlflow

    from monitoring.report import use_monitoring_experiment

    use_monitoring_experiment(tracking_uri, artifact_root)
    with mlflow.start_run(run_name="performance") as run:
        mlflow.set_tags({"kind": "performance"})
        mlflow.log_params({"k": result.k, "n_records": result.n_records, **params})
        metrics = {
            "n_labelled": float(result.n_labelled),
            "n_incomplete": float(result.n_incomplete),
        }
        for version, row in result.table.iterrows():
            prefix = "perf_" if version == ALL else f"perf_v{version}_"
            metrics.update({f"{prefix}{name}": float(v) for name, v in row.items()})
        mlflow.log_metrics({k: v for k, v in metrics.items() if math.isfinite(v)})
        return run.info.run_id
