"""Binned reference statistics of a drift check, cached beside the reference file.

The reference side of every test is summarised once per reference file — quantile-bin
counts for numeric columns, category counts, the sum and outer-product sum of the per-user
bucket-share vectors — and cached beside it as ``<reference>.stats.json``; a check then only
bins the current window (numpy) and computes the statistic and its p-value (scipy) with
:mod:`monitoring.stattests`, whatever the reference's size.

Given the monitoring config, the same statistics are kept per reference segment
(:mod:`monitoring.segments`), with the segment thresholds taken from the reference, so a
check labels only the current window's rows and never re-segments the reference.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.config import MonitoringConfig
from monitoring.segments import DEFINING, Segmenter

logger = logging.getLogger(__name__)

STATS_VERSION = 3  # 3: per-segment statistics
# ECDF grid: 256 reference quantiles miss at most ~0.4% of the reference mass inside a bin,
# far below any K-S effect that matters; columns with fewer distinct values use them all.
MAX_EDGES = 256


@dataclass
class NumericStats:
    """Reference ECDF of one numeric column: ``cum[i]`` values are ``<= edges[i]``."""

    edges: list[float]
    cum: list[int]
    n: int


@dataclass
class CountStats:
    """Reference counts per category (or per bucket, summed shares) of one column."""

    counts: dict[str, float]
    n: int  # rows (users) behind the counts


@dataclass
class ShareStats:
    """Per-user bucket-share vectors of one column: their sum and sum of outer products."""

    total: list[float]
    outer: list[list[float]]
    n: int  # users with events

    @classmethod
    def from_matrix(cls, matrix: np.ndarray) -> ShareStats:
        """Summarise an (n users, buckets) share matrix."""
        return cls(matrix.sum(axis=0).tolist(), (matrix.T @ matrix).tolist(), int(len(matrix)))

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean vector and (unbiased) covariance matrix."""
        total, n = np.asarray(self.total), max(self.n, 2)
        mean = total / max(self.n, 1)
        cov = (np.asarray(self.outer) - np.outer(total, total) / n) / (n - 1)
        return mean, cov


@dataclass
class ReferenceStats:
    """Everything a check needs of the reference frame."""

    n_rows: int
    numeric: dict[str, NumericStats] = field(default_factory=dict)
    categorical: dict[str, CountStats] = field(default_factory=dict)
    buckets: dict[str, ShareStats] = field(default_factory=dict)
    version: int = STATS_VERSION
    # per segment (``activity=high``) the same statistics, without its defining columns
    segments: dict[str, ReferenceStats] = field(default_factory=dict)
    # what the segments were cut with (empty: not computed); see :func:`segment_rules`
    segment_rules: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        numeric: list[str],
        categorical: list[str],
        buckets: list[str],
        *,
        segments: MonitoringConfig | None = None,
    ) -> ReferenceStats:
        """Summarise the given columns of a reference profile (absent columns are skipped).

        With ``segments`` (the monitoring config), also every reference segment's statistics.
        """
        out = cls(n_rows=len(frame))
        for col in (c for c in numeric if c in frame.columns):
            values = numeric_values(frame[col])
            if values.size:
                out.numeric[col] = _numeric_stats(values)
        for col in (c for c in categorical if c in frame.columns):
            counts = category_values(frame[col]).value_counts()
            out.categorical[col] = CountStats(
                {str(k): float(v) for k, v in counts.items()}, len(frame)
            )
        for col in (c for c in buckets if c in frame.columns):
            matrix = share_matrix(frame[col])
            if len(matrix):
                out.buckets[col] = ShareStats.from_matrix(matrix)
        if segments is not None and segments.segment_min_rows > 0 and len(frame):
            rules = Segmenter.from_reference(frame, segments)
            out.segment_rules = segment_rules(segments, rules)
            for kind, labels in rules.label(frame).items():
                own = [[c for c in g if c not in DEFINING[kind]] for g in (numeric, categorical)]
                for value in sorted(labels.unique()):
                    part = frame[(labels == value).to_numpy()]
                    out.segments[f"{kind}={value}"] = cls.from_frame(part, *own, buckets)
        return out

    def segmenter(self, config: MonitoringConfig) -> Segmenter | None:
        """The cached segments' rules when they were cut as ``config`` says (else ``None``)."""
        if not self.segment_rules:
            return None
        rules = Segmenter(
            float(self.segment_rules["new_user_hours"]),
            tuple(self.segment_rules["activity_edges"]),
            tuple(self.segment_rules["categories"]),
        )
        return rules if self.segment_rules == segment_rules(config, rules) else None

    def to_json(self) -> str:
        """Serialise (the cache file's content)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ReferenceStats:
        """Parse :meth:`to_json` output."""
        return cls._from_dict(json.loads(text))

    @classmethod
    def _from_dict(cls, data: dict[str, Any]) -> ReferenceStats:
        return cls(
            n_rows=data["n_rows"],
            numeric={k: NumericStats(**v) for k, v in data["numeric"].items()},
            categorical={k: CountStats(**v) for k, v in data["categorical"].items()},
            buckets={k: ShareStats(**v) for k, v in data["buckets"].items()},
            version=data["version"],
            segments={k: cls._from_dict(v) for k, v in data.get("segments", {}).items()},
            segment_rules=data.get("segment_rules", {}),
        )


def segment_rules(config: MonitoringConfig, rules: Segmenter) -> dict[str, Any]:
    """What cached segment statistics depend on: the config's rules and the thresholds."""
    return {
        "new_user_hours": float(config.new_user_hours),
        "segment_categories": int(config.segment_categories),
        "activity_edges": [float(e) for e in rules.activity_edges],
        "categories": [str(c) for c in rules.categories],
    }


