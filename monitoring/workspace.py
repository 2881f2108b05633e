"""Local Evidently workspace: one project whose dashboard follows drift over time.

View it with ``evidently ui --workspace <paths.evidently_workspace>``. Each run carries the
decision as metadata and tags (``decision:drift``, ``model_version:7``, ``drifted:<column>``);
the panels plot Evidently's own per-column tests, which are display only (the decision is
:func:`monitoring.drift.check_drift`'s FDR rule): the share of drifted columns, and each
column's drift value (``ValueDrift``, series matched by its ``column`` label) over time with
the method and threshold in the panel's title. Realised performance is not an Evidently
metric here; it lives in the MLflow ``monitoring`` experiment (``perf_*`` metrics of the
``performance`` and ``decision`` runs). Panels are added when the project is created.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PROJECT_NAME = "interest-evolution"
TAB = "Drift"


def _column_panels(dashboard: Any, method: str, threshold: float | None) -> None:
    """Per-column drift value over time, features and predictions in separate plots."""
    from evidently.sdk.models import PanelMetric
    from evidently.sdk.panels import line_plot_panel

    from core.predlog import PREDICTION_CATEGORICAL, PREDICTION_NUMERIC
    from core.profile import CATEGORICAL_FEATURES, NUMERIC_FEATURES
    from monitoring.snapshot import EVENT_BUCKET

    rule = f"{method or 'stattest'}, drift at threshold {threshold:g}" if threshold else method
    groups = {
        "features": [*NUMERIC_FEATURES, *CATEGORICAL_FEATURES, EVENT_BUCKET],
        "predictions": [*PREDICTION_NUMERIC, *PREDICTION_CATEGORICAL],
    }
    for name, columns in groups.items():
        series = [
            PanelMetric(legend=c, metric="ValueDrift", metric_labels={"column": c}) for c in columns
        ]
        title = f"Drift per column over time, {name} ({rule})"
        description = "Evidently's per-column test (display only; the decision is the FDR rule)"
        dashboard.add_panel(line_plot_panel(title, series, description=description), tab=TAB)


def _add_dashboard(project: Any, method: str = "", threshold: float | None = None) -> None:
    """Panels over every run's metrics, identified by metric type and labels, not position."""
    from evidently.sdk.models import PanelMetric
    from evidently.sdk.panels import bar_plot_panel, counter_panel, line_plot_panel

    share = PanelMetric(
        legend="share of drifted columns",
        metric="DriftedColumnsCount",
        metric_labels={"value_type": "share"},
    )
    count = PanelMetric(
        legend="drifted columns",
        metric="DriftedColumnsCount",
        metric_labels={"value_type": "count"},
    )
    rows = PanelMetric(legend="rows in window", metric="RowCount")
    dashboard = project.dashboard
    dashboard.add_panel(
        counter_panel("Share of drifted columns, Evidently tests (last run)", [share], size="half"),
        tab=TAB,
    )
    dashboard.add_panel(counter_panel("Rows in last window", [rows], size="half"), tab=TAB)
    dashboard.add_panel(
        line_plot_panel("Share of drifted columns over time (Evidently tests)", [share]), tab=TAB
    )
    dashboard.add_panel(bar_plot_panel("Drifted columns per run", [count], size="half"), tab=TAB)
    dashboard.add_panel(line_plot_panel("Rows per window", [rows], size="half"), tab=TAB)
    _column_panels(dashboard, method, threshold)


def get_project(
    workspace_dir: Path,
    name: str = PROJECT_NAME,
    *,
    method: str = "",
    threshold: float | None = None,
) -> tuple[Any, Any]:
    """Open (or create) the workspace and the project with its dashboard.

    ``method`` and ``threshold`` (``monitoring.stattest``/``stattest_threshold``) name the
    per-column panels' rule.

    Returns:
        ``(workspace, project)``.
    """
    from evidently.ui.workspace import Workspace

    Path(workspace_dir).mkdir(parents=True, exist_ok=True)
    workspace = Workspace.create(str(workspace_dir))
    found = workspace.search_project(name)
    if found:
        return workspace, found[0]
    project = workspace.create_project(
        name, description="Drift of the prediction log vs the champion"
    )
    _add_dashboard(project, method, threshold)
    return workspace, project


def add_snapshot(
    workspace_dir: Path,
    snapshot: Any,
    name: str | None = None,
    *,
    method: str = "",
    threshold: float | None = None,
) -> str:
    """Store a drift snapshot in the workspace project (created with its dashboard).

    Returns:
        The id of the stored run.
    """
    workspace, project = get_project(workspace_dir, method=method, threshold=threshold)
    ref = workspace.add_run(project.id, snapshot, name=name)
    return str(ref.id)


def list_runs(workspace_dir: Path, name: str = PROJECT_NAME) -> list[str]:
    """Return the ids of the runs stored in the project (empty if there is none)."""
    from evidently.ui.workspace import Workspace

    if not Path(workspace_dir).is_dir():
        return []
    workspace = Workspace.create(str(workspace_dir))
    found = workspace.search_project(name)
    return [str(r) for r in workspace.list_runs(found[0].id)] if found else []
