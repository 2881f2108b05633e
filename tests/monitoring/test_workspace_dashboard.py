"""The Evidently dashboard: per-column drift panels whose series match the snapshots' metrics."""

from __future__ import annotations

from pathlib import Path

from core.config import MonitoringConfig
from monitoring.drift import check_drift
from monitoring.snapshot import build_snapshot
from monitoring.workspace import add_snapshot, get_project
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
