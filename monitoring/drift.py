"""Drift decision: compare the serving log's profile with the champion's reference profile.

Every monitored column gets a two-sample test with a p-value (:mod:`monitoring.stattests`):
Kolmogorov-Smirnov for numeric columns, chi-square of homogeneity for categorical ones, and
a Wald test of the mean category-bucket shares per user (the interest distribution itself),
each against binned reference statistics (:mod:`monitoring.stats`). A column drifts when the
Benjamini-Hochberg procedure over all columns' p-values accepts it at ``MonitoringConfig.fdr``
*and* its effect size reaches the floor of its test, so a tiny but significant wobble of a
large window does not fire. The same tests run per user segment (:mod:`monitoring.segments`)
under one BH rule across columns x segments; a segment whose share of drifted columns reaches
the trigger fires too, and the reason names it. The Evidently report is built afterwards, for
people (:mod:`monitoring.snapshot`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from core.config import MonitoringConfig
from core.predlog import PREDICTION_CATEGORICAL, PREDICTION_COLUMNS, PREDICTION_NUMERIC
from core.profile import BUCKET_FEATURES, CATEGORICAL_FEATURES, LEGACY_COLUMNS, NUMERIC_FEATURES
from core.textstats import TEXT_FEATURES
from monitoring.segments import DEFINING, segment_pairs
from monitoring.stats import ReferenceStats
from monitoring.stattests import benjamini_hochberg, run_tests

Status = Literal["ok", "drift", "not_enough_data"]
Method = Literal["ks", "chisquare", "wald"]


@dataclass(frozen=True)
class ColumnDrift:
    """The test of one column: its p-value, BH-adjusted q-value and effect size."""

    column: str
    kind: Literal["feature", "prediction"]
    method: Method
    p_value: float
    q_value: float  # Benjamini-Hochberg adjusted p-value
    effect: float  # K-S D, Cohen's w for chi-square, Mahalanobis d for the Wald test
    min_effect: float
    drifted: bool
    segment: str = "all"  # ``all`` rows, or one segment such as ``activity=high``

    def describe(self) -> str:
        """``column (ks p=1.2e-05, D=0.13)``: the evidence in a few words."""
        name = {"ks": "D", "chisquare": "w"}.get(self.method, "d")
        return f"{self.column} ({self.method} p={self.p_value:.2g}, {name}={self.effect:.3f})"


def _share(columns: list[ColumnDrift]) -> float:
    return sum(c.drifted for c in columns) / max(len(columns), 1)


@dataclass
class DriftResult:
    """Outcome of :func:`check_drift`; ``snapshot`` is the Evidently run (not serialised)."""

    status: Status
    share_drifted: float
    should_retrain: bool
    n_reference: int
    n_current: int
    drift_share: float
    columns: list[ColumnDrift] = field(default_factory=list)
    reason: str = ""
    fdr: float = 0.05
    segments: list[ColumnDrift] = field(default_factory=list)  # per-segment tests
    snapshot: Any = field(default=None, repr=False, compare=False)

    @property
    def drifted_columns(self) -> list[ColumnDrift]:
        """The drifted columns, strongest evidence first (p-value, then effect size)."""
        drifted = [c for c in self.columns if c.drifted]
        return sorted(drifted, key=lambda c: (c.p_value, -c.effect))

    def segment_shares(self) -> dict[str, float]:
        """Share of drifted columns per tested segment."""
        names = dict.fromkeys(c.segment for c in self.segments)
        return {s: _share([c for c in self.segments if c.segment == s]) for s in names}

    @property
    def drifted_segments(self) -> list[str]:
        """Segments whose drifted share reaches the trigger, largest share first."""
        shares = self.segment_shares()
        fired = [s for s, v in shares.items() if v > 0 and v >= self.drift_share]
        return sorted(fired, key=lambda s: -shares[s])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (everything but the snapshot)."""
        return {
            "status": self.status,
            "share_drifted": self.share_drifted,
            "should_retrain": self.should_retrain,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "drift_share": self.drift_share,
            "fdr": self.fdr,
            "reason": self.reason,
            "drifted_columns": [c.column for c in self.drifted_columns],
            "columns": [asdict(c) for c in self.columns],
            "drifted_segments": self.drifted_segments,
            "segments": [asdict(c) for c in self.segments],
        }


def monitored_columns(
    reference: pd.DataFrame, current: pd.DataFrame
) -> tuple[list[str], list[str], list[str]]:
    """Pick the numeric, categorical and bucket-share columns to check.

    Behaviour features of every profile version are required in both frames; newer profile
    columns and prediction columns are checked only where both frames have them (an older
    reference or log lacks the first, a reference built without a model the second).

    Raises:
        ValueError: naming the frame and the missing behaviour columns.
    """
    for name, frame in (("reference", reference), ("current", current)):
        missing = [c for c in LEGACY_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} profile lacks columns {missing} (see core.profile)")
    both = set(reference.columns) & set(current.columns)
    numeric = [c for c in NUMERIC_FEATURES + PREDICTION_NUMERIC if c in both]
    # Text summaries (models with a text channel): where both frames hold finite values.
    numeric += [c for c in TEXT_FEATURES if c in both and _has_finite(reference[c], current[c])]
    categorical = [c for c in CATEGORICAL_FEATURES + PREDICTION_CATEGORICAL if c in both]
    buckets = [c for c in BUCKET_FEATURES if c in both]
    return numeric, categorical, buckets


def _has_finite(*columns: pd.Series) -> bool:
    return all(
        np.isfinite(pd.to_numeric(c, errors="coerce").to_numpy(float)).any() for c in columns
    )


