"""The Evidently report of a decided check names version, window, reference and decision."""

from __future__ import annotations

import json
from pathlib import Path

from core.config import MonitoringConfig
from monitoring.drift import check_drift
from monitoring.report import save_report
from monitoring.snapshot import build_snapshot
from tests.monitoring.test_drift import make_profile

CONTEXT = {
    "model_version": "7",
    "since": "2024-01-02T00:00:00+00:00",
    "until": "2024-01-03T00:00:00+00:00",
    "reference": "/refs/v7/bundle/reference.parquet",
}


def test_report_files_name_the_check(tmp_path: Path) -> None:
    config = MonitoringConfig(min_rows=300)
    reference, current = make_profile(1500, 0), make_profile(1500, 2, shift=1.0)
    result = check_drift(reference, current, config)
    result.snapshot = build_snapshot(reference, current, result, config, CONTEXT)
    files = save_report(result, tmp_path, "20240103T000000Z", CONTEXT)
    payload = json.loads(files.json.read_text())
    summary = payload["summary"]
    assert summary["model_version"] == "7" and summary["decision"] == "drift"
    assert summary["window"] == f"{CONTEXT['since']} .. {CONTEXT['until']}"
    assert summary["reference"] == CONTEXT["reference"]
    assert summary["drifted_columns"].startswith(result.drifted_columns[0].column)
    assert result.snapshot.dump_dict()["metadata"]["decision"] == "drift"  # workspace run
    assert files.html is not None
    page = files.html.read_text()
    header = page[: page.index("Decision tests")]
    for text in ("model v7", CONTEXT["since"], CONTEXT["until"], CONTEXT["reference"], "drift"):
        assert text in header
    assert "event_bucket" in page  # the bucket shares are shown as one drawn bucket per user


def test_not_enough_data_has_no_snapshot(tmp_path: Path) -> None:
    config = MonitoringConfig(min_rows=300)
    reference, current = make_profile(1500, 0), make_profile(20, 1)
    result = check_drift(reference, current, config)
    assert build_snapshot(reference, current, result, config, CONTEXT) is None
    files = save_report(result, tmp_path, "s", CONTEXT)
    assert files.html is None
    assert json.loads(files.json.read_text())["summary"]["decision"] == "not_enough_data"
