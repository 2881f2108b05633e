"""``interest monitor drift`` end to end: log window, reports, Evidently workspace, MLflow."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.config import load_config
from interest.cli import app
from monitoring.workspace import list_runs

sys.path.insert(0, str(Path(__file__).parent))
from test_drift import make_profile  # noqa: E402


@pytest.fixture(autouse=True)
def _thresholds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pin thresholds so the test does not depend on the shipped defaults."""
    config = tmp_path / "monitoring.yaml"
    config.write_text(
        "monitoring: {stattest: psi, stattest_threshold: 0.1, drift_share: 0.05, min_rows: 300}\n"
    )
    monkeypatch.setenv("INTEREST_CONFIG", str(config))


def _setup(state: Path, n_current: int, shift: float) -> Path:
    reference = state / "ref" / "reference.parquet"
    reference.parent.mkdir(parents=True)
    make_profile(3000, 0).to_parquet(reference)
    log_dir = load_config().paths.resolved().prediction_log
    log_dir.mkdir(parents=True)
    current = make_profile(n_current, 1, shift=shift)
    current["logged_at"] = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    lines = [json.dumps(r) for r in current.to_dict(orient="records")]
    (log_dir / "predictions-20200101T000000-7.jsonl").write_text("\n".join(lines) + '\n{"logg')
    return reference.parent


def test_drift_writes_reports_workspace_and_mlflow(state_dir: Path) -> None:
    import mlflow

    bundle = _setup(state_dir, 3000, shift=1.0)
    out = CliRunner().invoke(app, ["monitor", "drift", "--reference", str(bundle), "--json"])
    assert out.exit_code == 10, out.output  # interest.exit_codes: drift
    summary = json.loads(out.stdout)
    assert summary["status"] == "drift" and summary["skipped_lines"] == 1
    assert Path(summary["report_html"]).is_file()
    saved = json.loads(Path(summary["report_json"]).read_text())
    assert saved["result"]["should_retrain"] is True
    paths = load_config().paths.resolved()
    assert list_runs(paths.evidently_workspace) == [summary["evidently_run"]]
    run = mlflow.MlflowClient(paths.tracking_uri).get_run(summary["mlflow_run"])
    assert run.data.params["status"] == "drift"
    assert run.data.metrics["n_current"] == 3000


@pytest.mark.parametrize(("n_current", "shift", "code"), [(3000, 0.0, 0), (20, 0.0, 4)])
def test_exit_codes(state_dir: Path, n_current: int, shift: float, code: int) -> None:
    bundle = _setup(state_dir, n_current, shift)
    out = CliRunner().invoke(
        app, ["monitor", "drift", "--reference", str(bundle), "--window", "2h"]
    )
    assert out.exit_code == code, out.output


def test_errors_exit_1(state_dir: Path) -> None:
    out = CliRunner().invoke(app, ["monitor", "drift"])
    assert out.exit_code == 1 and "--reference" in out.output
    out = CliRunner().invoke(app, ["monitor", "drift", "--reference", str(state_dir / "nope")])
    assert out.exit_code == 1 and "does not exist" in out.output
