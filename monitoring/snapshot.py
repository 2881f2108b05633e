"""The Evidently report of a drift check: built after the decision, for people.

The decision (:func:`monitoring.drift.check_drift`) is taken on binned statistics; this
report shows the same columns with Evidently's own per-column tests (``stattest``,
``stattest_threshold``: display only) on down-sampled frames, plus data quality of the
window, and carries the decision, model version, window and reference as metadata and tags.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.config import MonitoringConfig
from monitoring.drift import DriftResult, monitored_columns
from monitoring.stats import category_values

# Evidently's per-column statistics on 10k rows are already stable; more rows only cost time.
MAX_ROWS = 10_000
# The category-bucket shares are a list per user: the report shows one bucket drawn per user
# from them (same expected distribution, a column Evidently can plot).
EVENT_BUCKET = "event_bucket"
MAX_CATEGORIES = 30
MIN_CATEGORIES = 5
ROWS_PER_CATEGORY = 100
OTHER = "__other__"
# Numeric-only tests get a categorical counterpart of the same kind (p-value or distance).
_PVALUE_TESTS = {"ks", "t_test", "anderson", "cramer_von_mises", "mannw", "es", "epps_singleton"}


def categorical_method(method: str) -> str:
    """Return ``method`` if it applies to categorical columns, else a counterpart of its kind."""
    from evidently.legacy.calculations.stattests.registry import get_registered_stattest
    from evidently.legacy.core import ColumnType

    try:
        get_registered_stattest(method, ColumnType.Categorical)
    except Exception:  # noqa: BLE001 - evidently raises its own error types here
        return "chisquare" if method in _PVALUE_TESTS else "jensenshannon"
    return method


def _draw_buckets(series: pd.Series, rng: np.random.Generator) -> np.ndarray:
    """One bucket index per row drawn from its shares (``""`` for an empty window)."""
    out = np.full(len(series), "", dtype=object)
    for i, shares in enumerate(series.tolist()):
        if not isinstance(shares, list | tuple | np.ndarray):
            continue
        p = np.nan_to_num(np.asarray(shares, dtype=np.float64))
        if p.size and p.sum() > 0:
            out[i] = str(int(np.searchsorted(np.cumsum(p) / p.sum(), rng.random())))
    return out


def _prepare(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: tuple[list[str], list[str], list[str]],
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    numeric, categorical, buckets = columns
    rng = np.random.default_rng(seed)
    frames = []
    for frame in (reference, current):
        if len(frame) > MAX_ROWS:
            frame = frame.sample(MAX_ROWS, random_state=seed)
        out = pd.DataFrame(index=range(len(frame)))
        for col in numeric:
            out[col] = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype="float64")
        for col in categorical:
            out[col] = category_values(frame[col]).to_numpy()
        if buckets:
            out[EVENT_BUCKET] = _draw_buckets(frame[buckets[0]], rng)
        frames.append(out)
    ref, cur = frames
    k = int(np.clip(min(len(ref), len(cur)) // ROWS_PER_CATEGORY, MIN_CATEGORIES, MAX_CATEGORIES))
    for col in categorical:
        keep = set(ref[col].value_counts().index[:k])
        ref[col] = ref[col].where(ref[col].isin(keep), OTHER)
        cur[col] = cur[col].where(cur[col].isin(keep), OTHER)
    return ref, cur


def _quality_metrics(columns: list[str]) -> list[Any]:
    """Row count and missing values per column (``DataSummaryPreset`` costs ~1 s a column)."""
    from evidently.metrics import DatasetMissingValueCount, MissingValueCount, RowCount

    return [RowCount(), DatasetMissingValueCount(), *(MissingValueCount(column=c) for c in columns)]


def snapshot_metadata(result: DriftResult, context: dict[str, Any]) -> dict[str, str]:
    """What a reader of the report needs first: version, window, reference, decision."""
    return {
        "model_version": str(context.get("model_version", "")),
        "window": f"{context.get('since', '?')} .. {context.get('until', '?')}",
        "reference": str(context.get("reference", "")),
        "decision": result.status,
        "should_retrain": str(result.should_retrain),
        "drifted_columns": ", ".join(c.column for c in result.drifted_columns) or "none",
        "drifted_segments": ", ".join(result.drifted_segments) or "none",
        "reason": result.reason,
    }


def build_snapshot(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    result: DriftResult,
    config: MonitoringConfig,
    context: dict[str, Any],
    *,
    seed: int = 0,
    with_quality: bool = True,
) -> Any:
    """Run the Evidently report of a decided check (``None`` when there was too little data).

    Args:
        reference: the reference profile the decision used.
        current: the window's rows the decision used.
        result: the decision (written into the report's metadata and tags).
        config: ``stattest``/``stattest_threshold`` (display) and ``drift_share``.
        context: ``model_version``, ``since``, ``until``, ``reference`` of the check.
        seed: seed for down-sampling and the drawn event buckets.
        with_quality: also summarise data quality (rows, missing values) of the window.
    """
    if result.status == "not_enough_data":
        return None
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import DriftedColumnsCount, ValueDrift

    numeric, categorical, buckets = monitored_columns(reference, current)
    ref, cur = _prepare(reference, current, (numeric, categorical, buckets), seed)
    shown_categorical = categorical + ([EVENT_BUCKET] if buckets else [])
    method, threshold = config.stattest, config.stattest_threshold
    cat_method = categorical_method(method)
    columns = numeric + shown_categorical
    metrics: list[Any] = [
        DriftedColumnsCount(
            columns=columns,
            num_method=method,
            cat_method=cat_method,
            threshold=threshold,
            drift_share=config.drift_share,
        ),
        *(
            ValueDrift(column=c, method=method if c in numeric else cat_method, threshold=threshold)
            for c in columns
        ),
    ]
    if with_quality:
        metrics += _quality_metrics(columns)
    metadata = snapshot_metadata(result, context)
    tags = [f"decision:{result.status}", f"model_version:{metadata['model_version']}"]
    tags += [f"drifted:{c.column}" for c in result.drifted_columns]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=shown_categorical)
    report = Report(metrics, metadata=metadata, tags=tags, include_tests=True)
    return report.run(
        Dataset.from_pandas(cur, data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition),
        name=f"drift v{metadata['model_version']} {metadata['window']}: {result.status}",
    )
