"""Drift check: compare the serving log's profile with the champion's reference profile.

One Evidently ``Report`` holds a ``ValueDrift`` per monitored column (behaviour features and
model outputs), a ``DriftedColumnsCount`` over all of them, and data-quality metrics of the
current window. Results are read back by metric object, never by list position.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from core.config import MonitoringConfig
from core.predlog import PREDICTION_CATEGORICAL, PREDICTION_COLUMNS, PREDICTION_NUMERIC
from core.profile import CATEGORICAL_FEATURES, NUMERIC_FEATURES

# Drift statistics on 10k rows are already stable; more rows only cost time.
MAX_ROWS = 10_000
# PSI over a long tail of rare categories measures sampling noise, not drift: keep the
# reference's most frequent categories, about one per ROWS_PER_CATEGORY rows, at most 30.
MAX_CATEGORIES = 30
MIN_CATEGORIES = 5
ROWS_PER_CATEGORY = 100
OTHER = "__other__"

# Numeric-only tests get a categorical counterpart of the same kind (p-value or distance).
_PVALUE_TESTS = {"ks", "t_test", "anderson", "cramer_von_mises", "mannw", "es", "epps_singleton"}

Status = Literal["ok", "drift", "not_enough_data"]


@dataclass(frozen=True)
class ColumnDrift:
    """Drift of one column between reference and current."""

    column: str
    kind: Literal["feature", "prediction"]
    method: str
    score: float
    threshold: float
    drifted: bool


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
    snapshot: Any = field(default=None, repr=False, compare=False)

    @property
    def drifted_columns(self) -> list[ColumnDrift]:
        """The checked columns whose drift test failed."""
        return [c for c in self.columns if c.drifted]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (everything but the snapshot)."""
        return {
            "status": self.status,
            "share_drifted": self.share_drifted,
            "should_retrain": self.should_retrain,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "drift_share": self.drift_share,
            "reason": self.reason,
            "drifted_columns": [c.column for c in self.drifted_columns],
            "columns": [vars(c) for c in self.columns],
        }


def monitored_columns(
    reference: pd.DataFrame, current: pd.DataFrame
) -> tuple[list[str], list[str]]:
    """Pick the numeric and categorical columns to check.

    Behaviour features are required in both frames; prediction columns are checked only
    where both frames have them (a reference built without a model has none).

    Raises:
        ValueError: naming the frame and the missing behaviour columns.
    """
    features = list(NUMERIC_FEATURES) + list(CATEGORICAL_FEATURES)
    for name, frame in (("reference", reference), ("current", current)):
        missing = [c for c in features if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} profile lacks columns {missing} (see core.profile)")
    both = set(reference.columns) & set(current.columns)
    numeric = list(NUMERIC_FEATURES) + [c for c in PREDICTION_NUMERIC if c in both]
    categorical = list(CATEGORICAL_FEATURES) + [c for c in PREDICTION_CATEGORICAL if c in both]
    return numeric, categorical


