"""The Evidently dashboard: per-column drift panels whose series match the snapshots' metrics."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

from core.config import MonitoringConfig
from monitoring.drift import check_drift
from monitoring.snapshot import build_snapshot
from monitoring.workspace import (
    PERFORMANCE_TITLE,
    RealisedScore,
    add_performance,
    add_snapshot,
    get_project,
)
from tests.monitoring.test_drift import make_profile


def test_per_column_panels_match_the_snapshot_metrics(tmp_path: Path) -> None:
    config = MonitoringConfig(min_rows=300)
    reference, current = make_profile(800, 0), make_profile(800, 2, shift=1.0)
    result = check_drift(reference, current, config)
    snapshot = build_snapshot(reference, current, result, config, {}, with_quality=False)
    add_snapshot(tmp_path, snapshot, "run", method="psi", threshold=0.1)
    _, project = get_project(tmp_path)
    panels = project.dashboard.model().panels
    per_column = [p for p in panels if p.title.startswith("Drift per column over time")]
    assert len(per_column) == 2 and all(
        "psi, drift at threshold 0.1" in p.title for p in per_column
    )
    wanted = {v.metric_labels["column"] for p in per_column for v in p.values}
    logged = {
        r.metric_value_location.metric.params.get("column")
        for r in snapshot.to_snapshot_model().metric_results.values()
        if r.metric_value_location.metric.params["type"].endswith(":ValueDrift")
    }
    assert logged <= wanted and {"p_buy", "top_pred", "event_bucket"} <= logged


def panel_series(workspace_dir: Path, project_id: object, panel: object) -> dict[str, list]:
    """What the dashboard plots for ``panel``: Evidently's own series query, per legend."""
    import asyncio

    from evidently.ui.service.base import SeriesFilter
    from evidently.ui.service.storage.local.base import InMemoryDataStorage

    filters = [
        SeriesFilter(
            tags=v.tags, metadata=v.metadata, metric=v.metric, metric_labels=v.metric_labels
        )
        for v in panel.values
    ]
    storage = InMemoryDataStorage(path=str(workspace_dir))
    found = asyncio.run(storage.get_data_series(project_id, filters, None, None))
    return {s.params["column"]: s.values for s in found.series}


def test_realised_performance_panel_plots_each_version_and_its_test_score(tmp_path: Path) -> None:
    config = MonitoringConfig(min_rows=300)
    reference, current = make_profile(800, 0), make_profile(800, 2, shift=1.0)
    result = check_drift(reference, current, config)
    drift = build_snapshot(reference, current, result, config, {}, with_quality=False)
    add_snapshot(tmp_path, drift, "drift run")  # drift runs share the project, not the panel
    windows = [("7", 0.30, 0.35), ("7", 0.26, 0.35), ("8", 0.33, None)]
    for day, (version, value, test) in enumerate(windows, start=1):
        scores = [RealisedScore(version, value, test, 150)]
        when = datetime(2026, 1, day, tzinfo=UTC)
        assert add_performance(tmp_path, scores, "recall_at_10", {"since": day}, when)
    assert (
        add_performance(tmp_path, [RealisedScore("9", math.nan)], "recall_at_10", {}, when) is None
    )
    _, project = get_project(tmp_path)
    panel = next(p for p in project.dashboard.model().panels if p.title == PERFORMANCE_TITLE)
    series = panel_series(tmp_path, project.id, panel)
    assert series == {
        "recall_at_10 v7": [0.30, 0.26],
        "recall_at_10 v7 test": [0.35, 0.35],
        "recall_at_10 v8": [None, None, 0.33],
    }
    drift_panel = next(
        p for p in project.dashboard.model().panels if p.title.startswith("Drift per column")
    )
    assert "seq_len" in panel_series(tmp_path, project.id, drift_panel)  # runs of both kinds sort
