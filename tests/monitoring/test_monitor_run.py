"""``interest monitor run`` end to end: a real champion, real Evidently, real retraining.

One tiny champion (1 trial, 1 epoch, 120 users) is trained once for the module; the
retraining is the real training pipeline (warm start, study, refit, register, gate).
"""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from typer.testing import CliRunner

from core.config import ProjectConfig, load_config
from interest.cli import app
from modelkit.registry import registered_champion, registry_client
from monitoring.loop import LEDGER_FILE, LOCK_FILE, Ledger, monitoring_dir, run_lock
from synthlogs.generator import SynthConfig, generate_events

pytestmark = pytest.mark.slow

CONFIG = """
train: {trials: 1, epochs: 1, batch_size: 128, pretrain_epochs: 0}
features: {max_events: 20, top_categories: 8, n_periods: 5}
split: {n_train_cutoffs: 2}
monitoring: {stattest: psi, stattest_threshold: 0.1, drift_share: 0.05, min_rows: 100,
             cooldown: 0s, retrain_trials: 1}
registry: {min_improvement: %s}
"""
DAY = datetime(2024, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """State folder, config file (a gate no challenger can pass) and the trained champion."""
    from core.dataset import prepare_dataset
    from training.registry import promote_version
    from training.tune import run_study

    root = tmp_path_factory.mktemp("monitor-run")
    config_file = root / "config.yaml"
    config_file.write_text(CONFIG % "100.0")
    variables = {"INTEREST_STATE_DIR": str(root / "state"), "INTEREST_CONFIG": str(config_file)}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in variables.items():
            patch.setenv(key, value)
        config = load_config()
        events = generate_events(SynthConfig(n_users=120, n_days=12, seed=3)).events
        data = prepare_dataset(events, config, "champion-data")
        outcome = run_study(config, events, data, source="synthetic", show_progress=False)
        if not outcome.decision.promote:  # a 1-epoch model rarely beats the baselines
            promote_version(config, outcome.version, force=True)
        recent = generate_events(
            SynthConfig(n_users=120, n_days=12, seed=4, shift_at="2024-01-07", shift_fraction=0.8)
        ).events
        recent_path = root / "recent.parquet"
        from eventlogs.loaders import write_events

        write_events(recent, recent_path)
        yield {"config": config, "env": variables, "recent": recent_path, "root": root}


def _log_window(config: ProjectConfig, start: datetime, shift: bool) -> list[str]:
    """Log the champion's own reference profile (shuffled), or 300 rows of it shifted.

    Unshifted, every reference row is logged once: a bootstrap resample of a ~200-row profile
    can itself trip one of 14 column tests, which is noise, not drift.
    """
    from monitoring.reference import load_reference, resolve_reference

    ref = load_reference(resolve_reference(config))
    seed = int(start.timestamp()) % 1000
    rows = (
        ref.sample(300, replace=True, random_state=seed)
        if shift
        else ref.sample(frac=1.0, random_state=seed)
    )
    if shift:  # every user now predicted and seen in one category, buying far more
        rows = rows.assign(
            top_category="g09-c11", top_pred="g09-c11", p_buy=np.minimum(1, rows["p_buy"] * 5 + 0.3)
        )
    rows = rows.assign(logged_at=(start + timedelta(hours=1)).isoformat())
    folder = config.paths.resolved().prediction_log
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"predictions-{start:%Y%m%dT%H%M%S}-1.jsonl"
    records = rows.to_dict(orient="records")
    path.write_text("\n".join(json.dumps(r, default=_plain) for r in records))
    window = ["--since", start.isoformat(), "--until", (start + timedelta(days=1)).isoformat()]
    return window


def _plain(value: object) -> object:
    """JSON form of profile values: arrays (bucket shares) as lists, times as strings."""
    return value.tolist() if isinstance(value, np.ndarray) else str(value)


def _run(env: dict, args: list[str]) -> object:
    return CliRunner().invoke(app, ["monitor", "run", *args], env=env["env"])


def _ledger(config: ProjectConfig) -> Ledger:
    return Ledger.load(monitoring_dir(config) / LEDGER_FILE)


def test_reference_distribution_is_no_drift(env: dict) -> None:
    window = _log_window(env["config"], DAY, shift=False)
    out = _run(env, [*window, "--data", str(env["recent"]), "--format", "canonical"])
    assert out.exit_code == 0, out.output
    statuses = [e["status"] for e in _ledger(env["config"]).windows.values()]
    assert statuses == ["ok"]
    again = _run(env, window)
    assert again.exit_code == 6 and "already handled" in again.output


def test_lock_held_refuses_second_scheduler(env: dict) -> None:
    window = _log_window(env["config"], DAY + timedelta(days=1), shift=True)
    with run_lock(monitoring_dir(env["config"]) / LOCK_FILE):
        out = _run(env, window)
    assert out.exit_code == 7 and "another monitoring run holds the lock" in out.output


def test_corrupt_data_fails_and_leaves_champion(env: dict) -> None:
    config = env["config"]
    champion = registered_champion(config)
    bad = env["root"] / "corrupt.csv"
    bad.write_text("user_id,item_id\n1,2\n\x00\x00garbage")
    window = _log_window(config, DAY + timedelta(days=2), shift=True)
    out = _run(env, [*window, "--data", str(bad), "--format", "canonical"])
    assert out.exit_code == 1, out.output
    assert "champion untouched" in out.output
    assert registered_champion(config) == champion
    assert all(e["status"] != "refused" for e in _ledger(config).windows.values())


def test_drift_retrains_and_the_gate_refuses_a_weaker_challenger(env: dict) -> None:
    config = env["config"]
    champion = registered_champion(config)
    window = _log_window(config, DAY + timedelta(days=3), shift=True)
    out = _run(env, [*window, "--data", str(env["recent"]), "--format", "canonical"])
    assert out.exit_code == 5, out.output
    assert "refused by the gate" in out.output and "does not beat" in out.output
    assert registered_champion(config) == champion
    entry = [e for e in _ledger(config).windows.values() if e["status"] == "refused"][0]
    client = registry_client(config)
    version = client.get_model_version(config.registry.model_name, entry["version"])
    assert version.tags["promotion.decision"] == "refused"
    assert entry["study"].startswith("monitor-")


def test_promotion_prints_the_redeploy_command(env: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    import pipelines.monitor as monitor

    def promoted(config: ProjectConfig, request: monitor.RetrainRequest, study: str) -> object:
        decision = SimpleNamespace(reasons=["challenger v7 beats champion"])
        return SimpleNamespace(version="7", promoted=True, decision=decision)

    monkeypatch.setattr(monitor, "retrain", promoted)
    window = _log_window(env["config"], DAY + timedelta(days=4), shift=True)
    out = _run(env, [*window, "--data", str(env["recent"]), "--format", "canonical"])
    assert out.exit_code == 3, out.output
    assert "interest deploy --url URL" in out.output
