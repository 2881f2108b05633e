"""Per-sample scores keyed by (user, cutoff): what the promotion gate's bootstrap resamples.

The vectors come from :func:`evaluation.metrics.per_sample_ranking`, the function behind the
mean metrics, so a contender's mean recall and its per-sample recall can never disagree.
Contenders scored with different vocabularies (a champion re-scored with its own) are
compared on the samples they share, matched by (user, cutoff) with :func:`align`.

On disk (:func:`write_samples`, :func:`read_samples`) the scores of several contenders sit
in one long Parquet table: ``contender``, ``user_id``, ``cutoff`` and one float column per
metric (null where undefined for that sample).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.arrays import SequenceArrays
from evaluation.metrics import evaluate_predictions, per_sample_ranking

_KEYS = ("user_id", "cutoff")


@dataclass(frozen=True)
class SampleScores:
    """Metric values of one contender on ``n`` (user, cutoff) samples."""

    user_id: np.ndarray  # str (n,)
    cutoff: np.ndarray  # datetime64[ns] (n,)
    values: dict[str, np.ndarray]  # metric -> float64 (n,), nan where undefined

    def __len__(self) -> int:
        return int(self.user_id.shape[0])

    @property
    def n_users(self) -> int:
        """Distinct users among the samples."""
        return int(pd.unique(self.user_id).size)

    def users_with(self, metric: str) -> int:
        """Distinct users with at least one sample where ``metric`` is defined."""
        values = self.values.get(metric)
        if values is None:
            return 0
        return int(pd.unique(self.user_id[np.isfinite(values)]).size)

    def mean(self, metric: str) -> float:
        """Mean of ``metric`` over the samples where it is defined (nan if none or absent)."""
        values = self.values.get(metric)
        if values is None or not np.isfinite(values).any():
            return float("nan")
        return float(values[np.isfinite(values)].mean())

    def select(self, index: np.ndarray) -> SampleScores:
        """The samples at integer positions ``index``, in that order."""
        values = {name: v[index] for name, v in self.values.items()}
        return SampleScores(self.user_id[index], self.cutoff[index], values)

    def to_frame(self) -> pd.DataFrame:
        """One row per sample: ``user_id``, ``cutoff`` and one column per metric."""
        frame = pd.DataFrame({"user_id": self.user_id.astype(str), "cutoff": self.cutoff})
        return frame.assign(**self.values)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> SampleScores:
        """Read what :meth:`to_frame` wrote (metric columns are every column but the keys)."""
        cutoff = pd.to_datetime(frame["cutoff"]).to_numpy(dtype="datetime64[ns]")
        values = {
            str(c): frame[c].to_numpy(dtype=np.float64, na_value=np.nan)
            for c in frame.columns
            if c not in (*_KEYS, "contender")
        }
        return cls(frame["user_id"].astype(str).to_numpy(dtype=object), cutoff, values)


@dataclass(frozen=True)
class Scored:
    """Mean metrics and the per-sample scores they summarise, for one contender."""

    metrics: dict[str, float]
    samples: SampleScores


def score_samples(
    pred: Mapping[str, np.ndarray], arrays: SequenceArrays, k: int = 10
) -> SampleScores:
    """Per-sample ranking scores of ``pred["next_cats"]`` against the labels of ``arrays``.

    Returns:
        ``recall_at_{k}``, ``ndcg_at_{k}``, ``repeat_recall_at_{k}`` and
        ``explore_recall_at_{k}`` per sample (repeat/explore relative to ``arrays.cat``).
    """
    values = per_sample_ranking(
        np.asarray(pred["next_cats"]), arrays.labels()["next_cats"], k, arrays.cat
    )
    cutoff = np.asarray(arrays.cutoff, dtype="datetime64[ns]")
    return SampleScores(np.asarray(arrays.user_id).astype(str).astype(object), cutoff, values)


def score_predictions(
    pred: Mapping[str, np.ndarray], arrays: SequenceArrays, k: int = 10
) -> Scored:
    """:func:`evaluation.metrics.evaluate_predictions` plus the per-sample scores.

    The mean metrics also gain the repeat/explore recall means.
    """
    samples = score_samples(pred, arrays, k)
    metrics = evaluate_predictions(dict(pred), arrays, k)
    for part in ("repeat", "explore"):
        metrics[f"{part}_recall_at_{k}"] = samples.mean(f"{part}_recall_at_{k}")
    return Scored(metrics, samples)


def align(a: SampleScores, b: SampleScores) -> tuple[SampleScores, SampleScores]:
    """Keep the (user, cutoff) samples present in both, in the same order.

    Raises:
        ValueError: if either side repeats a (user, cutoff) key.
    """
    keys = []
    for side in (a, b):
        index = pd.MultiIndex.from_arrays([side.user_id.astype(str), side.cutoff])
        if index.has_duplicates:
            raise ValueError("per-sample scores repeat a (user, cutoff) key")
        keys.append(index)
    common = keys[0].intersection(keys[1], sort=False)
    return a.select(keys[0].get_indexer(common)), b.select(keys[1].get_indexer(common))


def write_samples(path: Path, contenders: Mapping[str, SampleScores]) -> Path:
    """Write several contenders' scores to one Parquet file (see module docstring)."""
    frames = [s.to_frame().assign(contender=name) for name, s in contenders.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.concat(frames, ignore_index=True).to_parquet(path, index=False)
    return path


def read_samples(path: Path) -> dict[str, SampleScores]:
    """Read what :func:`write_samples` wrote, keyed by contender."""
    frame = pd.read_parquet(path)
    return {
        str(name): SampleScores.from_frame(part.drop(columns="contender"))
        for name, part in frame.groupby("contender", sort=False)
    }