def _not_enough(
    reference: pd.DataFrame, current: pd.DataFrame, config: MonitoringConfig
) -> DriftResult:
    return DriftResult(
        status="not_enough_data",
        share_drifted=0.0,
        should_retrain=False,
        n_reference=len(reference),
        n_current=len(current),
        drift_share=config.drift_share,
        fdr=config.fdr,
        reason=(
            f"need at least {config.min_rows} rows in each frame, got reference={len(reference)}, "
            f"current={len(current)}"
        ),
    )


def _reason(result: DriftResult, config: MonitoringConfig) -> str:
    drifted = result.drifted_columns
    rule = (
        f"BH FDR {config.fdr:g}, effect >= D {config.min_ks_effect:g} / w "
        f"{config.min_chi2_effect:g} / d {config.min_share_effect:g}, trigger share >= "
        f"{config.drift_share:g}"
    )
    head = f"{len(drifted)}/{len(result.columns)} columns drifted ({rule})"
    if drifted:
        head += ": " + ", ".join(c.describe() for c in drifted)
    segments = result.drifted_segments
    if segments and not drifted:  # the whole window did not fire: name what did
        for segment in segments:
            found = [c for c in result.segments if c.segment == segment and c.drifted]
            found.sort(key=lambda c: (c.p_value, -c.effect))
            head += f"; segment {segment} drove it: " + ", ".join(c.describe() for c in found)
    elif segments:
        head += "; drifted segments: " + ", ".join(segments)
    small = [c for c in result.columns if c.q_value <= config.fdr and not c.drifted]
    if small:
        small.sort(key=lambda c: (c.p_value, -c.effect))
        head += "; significant but below the effect floor: " + ", ".join(
            c.describe() for c in small
        )
    return head


Columns = tuple[list[str], list[str], list[str]]


def _without(columns: Columns, drop: set[str]) -> Columns:
    numeric, categorical, buckets = ([c for c in g if c not in drop] for g in columns)
    return numeric, categorical, buckets


def _segment_parts(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Columns,
    config: MonitoringConfig,
    stats: ReferenceStats,
) -> Iterator[tuple[str, ReferenceStats, pd.DataFrame, Columns]]:
    """``(segment, reference statistics, current rows, columns)`` per testable segment.

    From the cached per-segment statistics when they were cut by ``config``'s rules (only
    the current rows are labelled), else from the reference rows.
    """
    if config.segment_min_rows <= 0 or current.empty:
        return
    rules = stats.segmenter(config)
    if rules is None:
        for name, ref_part, cur_part in segment_pairs(reference, current, config):
            own = _without(columns, set(reference.columns) - set(ref_part.columns))
            yield name, ReferenceStats.from_frame(ref_part, *own), cur_part, own
        return
    for kind, labels in rules.label(current).items():
        for value in sorted(labels.unique()):
            name, part = f"{kind}={value}", current[(labels == value).to_numpy()]
            seg = stats.segments.get(name)
            if seg is None or min(seg.n_rows, len(part)) < config.segment_min_rows:
                continue
            part = part.drop(columns=[c for c in DEFINING[kind] if c in part.columns])
            yield name, seg, part, _without(columns, set(DEFINING[kind]))


def check_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    config: MonitoringConfig,
    *,
    stats: ReferenceStats | None = None,
) -> DriftResult:
    """Test every monitored column for drift and decide whether to retrain.

    Args:
        reference: the champion's reference profile (``core.profile.PROFILE_COLUMNS`` plus,
            optionally, ``core.predlog.PREDICTION_COLUMNS``).
        current: the same columns from the prediction log window.
        config: FDR level, effect floors, drifted-share trigger and minimum rows.
        stats: the reference's binned statistics (:func:`monitoring.stats.cached_stats`),
            with its segments' when they were cut by ``config``; computed from
            ``reference`` when not given.

    Returns:
        A :class:`DriftResult` without ``snapshot`` (see :mod:`monitoring.snapshot`);
        ``status`` is ``"not_enough_data"`` (never a retrain) when either frame has fewer
        than ``config.min_rows`` rows.

    Raises:
        ValueError: if a behaviour-feature column is missing from either frame.
    """
    columns = monitored_columns(reference, current)
    if min(len(reference), len(current)) < config.min_rows:
        return _not_enough(reference, current, config)
    if stats is None:
        stats = ReferenceStats.from_frame(reference, *columns)
    tests = [("all", *t) for t in run_tests(stats, current, columns, config)]
    for name, seg_stats, cur_part, own in _segment_parts(
        reference, current, columns, config, stats
    ):
        found = run_tests(seg_stats, cur_part, own, config)
        tests += [(name, *t[:4], t[4] * config.segment_effect_factor) for t in found]
    # One FDR rule across columns x segments: more hypotheses, never more false alarms.
    rejected, q_values = benjamini_hochberg([t[3] for t in tests], config.fdr)
    checked = [
        ColumnDrift(
            column=col,
            kind="prediction" if col in PREDICTION_COLUMNS else "feature",
            method=method,
            p_value=p,
            q_value=q,
            effect=effect,
            min_effect=floor,
            drifted=bool(reject and effect >= floor),
            segment=segment,
        )
        for (segment, col, method, p, effect, floor), reject, q in zip(
            tests, rejected, q_values, strict=True
        )
    ]
    overall = [c for c in checked if c.segment == "all"]
    share = _share(overall)
    result = DriftResult(
        status="ok",
        share_drifted=share,
        should_retrain=False,
        n_reference=len(reference),
        n_current=len(current),
        drift_share=config.drift_share,
        columns=overall,
        fdr=config.fdr,
        segments=[c for c in checked if c.segment != "all"],
    )
    drift = (share > 0 and share >= config.drift_share) or bool(result.drifted_segments)
    result.status, result.should_retrain = ("drift" if drift else "ok"), drift
    result.reason = _reason(result, config)
    return result