def numeric_values(series: pd.Series) -> np.ndarray:
    """Finite float values of a column (nulls and non-numbers dropped), sorted."""
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.sort(values[np.isfinite(values)])


def category_values(series: pd.Series) -> pd.Series:
    """A categorical column as strings, nulls as ``""`` (no prediction, empty window)."""
    return series.fillna("").astype(str)


def _floats(value: object) -> np.ndarray | None:
    try:
        return np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError):
        return None


def share_matrix(series: pd.Series) -> np.ndarray:
    """The per-user bucket-share lists of users with events, as an (n, buckets) matrix.

    Each user is one observation, whatever their event count: a heavy user's events are
    not independent draws, and the test's sample size is the number of users.
    """
    # A value that is not a list (a hand-edited or foreign log line) is left out, not fatal.
    values = [v for v in series.tolist() if isinstance(v, list | tuple | np.ndarray) and len(v)]
    if not values:
        return np.zeros((0, 0))
    try:
        matrix = np.array(values, dtype=np.float64)
    except (ValueError, TypeError):  # several lengths or nulls: keep the common clean width
        width = pd.Series([len(v) for v in values]).mode().iloc[0]
        rows = [r for r in map(_floats, values) if r is not None and r.size == width]
        matrix = np.stack(rows) if rows else np.zeros((0, width))
    matrix = np.nan_to_num(matrix)
    return matrix[matrix.sum(axis=1) > 0]


def _numeric_stats(values: np.ndarray) -> NumericStats:
    edges = np.unique(values)
    if edges.size > MAX_EDGES:
        edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, MAX_EDGES)))
    cum = np.searchsorted(values, edges, side="right")
    return NumericStats(edges.tolist(), cum.tolist(), int(values.size))


def stats_path(reference: Path) -> Path:
    """Where the statistics of a reference file are cached: ``<reference>.stats.json``."""
    return reference.with_name(reference.name + ".stats.json")


def cached_stats(
    reference: Path,
    frame: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    buckets: list[str],
    *,
    segments: MonitoringConfig | None = None,
) -> ReferenceStats:
    """The reference file's statistics, read from the cache or computed once and cached.

    The cache is used only when it is newer than the reference and of this
    :data:`STATS_VERSION`, covers the wanted columns and, with ``segments`` (the monitoring
    config), holds segment statistics cut by its rules; failing to write it (a read-only
    bundle) only costs the next check the same computation.
    """
    path = stats_path(Path(reference))
    wanted = (set(numeric), set(categorical), set(buckets))
    if path.is_file() and path.stat().st_mtime_ns >= Path(reference).stat().st_mtime_ns:
        try:
            found = ReferenceStats.from_json(path.read_text())
            have = (set(found.numeric), set(found.categorical), set(found.buckets))
            present = tuple({c for c in w if c in frame.columns} for w in wanted)
            if (
                found.version == STATS_VERSION
                and all(p <= h for p, h in zip(present, have, strict=True))
                and (
                    segments is None
                    or segments.segment_min_rows <= 0
                    or found.segmenter(segments) is not None
                )
            ):
                return found
        except (ValueError, KeyError, TypeError) as err:
            logger.warning("ignoring unreadable reference statistics %s: %s", path, err)
    stats = ReferenceStats.from_frame(frame, numeric, categorical, buckets, segments=segments)
    try:
        partial = path.with_name(path.name + ".partial")
        partial.write_text(stats.to_json())
        partial.replace(path)
    except OSError as err:
        logger.warning("could not cache reference statistics at %s: %s", path, err)
    return stats
