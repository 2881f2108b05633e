"""Where a drift check's outcome goes: report files and an MLflow run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import MonitoringConfig
from monitoring.drift import DriftResult

EXPERIMENT = "monitoring"


@dataclass(frozen=True)
class ReportFiles:
    """The files written for one check (``html`` is ``None`` without a snapshot)."""

    json: Path
    html: Path | None


def save_report(
    result: DriftResult, directory: Path, stamp: str, context: dict[str, Any]
) -> ReportFiles:
    """Write ``drift-<stamp>.json`` (decision, context, Evidently results) and ``.html``.

    Args:
        result: the drift check outcome.
        directory: the reports folder (created when missing).
        stamp: UTC time stamp used in the file names.
        context: window and reference details to keep with the decision.
    """
    directory.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {"result": result.to_dict(), "context": context}
    html = None
    if result.snapshot is not None:
        payload["evidently"] = json.loads(result.snapshot.json())
        html = directory / f"drift-{stamp}.html"
        result.snapshot.save_html(str(html))
    path = directory / f"drift-{stamp}.json"
    path.write_text(json.dumps(payload, indent=1, default=str))
    return ReportFiles(json=path, html=html)


def use_monitoring_experiment(tracking_uri: str, artifact_root: str) -> None:
    """Point MLflow at the experiment ``monitoring``, creating it under the artifact root."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        # Artifacts go under the project's artifact root, not ./mlruns of the caller.
        mlflow.create_experiment(EXPERIMENT, artifact_location=f"{artifact_root}/{EXPERIMENT}")
    mlflow.set_experiment(EXPERIMENT)


def log_to_mlflow(
    result: DriftResult,
    files: ReportFiles,
    config: MonitoringConfig,
    tracking_uri: str,
    artifact_root: str,
    params: dict[str, str],
) -> str:
    """Log the decision and key figures to the MLflow experiment ``monitoring``.

    Returns:
        The MLflow run id.
    """
    import mlflow

    use_monitoring_experiment(tracking_uri, artifact_root)
    with mlflow.start_run(run_name=files.json.stem) as run:
        mlflow.log_params(
            {
                "status": result.status,
                "should_retrain": result.should_retrain,
                "stattest": config.stattest,
                "stattest_threshold": config.stattest_threshold,
                "drift_share": config.drift_share,
                "min_rows": config.min_rows,
                **params,
            }
        )
        mlflow.log_metrics(
            {
                "share_drifted": result.share_drifted,
                "n_current": result.n_current,
                "n_reference": result.n_reference,
                "n_drifted_columns": len(result.drifted_columns),
            }
        )
        mlflow.set_tags(
            {
                "decision": result.status,
                "drifted": ",".join(c.column for c in result.drifted_columns),
            }
        )
        mlflow.log_artifact(str(files.json), artifact_path="reports")
        if files.html is not None:
            mlflow.log_artifact(str(files.html), artifact_path="reports")
        return run.info.run_id
