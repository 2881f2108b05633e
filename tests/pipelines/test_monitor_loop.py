"""The scheduled monitoring pass: lock, ledger, cooldown and failure safety.

Real MLflow (SQLite) registry and real Evidently; only the retraining step is replaced by
small functions, so every branch of ``pipelines.monitor.run_monitor`` runs in seconds.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from core.config import ProjectConfig, load_config
from modelkit.registry import registered_champion
from monitoring.loop import (
    LEDGER_FILE,
    LOCK_FILE,
    Ledger,
    LockHeldError,
    aligned_window,
    cooldown_left,
    monitoring_dir,
    run_lock,
)
from pipelines.monitor import RetrainRequest, run_monitor

sys.path.insert(0, str(Path(__file__).parents[1] / "monitoring"))
from test_drift import make_profile  # noqa: E402

START = datetime(2024, 3, 1, tzinfo=UTC)
END = START + timedelta(days=1)
NOW = END + timedelta(hours=1)
REQUEST = RetrainRequest(data=Path("events.csv"), format="canonical", trials=1, epochs=1)


def register_fake_champion(config: ProjectConfig, reference: pd.DataFrame) -> str:
    """A registered champion whose run holds ``bundle/reference.parquet`` (no model needed)."""
    from mlflow import MlflowClient

    uri = config.paths.resolved().tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.create_experiment("fake", artifact_location=config.paths.resolved().artifact_root)
    run = client.create_run(exp)
    folder = Path(config.paths.resolved().state_dir) / "upload" / "bundle"
    folder.mkdir(parents=True)
    reference.to_parquet(folder / "reference.parquet")
    client.log_artifacts(run.info.run_id, str(folder), "bundle")
    name = config.registry.model_name
    client.create_registered_model(name)
    version = client.create_model_version(name, f"runs:/{run.info.run_id}/model", run.info.run_id)
    client.set_registered_model_alias(name, "champion", version.version)
    return str(version.version)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """One tracking store with a fake champion, shared by the module."""
    state = tmp_path_factory.mktemp("registry")
    config = load_config(overrides={"paths": {"state_dir": str(state)}}, env={})
    register_fake_champion(config, make_profile(1500, 0))
    return config.paths.resolved().tracking_uri, state


@pytest.fixture()
def config(tmp_path: Path, registry: tuple[str, Path]) -> ProjectConfig:
    uri, state = registry
    return load_config(
        overrides={
            "paths": {
                "state_dir": str(tmp_path),
                "tracking_uri": uri,
                "artifact_root": str(state / "mlartifacts"),
            },
            "monitoring": {
                "stattest": "psi",
                "stattest_threshold": 0.1,
                "drift_share": 0.05,
                "min_rows": 300,
                "cooldown": "6h",
            },
        },
        env={},
    )


def write_window(config: ProjectConfig, frame: pd.DataFrame, at: datetime) -> None:
    log_dir = config.paths.resolved().prediction_log
    log_dir.mkdir(parents=True, exist_ok=True)
    frame = frame.assign(logged_at=at.isoformat())
    lines = [json.dumps(r) for r in frame.to_dict(orient="records")]
    path = log_dir / f"predictions-{at:%Y%m%dT%H%M%S}-1.jsonl"
    path.write_text("\n".join(lines) + "\n")


@dataclass
class Gated:
    """What the loop reads of a training result: the version and the gate's decision."""

    version: str
    promoted: bool
    decision: SimpleNamespace


class Recorder:
    """A retraining step that records its calls and answers like the gate would."""

    def __init__(self, promoted: bool = True, error: Exception | None = None) -> None:
        self.calls: list[tuple[RetrainRequest, str]] = []
        self.promoted, self.error = promoted, error

    def __call__(self, config: ProjectConfig, request: RetrainRequest, study: str) -> Gated:
        self.calls.append((request, study))
        if self.error is not None:
            raise self.error
        reason = "challenger beats champion" if self.promoted else "does not beat champion"
        return Gated("9", self.promoted, SimpleNamespace(reasons=[reason]))


def test_lock_refuses_a_second_holder(tmp_path: Path) -> None:
    path = tmp_path / LOCK_FILE
    with (
        run_lock(path),
        pytest.raises(LockHeldError, match="another monitoring run holds the lock"),
        run_lock(path),
    ):
        pass
    with run_lock(path):  # released on exit
        pass


