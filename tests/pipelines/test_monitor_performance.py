"""Retrain policy: a realised-performance drop without drift triggers retraining and says why.

Real components: a fake champion in a real SQLite MLflow registry (its bundle holds the
reference profile, vocabulary and feature config; its run stores per-sample test scores),
a real prediction log and event log, the real drift check and performance scoring; only
the retraining step is a small function.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.config import FeatureConfig, MonitoringConfig, ProjectConfig, load_config
from core.hashing import hash_user
from core.schema import conform
from core.vocab import fit_vocabulary
from evaluation.samples import SampleScores, write_samples
from eventlogs.loaders import write_events
from monitoring.loop import LEDGER_FILE, Ledger, monitoring_dir
from monitoring.policy import check_performance
from monitoring.workspace import PERFORMANCE_TITLE, TEST_SUFFIX, get_project
from pipelines.monitor import RetrainRequest, run_monitor
from tests.core.test_predlog_record import make_record
from tests.monitoring.test_drift import make_profile
from tests.monitoring.test_workspace_dashboard import panel_series
from tests.pipelines.test_monitor_loop import Recorder

START = datetime(2024, 3, 1, tzinfo=UTC)
END = START + timedelta(days=1)
NOW = END + timedelta(hours=1)
CUTOFF = START + timedelta(hours=12)
FEATURES = FeatureConfig(horizon="3D", period="day", future_periods=3, top_categories=2)
CATS = [f"c{i:02d}" for i in range(14)]  # c13 is what every user does next
N_USERS = 400


def make_events() -> pd.DataFrame:
    rows = []
    for i in range(N_USERS):
        user = f"u{i:03d}"
        rows.append((user, CATS[i % 12], START + timedelta(hours=1)))  # history
        rows.append((user, "c13", START + timedelta(hours=20)))  # the outcome
    rows.append(("u000", "c00", START + timedelta(days=5)))  # the log covers the horizon
    frame = pd.DataFrame(rows, columns=["user_id", "category_id", "timestamp"])
    return conform(frame.assign(item_id="i", behavior="view"))


def scores(n: int, recall: float, seed: int) -> SampleScores:
    rng = np.random.default_rng(seed)
    values = (rng.random(n) < recall).astype(np.float64)
    cutoff = np.full(n, np.datetime64("2024-02-20T00:00:00", "ns"))
    users = np.array([f"r{i}" for i in range(n)], dtype=object)
    return SampleScores(users, cutoff, {"recall_at_10": values})


def register_champion(config: ProjectConfig, events: pd.DataFrame) -> str:
    """A champion whose bundle labels the log and whose run stored test recall ~0.6."""
    from mlflow import MlflowClient

    paths = config.paths.resolved()
    client = MlflowClient(tracking_uri=paths.tracking_uri, registry_uri=paths.tracking_uri)
    run = client.create_run(client.create_experiment("fake", artifact_location=paths.artifact_root))
    folder = paths.state_dir / "upload"
    (folder / "bundle").mkdir(parents=True)
    make_profile(1500, 0).to_parquet(folder / "bundle" / "reference.parquet")
    fit_vocabulary(events, FEATURES).save(folder / "bundle" / "vocab.json")
    (folder / "bundle" / "feature_config.json").write_text(FEATURES.model_dump_json())
    write_samples(folder / "evaluation" / "samples.parquet", {"model": scores(300, 0.6, 0)})
    client.log_artifacts(run.info.run_id, str(folder))
    name = config.registry.model_name
    client.create_registered_model(name)
    version = client.create_model_version(name, f"runs:/{run.info.run_id}/model", run.info.run_id)
    client.set_registered_model_alias(name, "champion", version.version)
    return str(version.version)


def write_log(config: ProjectConfig, version: str) -> None:
    """One served record per user, profile as the reference's, a ranking that misses c13."""
    profile = make_profile(N_USERS, 1)
    trajectory = ({"c13": 0.5, "c00": 0.2, "other": 0.3},) * FEATURES.future_periods
    lines = []
    for i, row in enumerate(profile.to_dict(orient="records")):
        record = make_record(
            f"r{i}",
            logged_at=CUTOFF,
            cutoff=CUTOFF,
            user_hash=hash_user(f"u{i:03d}"),
            model_version=version,
            profile={k: v for k, v in row.items() if k not in ("p_buy", "p_churn", "top_pred")},
            p_buy=row["p_buy"],
            p_churn=row["p_churn"],
            top_pred=row["top_pred"],
            top_categories=tuple(CATS[:10]),
            trajectory=trajectory,
        )
        lines.append(record.to_json())
    log_dir = config.paths.resolved().prediction_log
    log_dir.mkdir(parents=True)
    (log_dir / f"predictions-{CUTOFF:%Y%m%dT%H%M%S}-1.jsonl").write_text("\n".join(lines) + "\n")


