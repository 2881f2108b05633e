"""Local Evidently workspace: one project whose dashboard follows drift over time.

View it with ``evidently ui --workspace <paths.evidently_workspace>``. Each run carries the
decision as metadata and tags (``decision:drift``, ``model_version:7``, ``drifted:<column>``);
the panels plot Evidently's own per-column tests, which are display only (the decision is
:func:`monitoring.drift.check_drift`'s FDR rule).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PROJECT_NAME = "interest-evolution"
TAB = "Drift"


def _add_dashboard(project: Any) -> None:
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


def get_project(workspace_dir: Path, name: str = PROJECT_NAME) -> tuple[Any, Any]:
    """Open (or create) the workspace and the project with its dashboard.

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
    _add_dashboard(project)
    return workspace, project


def add_snapshot(workspace_dir: Path, snapshot: Any, name: str | None = None) -> str:
    """Store a drift snapshot in the workspace project.

    Returns:
        The id of the stored run.
    """
    workspace, project = get_project(workspace_dir)
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
