"""User segments of a drift check: where in the population a shift happens.

A shift in a tenth of the users dilutes to noise in the whole window but stands out in its
segment. Three segmentations, all computed from the logged profile (``core.profile``), so
the reference profile and the log are segmented by the same rule:

- ``user``: ``new`` when the window's history spans less than
  ``MonitoringConfig.new_user_hours`` (first event to cutoff:
  ``mean_gap_hours * (seq_len - 1) + hours_since_last``), else ``returning``;
- ``activity``: ``low`` / ``mid`` / ``high`` events in the window (``seq_len``), cut at the
  reference's terciles;
- ``category``: the user's ``top_category`` when it is one of the reference's
  ``MonitoringConfig.segment_categories`` most frequent, else ``other`` (``none``: no event).

Only segments with at least ``MonitoringConfig.segment_min_rows`` rows on both sides are
tested (:func:`monitoring.drift.check_drift` applies the same tests and one
Benjamini-Hochberg rule across columns x segments).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.config import MonitoringConfig
from core.hashing import hash_user
from evaluation.samples import SampleScores

NEW, RETURNING = "new", "returning"
#: Columns a segmentation is cut on: inside its segments they are truncated by construction
#: (a 5% rise of ``seq_len`` moves users across the tercile edges), so they are not tested.
DEFINING: dict[str, tuple[str, ...]] = {
    "user": ("seq_len", "mean_gap_hours", "hours_since_last"),
    "activity": ("seq_len",),
    "category": ("top_category",),
}
ACTIVITY = ("low", "mid", "high")
OTHER, NONE = "other", "none"


def _numbers(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(np.nan, index=frame.index)
    return pd.to_numeric(frame[column], errors="coerce")


def history_hours(frame: pd.DataFrame) -> pd.Series:
    """Hours from the window's first event to the cutoff, from the profile columns."""
    span = _numbers(frame, "mean_gap_hours") * (_numbers(frame, "seq_len") - 1).clip(lower=0)
    return span.fillna(0.0) + _numbers(frame, "hours_since_last").fillna(0.0)


@dataclass(frozen=True)
class Segmenter:
    """The segment rules, with the thresholds taken from one reference profile."""

    new_user_hours: float
    activity_edges: tuple[float, float]  # seq_len terciles of the reference
    categories: tuple[str, ...]  # the reference's most frequent top categories

    @classmethod
    def from_reference(cls, reference: pd.DataFrame, config: MonitoringConfig) -> Segmenter:
        """Thresholds from the reference (terciles of ``seq_len``, top categories)."""
        seq = _numbers(reference, "seq_len").dropna()
        low, high = (seq.quantile([1 / 3, 2 / 3]).tolist()) if len(seq) else (0.0, 0.0)
        top = reference.get("top_category", pd.Series(dtype=str)).fillna("").astype(str)
        counts = top[top != ""].value_counts()
        return cls(
            config.new_user_hours,
            (float(low), float(high)),
            tuple(str(c) for c in counts.index[: config.segment_categories]),
        )

    def label(self, frame: pd.DataFrame) -> dict[str, pd.Series]:
        """Per segmentation (``user``, ``activity``, ``category``), each row's segment."""
        user = np.where(history_hours(frame) < self.new_user_hours, NEW, RETURNING)
        seq = _numbers(frame, "seq_len").fillna(0.0)
        low, high = self.activity_edges
        activity = np.select([seq <= low, seq <= high], ACTIVITY[:2], ACTIVITY[2])
        top = frame.get("top_category", pd.Series("", index=frame.index)).fillna("").astype(str)
        known = set(self.categories)
        category = top.where(top.isin(known), OTHER).where(top != "", NONE)
        return {
            "user": pd.Series(user, index=frame.index),
            "activity": pd.Series(activity, index=frame.index),
            "category": category,
        }


def segment_pairs(
    reference: pd.DataFrame, current: pd.DataFrame, config: MonitoringConfig
) -> Iterator[tuple[str, pd.DataFrame, pd.DataFrame]]:
    """``(segment, reference rows, current rows)`` per segment large enough on both sides.

    Segments are named ``<segmentation>=<segment>`` (``activity=high``); the rows lack the
    segmentation's :data:`DEFINING` columns. Nothing is yielded when
    ``config.segment_min_rows`` is 0 (segments off).
    """
    if config.segment_min_rows <= 0 or reference.empty or current.empty:
        return
    rules = Segmenter.from_reference(reference, config)
    ref_labels, cur_labels = rules.label(reference), rules.label(current)
    for kind, ref_seg in ref_labels.items():
        cur_seg = cur_labels[kind]
        for value in sorted(set(ref_seg.unique()) & set(cur_seg.unique())):
            ref_part = reference[(ref_seg == value).to_numpy()]
            cur_part = current[(cur_seg == value).to_numpy()]
            if min(len(ref_part), len(cur_part)) >= config.segment_min_rows:
                drop = [c for c in DEFINING[kind] if c in reference.columns]
                yield (
                    f"{kind}={value}",
                    ref_part.drop(columns=drop),
                    cur_part.drop(columns=[c for c in drop if c in cur_part.columns]),
                )


def segment_scores(
    records: pd.DataFrame,
    samples: SampleScores,
    reference: pd.DataFrame,
    config: MonitoringConfig,
    metric: str,
) -> dict[str, dict[str, float]]:
    """Realised ``metric`` per segment: ``{"activity=high": {"mean": .., "n": ..}, ...}``.

    Each scored sample is matched to its logged record by (user hash, cutoff) and takes that
    record's segments (thresholds from ``reference``); segments without a defined value
    are left out.
    """
    values = samples.values.get(metric)
    if values is None or records.empty or not len(samples):
        return {}
    cutoff = pd.to_datetime(records["cutoff"], utc=True, format="ISO8601")
    keys = pd.MultiIndex.from_arrays([records["user_hash"].astype(str), cutoff])
    first = ~keys.duplicated()  # a shadow record repeats its served one
    keys, labels = (
        keys[first],
        {
            k: v[first]
            for k, v in Segmenter.from_reference(reference, config).label(records).items()
        },
    )
    wanted = pd.MultiIndex.from_arrays(
        [[hash_user(u) for u in samples.user_id], pd.to_datetime(samples.cutoff, utc=True)]
    )
    pos = keys.get_indexer(wanted)
    ok = (pos >= 0) & np.isfinite(values)
    out: dict[str, dict[str, float]] = {}
    for kind, seg in labels.items():
        names = seg.to_numpy()[pos[ok]]
        for name in sorted(set(names.tolist())):
            part = values[ok][names == name]
            out[f"{kind}={name}"] = {"mean": float(part.mean()), "n": float(part.size)}
    return out