def test_ledger_round_trip_and_corrupt_file(tmp_path: Path) -> None:
    ledger = Ledger.load(tmp_path / LEDGER_FILE)
    assert not ledger.is_handled("w")
    ledger.record("w", {"status": "ok"}, retrained_at=NOW)
    again = Ledger.load(tmp_path / LEDGER_FILE)
    assert again.is_handled("w") and again.last_retrain == pd.Timestamp(NOW).isoformat()
    (tmp_path / LEDGER_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="ledger"):
        Ledger.load(tmp_path / LEDGER_FILE)


def test_cooldown_and_aligned_window(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / LEDGER_FILE, {}, None)
    assert cooldown_left(ledger, "1h", NOW) is None
    ledger.last_retrain = (NOW - timedelta(minutes=20)).isoformat()
    assert cooldown_left(ledger, "1h", NOW) == pd.Timedelta("40min")
    assert cooldown_left(ledger, "10min", NOW) is None
    start, end = aligned_window(datetime(2024, 3, 2, 7, 30, tzinfo=UTC), "24h")
    assert (start, end) == (START, END)
    with pytest.raises(ValueError, match="--window"):
        aligned_window(NOW, "soon")


def test_no_drift_records_the_window_and_skips_it_next_time(config: ProjectConfig) -> None:
    write_window(config, make_profile(1500, 1), START + timedelta(hours=2))
    retrain = Recorder()
    first = run_monitor(config, START, END, NOW, REQUEST, retrain)
    assert first.status == "ok" and retrain.calls == []
    assert first.check is not None and first.check.report.json.is_file()
    second = run_monitor(config, START, END, NOW, REQUEST, retrain)
    assert second.status == "already_handled" and retrain.calls == []


def test_drift_retrains_then_cooldown_holds(config: ProjectConfig) -> None:
    write_window(config, make_profile(1500, 2, shift=1.0), START + timedelta(hours=2))
    write_window(config, make_profile(1500, 3, shift=1.0), END + timedelta(hours=2))
    retrain = Recorder(promoted=False)
    out = run_monitor(config, START, END, NOW, REQUEST, retrain)
    assert out.status == "refused" and len(retrain.calls) == 1
    assert retrain.calls[0][1].startswith("monitor-")
    ledger = Ledger.load(monitoring_dir(config) / LEDGER_FILE)
    assert ledger.windows[out.key]["reasons"] == ["does not beat champion"]
    later = NOW + timedelta(hours=1)
    blocked = run_monitor(config, END, END + timedelta(days=1), later, REQUEST, retrain)
    assert blocked.status == "cooldown" and len(retrain.calls) == 1
    assert not Ledger.load(monitoring_dir(config) / LEDGER_FILE).is_handled(blocked.key)
    free = run_monitor(
        config, END, END + timedelta(days=1), later + timedelta(hours=6), REQUEST, retrain
    )
    assert free.status == "refused" and len(retrain.calls) == 2


def test_failed_retrain_leaves_champion_and_ledger_untouched(config: ProjectConfig) -> None:
    write_window(config, make_profile(1500, 4, shift=1.0), START + timedelta(hours=2))
    champion = registered_champion(config)
    broken = Recorder(error=RuntimeError("disk full during refit"))
    with pytest.raises(RuntimeError, match="disk full"):
        run_monitor(config, START, END, NOW, REQUEST, broken)
    assert registered_champion(config) == champion
    ledger = Ledger.load(monitoring_dir(config) / LEDGER_FILE)
    assert ledger.windows == {} and ledger.last_retrain is None
    retried = run_monitor(config, START, END, NOW, REQUEST, Recorder(promoted=True))
    assert retried.status == "promoted"  # the window was retried, not lost


def test_small_window_and_missing_data(config: ProjectConfig) -> None:
    write_window(config, make_profile(50, 5, shift=1.0), START + timedelta(hours=2))
    retrain = Recorder()
    out = run_monitor(config, START, END, NOW, REQUEST, retrain)
    assert out.status == "not_enough_data" and retrain.calls == []
    write_window(config, make_profile(1500, 6, shift=1.0), END + timedelta(hours=2))
    out = run_monitor(config, END, END + timedelta(days=1), NOW, None, retrain)
    assert out.status == "no_data" and "--data" in out.message and retrain.calls == []
