"""Local Evidently workspace: one project whose dashboard follows drift over time.

View it with ``evidently ui --workspace <paths.evidently_workspace>``. Each run carries the
decision as metadata and tags (``decision:drift``, ``model_version:7``, ``drifted:<column>``);
the panels plot Evidently's own per-column tests, which are display only (the decision is
:func:`monitoring.drift.check_drift`'s FDR rule): the share of drifted columns, and each
column's drift value (``ValueDrift``, series matched by its ``column`` label) over time with
the method and threshold in the panel's title. Realised performance (``monitor performance``
and ``monitor run``) is logged as its own small run (tag ``kind:performance``, see
:func:`add_performance`): per model version the realised metric and, as the reference line,
the version's stored test score, each a ``MeanValue`` of a one-row frame whose column names
the series (``recall_at_10 v7``, ``recall_at_10 v7 test``). The MLflow ``monitoring``
experiment keeps the same figures (``perf_*`` metrics). Panels are added when the project is
created; a project created before a panel existed gets it on its next use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROJECT_NAME = "interest-evolution"
TAB = "Drift"
PERFORMANCE_TAG = "kind:performance"
PERFORMANCE_TITLE = "Realised performance over time, per model version"
TEST_SUFFIX = " test"  # the reference series: the version's score on its own test split


@dataclass(frozen=True)
class RealisedScore:
    """One model version's realised metric in a window, and its stored test score."""

    version: str
    value: float
    test_value: float | None = None  # None: the version's refit stored no test scores
    n_users: int = 0


def _performance_panel(dashboard: Any) -> None:
    """Realised metric per version over time, each with its test score as reference line."""
    from evidently.sdk.models import PanelMetric
    from evidently.sdk.panels import line_plot_panel

    series = PanelMetric(legend="{{column}}", metric="MeanValue", tags=[PERFORMANCE_TAG])
    description = (
        "realised on the prediction log joined with the outcomes that followed ('<metric> "
        f"v<version>'); '<metric> v<version>{TEST_SUFFIX}' is that version's test score"
    )
    dashboard.add_panel(line_plot_panel(PERFORMANCE_TITLE, [series], description), tab=TAB)


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
    _performance_panel(dashboard)


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
        project = found[0]
        if not any(p.title == PERFORMANCE_TITLE for p in project.dashboard.model().panels):
            _performance_panel(project.dashboard)
        return workspace, project
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


def performance_snapshot(
    scores: list[RealisedScore], metric: str, context: dict[str, Any], timestamp: datetime
) -> Any:
    """The Evidently run of one window's realised performance (``None`` without a score).

    Args:
        scores: per model version, the realised value and the stored test value.
        metric: the metric's name, e.g. ``recall_at_10``.
        context: ``since``, ``until`` and ``trigger``, written as metadata.
        timestamp: where the point sits on the dashboard's time axis (the window's end).
    """
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import MeanValue

    row: dict[str, float] = {}
    for score in scores:
        if math.isfinite(score.value):
            row[f"{metric} v{score.version}"] = score.value
            if score.test_value is not None and math.isfinite(score.test_value):
                row[f"{metric} v{score.version}{TEST_SUFFIX}"] = score.test_value
    if not row:
        return None
    metadata = {
        "metric": metric,
        "window": f"{context.get('since', '?')} .. {context.get('until', '?')}",
        "trigger": str(context.get("trigger", "")),
        "model_versions": ", ".join(s.version for s in scores),
        "labelled_users": ", ".join(f"v{s.version}: {s.n_users}" for s in scores),
    }
    tags = [PERFORMANCE_TAG, *(f"model_version:{s.version}" for s in scores)]
    frame = pd.DataFrame([row])
    dataset = Dataset.from_pandas(frame, data_definition=DataDefinition(numerical_columns=[*row]))
    report = Report([MeanValue(column=c) for c in row], metadata=metadata, tags=tags)
    name = f"performance {metric} {metadata['window']}"
    if timestamp.tzinfo is not None:  # Evidently's own runs carry naive times: sortable together
        timestamp = timestamp.astimezone(UTC).replace(tzinfo=None)
    return report.run(dataset, None, timestamp=timestamp, name=name)


def add_performance(
    workspace_dir: Path,
    scores: list[RealisedScore],
    metric: str,
    context: dict[str, Any],
    timestamp: datetime,
    *,
    method: str = "",
    threshold: float | None = None,
) -> str | None:
    """Store a window's realised performance in the project (``None`` when nothing scored).

    ``method`` and ``threshold`` name the drift panels if this run creates the project.

    Returns:
        The id of the stored run.
    """
    snapshot = performance_snapshot(scores, metric, context, timestamp)
    if snapshot is None:
        return None
    name = f"performance {metric} {context.get('since', '?')} .. {context.get('until', '?')}"
    return add_snapshot(workspace_dir, snapshot, name, method=method, threshold=threshold)
