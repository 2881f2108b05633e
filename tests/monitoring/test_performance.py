"""Realised performance of logged predictions, on a hand-computed five-record log."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from core.config import FeatureConfig, load_config
from core.hashing import hash_user
from core.schema import conform
from eventlogs.loaders import write_events
from interest.cli import app
from monitoring.performance import evaluate_log

FEATURES = FeatureConfig(horizon="3D", period="day", future_periods=3)


def _event(user: str, when: str, cat: str, behavior: str = "view") -> dict:
    return {
        "user_id": user,
        "item_id": f"i-{cat}",
        "category_id": cat,
        "behavior": behavior,
        "timestamp": pd.Timestamp(when, tz="UTC"),
    }


def make_events() -> pd.DataFrame:
    rows = [
        _event("u1", "2024-01-01 09:00", "A"),  # history: not ground truth
        _event("u1", "2024-01-02 10:00", "A"),
        _event("u1", "2024-01-03 10:00", "B", "buy"),
        _event("u1", "2024-01-05 00:00", "D"),  # at cutoff + horizon: outside
        _event("u2", "2024-01-01 09:00", "A"),
        _event("u3", "2024-01-04 12:00", "C"),
        _event("u4", "2024-01-10 00:00", "A"),
    ]
    return conform(pd.DataFrame(rows))


def _record(user: str | None, version: str, p_buy: float, p_churn: float, **extra) -> dict:
    cutoff = extra.pop("cutoff", "2024-01-02T00:00:00+00:00")
    return {
        "logged_at": cutoff,
        "user_hash": hash_user(user),
        "model_version": version,
        "cutoff": cutoff,
        "p_buy": p_buy,
        "p_churn": p_churn,
        **extra,
    }


def make_log() -> pd.DataFrame:
    trajectory = [{"A": 0.6, "other": 0.4}, {"B": 0.5, "A": 0.5}, {"C": 1.0}]
    records = [
        _record("u1", "1", 0.8, 0.2, top_categories=["A", "C"], trajectory=trajectory),
        _record("u2", "1", 0.1, 0.9, top_categories=["A"]),
        _record("u3", "2", 0.9, 0.3, top_categories=["C", "A"]),
        _record("u4", "2", 0.5, 0.5, cutoff="2024-01-09T00:00:00+00:00"),  # horizon not over
        _record(None, "2", 0.5, 0.5),  # anonymous: cannot be joined
    ]
    return pd.DataFrame(records)


def test_scores_match_hand_computed_values() -> None:
    result = evaluate_log(make_log(), make_events(), FEATURES, k=2)
    assert (result.n_records, result.n_labelled) == (5, 3)
    overall = result.overall()
    assert overall["recall_at_k"] == pytest.approx((0.5 + 1.0) / 2)  # u2 did nothing: skipped
    assert overall["buy_auc"] == pytest.approx(0.5)  # u1 (0.8) beats u2 (0.1), not u3 (0.9)
    assert overall["churn_auc"] == pytest.approx(1.0)
    # Period 1: A realised 1.0 vs 0.6; period 2: B 1.0 vs 0.5, A 0.0 vs 0.5; period 3 empty.
    assert overall["trajectory_mae"] == pytest.approx((0.4 + 0.5 + 0.5) / 3)
    assert result.table.loc["1", "recall_at_k"] == pytest.approx(0.5)
    assert result.table.loc["2", "n_labelled"] == 1
    assert math.isnan(result.table.loc["2", "trajectory_mae"])


def test_log_without_user_hash_is_named() -> None:
    with pytest.raises(ValueError, match="user_hash"):
        evaluate_log(make_log().drop(columns="user_hash"), make_events(), FEATURES, k=2)


def test_cli_prints_table_and_logs_to_mlflow(state_dir: Path, tmp_path: Path) -> None:
    import mlflow

    config = tmp_path / "c.yaml"
    config.write_text("features: {horizon: 3D, period: day, future_periods: 3}\n")
    paths = load_config(path=config).paths.resolved()
    paths.prediction_log.mkdir(parents=True)
    lines = [json.dumps(r) for r in make_log().to_dict(orient="records")]
    (paths.prediction_log / "predictions-20240102T000000-1.jsonl").write_text("\n".join(lines))
    events = tmp_path / "events.csv"
    write_events(make_events(), events)
    args = ["monitor", "performance", "--data", str(events), "--format", "canonical", "--k", "2"]
    env = {"INTEREST_CONFIG": str(config)}
    out = CliRunner().invoke(app, [*args, "--json"], env=env)
    assert out.exit_code == 0, out.output
    payload = json.loads(out.stdout)
    overall = {r["model_version"]: r for r in payload["rows"]}["all"]
    assert overall["recall_at_k"] == pytest.approx(0.75)
    run = mlflow.MlflowClient(paths.tracking_uri).get_run(payload["mlflow_run"])
    assert run.data.metrics["perf_recall_at_k"] == pytest.approx(0.75)
    assert run.data.metrics["perf_v1_recall_at_k"] == pytest.approx(0.5)
    text = CliRunner().invoke(app, args, env=env)
    assert text.exit_code == 0 and "recall_at_2" in text.stdout

    early = tmp_path / "early.csv"
    write_events(make_events().iloc[:3], early)  # events end before any horizon is over
    none = CliRunner().invoke(app, [*args[:3], str(early), *args[4:]], env=env)
    assert none.exit_code == 4 and "horizon" in none.output
