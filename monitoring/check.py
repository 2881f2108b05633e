"""One drift check of a prediction-log window: compare, save the report, record it.

``interest monitor drift`` (by hand) and the scheduled pass (:mod:`pipelines.monitor`) both
call :func:`check_window`, so a window checked either way yields the same decision, the same
report files, the same Evidently snapshot and the same MLflow ``monitoring`` run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from core.config import ProjectConfig
from core.predlog import read_prediction_log
from monitoring.drift import DriftResult, check_drift
from monitoring.reference import load_reference
from monitoring.report import ReportFiles, log_to_mlflow, save_report
from monitoring.workspace import add_snapshot


@dataclass
class WindowCheck:
    """The drift decision of one window and where it was recorded."""

    drift: DriftResult
    report: ReportFiles
    context: dict[str, Any]  # window, reference, log folder, skipped lines
    evidently_run: str | None
    mlflow_run: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (``interest monitor drift --json``)."""
        return {
            **self.drift.to_dict(),
            **self.context,
            "report_json": str(self.report.json),
            "report_html": str(self.report.html) if self.report.html else None,
            "evidently_run": self.evidently_run,
            "mlflow_run": self.mlflow_run,
        }


def check_window(
    config: ProjectConfig,
    reference: Path,
    start: datetime,
    end: datetime,
    *,
    stamp: str,
    trigger: str,
) -> WindowCheck:
    """Drift of the logged window ``[start, end)`` against the reference profile.

    Args:
        config: project configuration (``monitoring`` thresholds, ``paths``).
        reference: a model bundle folder or a ``reference.parquet``.
        start: window start (inclusive, on ``logged_at``).
        end: window end (exclusive).
        stamp: UTC stamp naming the report files.
        trigger: who asked (``monitor drift``, ``monitor run``), logged as an MLflow param.

    Raises:
        OSError, ValueError: unreadable reference or log (the message names the file).
    """
    paths = config.paths.resolved()
    ref = load_reference(reference)
    log_dir = paths.prediction_log
    current = read_prediction_log(log_dir, start, end) if log_dir.is_dir() else pd.DataFrame()
    skipped = int(current.attrs.get("skipped_lines", 0))
    if current.empty:
        current = ref.iloc[:0]
    result = check_drift(ref, current, config.monitoring)
    context = {
        "since": pd.Timestamp(start).isoformat(),
        "until": pd.Timestamp(end).isoformat(),
        "reference": str(reference),
        "prediction_log": str(log_dir),
        "skipped_lines": skipped,
    }
    files = save_report(result, paths.state_dir / "reports", stamp, context)
    evidently_run = None
    if result.snapshot is not None:
        evidently_run = add_snapshot(
            paths.evidently_workspace, result.snapshot, name=files.json.stem
        )
    params = {
        "reference": str(reference),
        "trigger": trigger,
        "since": context["since"],
        "until": context["until"],
    }
    mlflow_run = log_to_mlflow(
        result, files, config.monitoring, paths.tracking_uri, paths.artifact_root, params
    )
    return WindowCheck(result, files, context, evidently_run, mlflow_run)