def _prepare(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    frames = []
    for frame in (reference, current):
        if len(frame) > MAX_ROWS:
            frame = frame.sample(MAX_ROWS, random_state=seed)
        out = pd.DataFrame(index=range(len(frame)))
        for col in numeric:
            out[col] = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype="float64")
        for col in categorical:
            out[col] = frame[col].fillna("").astype(str).to_numpy()
        frames.append(out)
    ref, cur = frames
    k = int(np.clip(min(len(ref), len(cur)) // ROWS_PER_CATEGORY, MIN_CATEGORIES, MAX_CATEGORIES))
    for col in categorical:
        keep = set(ref[col].value_counts().index[:k])
        ref[col] = ref[col].where(ref[col].isin(keep), OTHER)
        cur[col] = cur[col].where(cur[col].isin(keep), OTHER)
    return ref, cur


def _quality_metrics(columns: list[str]) -> list[Any]:
    """Data quality of the window: row count and missing values per column.

    Lighter than ``DataSummaryPreset``, whose per-column plots cost about 1 s per column.
    """
    from evidently.metrics import DatasetMissingValueCount, MissingValueCount, RowCount

    return [RowCount(), DatasetMissingValueCount(), *(MissingValueCount(column=c) for c in columns)]


def categorical_method(method: str) -> str:
    """Return ``method`` if it applies to categorical columns, else a counterpart of its kind."""
    from evidently.legacy.calculations.stattests.registry import get_registered_stattest
    from evidently.legacy.core import ColumnType

    try:
        get_registered_stattest(method, ColumnType.Categorical)
    except Exception:  # noqa: BLE001 - evidently raises its own error types here
        return "chisquare" if method in _PVALUE_TESTS else "jensenshannon"
    return method


def _build_report(
    numeric: list[str], categorical: list[str], config: MonitoringConfig, with_quality: bool
) -> tuple[Any, Any, dict[str, Any]]:
    from evidently import Report
    from evidently.metrics import DriftedColumnsCount, ValueDrift

    method, threshold = config.stattest, config.stattest_threshold
    columns = numeric + categorical
    count = DriftedColumnsCount(
        columns=columns,
        num_method=method,
        cat_method=categorical_method(method),
        threshold=threshold,
        drift_share=config.drift_share,
    )
    cat_method = categorical_method(method)
    per_column = {
        c: ValueDrift(column=c, method=method if c in numeric else cat_method, threshold=threshold)
        for c in columns
    }
    metrics = [count, *per_column.values()]
    if with_quality:
        metrics += _quality_metrics(columns)
    return Report(metrics, include_tests=True), count, per_column


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
        reason=(
            f"need at least {config.min_rows} rows in each frame, got reference={len(reference)}, "
            f"current={len(current)}"
        ),
    )


def check_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    config: MonitoringConfig,
    *,
    seed: int = 0,
    with_quality: bool = True,
) -> DriftResult:
    """Test every monitored column for drift and decide whether to retrain.

    Args:
        reference: the champion's reference profile (``core.profile.PROFILE_COLUMNS`` plus,
            optionally, ``core.predlog.PREDICTION_COLUMNS``).
        current: the same columns from the prediction log window.
        config: method, per-column threshold, drifted-share trigger and minimum rows.
        seed: seed for down-sampling frames larger than :data:`MAX_ROWS`.
        with_quality: also summarise data quality (rows, missing values) of the window.

    Returns:
        A :class:`DriftResult`; ``status`` is ``"not_enough_data"`` (never a retrain) when
        either frame has fewer than ``config.min_rows`` rows.

    Raises:
        ValueError: if a behaviour-feature column is missing from either frame.
    """
    from evidently import DataDefinition, Dataset

    numeric, categorical = monitored_columns(reference, current)
    if min(len(reference), len(current)) < config.min_rows:
        return _not_enough(reference, current, config)
    ref, cur = _prepare(reference, current, numeric, categorical, seed)
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    report, count, per_column = _build_report(numeric, categorical, config, with_quality)
    snapshot = report.run(
        Dataset.from_pandas(cur, data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition),
    )
    results = snapshot.metric_results
    checked = []
    for col, metric in per_column.items():
        res = results[metric.metric_id]
        # The ValueDrift test knows the method's direction (p-value vs distance).
        drifted = any(t.status.value == "FAIL" for t in res.tests)
        kind = "prediction" if col in PREDICTION_COLUMNS else "feature"
        score = float(res.value)
        checked.append(
            ColumnDrift(col, kind, metric.method, score, config.stattest_threshold, drifted)
        )
    share = float(results[count.metric_id].share.value)
    drift = share >= config.drift_share
    n_drift = sum(c.drifted for c in checked)
    return DriftResult(
        status="drift" if drift else "ok",
        share_drifted=share,
        should_retrain=drift,
        n_reference=len(reference),
        n_current=len(current),
        drift_share=config.drift_share,
        columns=checked,
        reason=f"{n_drift}/{len(checked)} columns drifted (trigger: share >= {config.drift_share})",
        snapshot=snapshot,
    )