@pytest.fixture()
def config(tmp_path: Path) -> ProjectConfig:
    monitoring = {"min_rows": 300, "cooldown": "6h", "perf_min_users": 100}
    return load_config(
        overrides={"paths": {"state_dir": str(tmp_path)}, "monitoring": monitoring}, env={}
    )


def test_performance_drop_without_drift_retrains_and_says_why(
    config: ProjectConfig, tmp_path: Path
) -> None:
    events = make_events()
    version = register_champion(config, events)
    write_log(config, version)
    write_events(events, tmp_path / "events.csv")
    request = RetrainRequest(data=tmp_path / "events.csv", format="canonical", trials=1)
    retrain = Recorder(promoted=False)
    out = run_monitor(config, START, END, NOW, request, retrain)
    assert out.check is not None and not out.check.drift.should_retrain  # no drift
    assert out.performance is not None and out.performance.status == "drop"
    assert out.performance.n_users == N_USERS and out.performance.window_mean == 0.0
    assert out.evidence == ["performance"] and len(retrain.calls) == 1
    assert out.status == "refused" and out.message.startswith("retrained on performance")
    entry = Ledger.load(monitoring_dir(config) / LEDGER_FILE).windows[out.key]
    assert entry["evidence"] == ["performance"] and entry["performance"]["status"] == "drop"
    from mlflow import MlflowClient

    run = MlflowClient(config.paths.resolved().tracking_uri).get_run(out.mlflow_run)
    assert run.data.tags["evidence"] == "performance" and run.data.tags["status"] == "refused"
    assert json.dumps(out.performance.to_dict())
    # the Evidently dashboard's realised-performance panel got the window's point
    workspace_dir = config.paths.resolved().evidently_workspace
    _, project = get_project(workspace_dir)
    panel = next(p for p in project.dashboard.model().panels if p.title == PERFORMANCE_TITLE)
    series = panel_series(workspace_dir, project.id, panel)
    assert series[f"recall_at_10 v{version}"] == [0.0]
    test_mean = series[f"recall_at_10 v{version}{TEST_SUFFIX}"][0]
    assert test_mean == pytest.approx(out.performance.reference_mean) and test_mean > 0


def test_interval_decides_with_tolerance_and_enough_users() -> None:
    rules = MonitoringConfig(perf_min_users=50, perf_tolerance=0.05)
    reference = scores(400, 0.6, 1)
    same = check_performance(scores(400, 0.6, 2), reference, rules)
    assert same.status == "ok" and same.lower < 0 < same.upper
    small_drop = check_performance(scores(400, 0.58, 3), reference, rules)
    assert small_drop.status == "ok"  # within tolerance or not confident
    big_drop = check_performance(scores(400, 0.3, 4), reference, rules)
    assert big_drop.fired and big_drop.upper < -0.05 and "drop beyond" in big_drop.reason
    assert check_performance(scores(20, 0.0, 5), reference, rules).status == "not_enough_labels"
    assert check_performance(scores(400, 0.0, 5), None, rules).status == "no_reference"


def test_performance_per_segment_matches_records(config: ProjectConfig, tmp_path: Path) -> None:
    events = make_events()
    version = register_champion(config, events)
    write_log(config, version)
    from monitoring.policy import judge_window
    from monitoring.reference import champion_bundle

    check = judge_window(config, START, END, lambda: events, version, champion_bundle(config)[0])
    assert check.segments and "lowest segment" in check.reason
    per_kind = {}
    for name, figures in check.segments.items():
        per_kind.setdefault(name.split("=")[0], 0.0)
        per_kind[name.split("=")[0]] += figures["n"]
        assert figures["mean"] == 0.0
    assert per_kind == {"user": N_USERS, "activity": N_USERS, "category": N_USERS}
