"""Where a drift check's outcome goes: report files and an MLflow run."""

from __future__ import annotations

import html as html_lib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import MonitoringConfig
from monitoring.drift import DriftResult
from monitoring.snapshot import snapshot_metadata

EXPERIMENT = "monitoring"


@dataclass(frozen=True)
class ReportFiles:
    """The files written for one check (``html`` is ``None`` without a snapshot)."""

    json: Path
    html: Path | None


def _header(result: DriftResult, summary: dict[str, str]) -> str:
    """An HTML block naming version, window, reference and decision, and the column tests."""
    esc = html_lib.escape
    colour = {"drift": "#b00020", "ok": "#1b5e20"}.get(result.status, "#555")
    facts = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{esc(k)}</th><td>{esc(v)}</td></tr>"
        for k, v in summary.items()
    )
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td style='padding-right:1em'>{esc(v)}</td>"
            for v in (
                c.column,
                c.method,
                f"{c.p_value:.3g}",
                f"{c.q_value:.3g}",
                f"{c.effect:.3f}",
                f"{c.min_effect:g}",
                "yes" if c.drifted else "",
            )
        )
        + "</tr>"
        for c in sorted(result.columns, key=lambda c: (c.p_value, -c.effect))
    )
    heads = "".join(
        f"<th style='text-align:left'>{h}</th>"
        for h in ("column", "test", "p", "BH q", "effect", "floor", "drifted")
    )
    return (
        "<div style='font-family:sans-serif;margin:1em;padding:1em;border:2px solid "
        f"{colour}'><h2 style='color:{colour};margin-top:0'>Drift check: "
        f"{esc(summary['decision'])} (model v{esc(summary['model_version'])})</h2>"
        f"<table>{facts}</table><h3>Decision tests (the Evidently panels below are display "
        f"only)</h3><table><tr>{heads}</tr>{rows}</table></div>"
    )


def save_report(
    result: DriftResult, directory: Path, stamp: str, context: dict[str, Any]
) -> ReportFiles:
    """Write ``drift-<stamp>.json`` (decision, context, Evidently results) and ``.html``.

    Both name the model version, the window, the reference and the decision first
    (``summary`` in the JSON, a header above the Evidently report in the HTML).

    Args:
        result: the drift check outcome (with its Evidently ``snapshot``, when built).
        directory: the reports folder (created when missing).
        stamp: UTC time stamp used in the file names.
        context: window and reference details (``model_version``, ``since``, ``until``,
            ``reference``) to keep with the decision.
    """
    directory.mkdir(parents=True, exist_ok=True)
    summary = snapshot_metadata(result, context)
    payload: dict[str, Any] = {"summary": summary, "result": result.to_dict(), "context": context}
    html = None
    if result.snapshot is not None:
        payload["evidently"] = json.loads(result.snapshot.json())
        html = directory / f"drift-{stamp}.html"
        page = result.snapshot.get_html_str(as_iframe=False)
        at = page.find(">", page.find("<body")) + 1 if "<body" in page else 0
        html.write_text(page[:at] + _header(result, summary) + page[at:], encoding="utf-8")
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
                "fdr": config.fdr,
                "min_ks_effect": config.min_ks_effect,
                "min_chi2_effect": config.min_chi2_effect,
                "drift_share": config.drift_share,
                "min_rows": config.min_rows,
                "segment_min_rows": config.segment_min_rows,
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
                "drifted_segments": ",".join(result.drifted_segments),
            }
        )
        mlflow.log_artifact(str(files.json), artifact_path="reports")
        if files.html is not None:
            mlflow.log_artifact(str(files.html), artifact_path="reports")
        return run.info.run_id
