"""Realised performance of logged predictions, on a hand-computed seven-record log."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from core.config import FeatureConfig, load_config
from core.hashing import hash_user
from core.predlog import PredictionLog, PredictionRecord
from core.schema import conform
from core.vocab import fit_vocabulary
from eventlogs.loaders import write_events
from interest.cli import app
from monitoring.performance import BundleLabelling, evaluate_log
from monitoring.workspace import PERFORMANCE_TITLE, get_project
from tests.core.test_predlog_record import make_record
from tests.monitoring.test_workspace_dashboard import panel_series

FEATURES = FeatureConfig(horizon="3D", period="day", future_periods=3, top_categories=2)
CUTOFF = datetime.fromisoformat("2024-01-02T00:00:00+00:00")
# Period 1 (Jan 2): A 0.6 / other 0.4; period 2 (Jan 3): A 0.5 / B 0.5; period 3 empty.
TRAJECTORY = ({"A": 0.6, "other": 0.4}, {"B": 0.5, "A": 0.5}, {"B": 1.0})


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
        _event("u2", "2024-01-01 09:00", "A"),  # history only: churned
        _event("u3", "2024-01-04 12:00", "C"),  # no history: the gate has no sample
        _event("u4", "2024-01-10 00:00", "A"),
    ]
    return conform(pd.DataFrame(rows))


def labelling() -> BundleLabelling:
    # Vocabulary A (4 events), B, C, D: V = 6; buckets A, B, other.
    return BundleLabelling(fit_vocabulary(make_events(), FEATURES), FEATURES)


def _record(user: str | None, version: str, top: tuple[str, ...], **values) -> PredictionRecord:
    values.setdefault("cutoff", CUTOFF)
    return make_record(
        f"{user}-{version}",
        logged_at=values["cutoff"],
        user_hash=hash_user(user),
        model_version=version,
        top_categories=top,
        trajectory=values.pop("trajectory", TRAJECTORY),
        **values,
    )


def make_records() -> list[PredictionRecord]:
    later = datetime.fromisoformat("2024-01-09T00:00:00+00:00")
    return [
        _record("u1", "1", ("A", "C", "B", "D"), p_buy=0.8, p_churn=0.2),
        _record("u2", "1", ("B", "A", "C", "D"), p_buy=0.1, p_churn=0.9),
        _record("u3", "2", ("C", "A"), p_buy=0.5, p_churn=0.5),  # no history
        _record("u4", "2", ("A", "B"), p_buy=0.5, p_churn=0.5, cutoff=later),  # horizon open
        _record(None, "2", ("A", "B"), p_buy=0.5, p_churn=0.5),  # anonymous
        _record("u1", "2", ("A",), p_buy=0.5, p_churn=0.5),  # ranks 1 < K categories
        _record("u2", "2", ("C", "D", "A", "B"), p_buy=0.9, p_churn=0.3),
    ]


def make_log() -> pd.DataFrame:
    return pd.DataFrame([r.to_dict() for r in make_records()])


def _js(p: list[float], q: list[float]) -> float:
    m = [(a + b) / 2 for a, b in zip(p, q, strict=True)]

    def kl(a: list[float]) -> float:
        return sum(x * math.log2(x / y) for x, y in zip(a, m, strict=True) if x > 0)

    return (kl(p) + kl(q)) / 2


def test_scores_match_hand_computed_values() -> None:
    result = evaluate_log(make_log(), make_events(), labelling(), k=2)
    assert (result.n_records, result.n_labelled, result.n_incomplete) == (7, 3, 1)
    overall = result.overall()
    # Only u1 did something: the served top 2 (A, C) hold one of its {A, B}.
    assert overall["recall_at_2"] == pytest.approx(0.5)
    assert overall["ndcg_at_2"] == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert overall["buy_auc"] == pytest.approx(0.5)  # u1 (0.8) beats 0.1, not 0.9
    assert overall["churn_auc"] == pytest.approx(1.0)
    # u1's truth: A on Jan 2, B on Jan 3 (buckets A, B, other); Jan 4 empty: skipped.
    expected = (_js([0.6, 0, 0.4], [1, 0, 0]) + _js([0.5, 0.5, 0], [0, 1, 0])) / 2
    assert overall["trajectory_js"] == pytest.approx(expected)
    assert overall["n_samples"] == 3
    assert result.table.loc["1", "recall_at_2"] == pytest.approx(0.5)
    assert result.table.loc["2", "n_samples"] == 1
    assert math.isnan(result.table.loc["2", "recall_at_2"])  # u2 did nothing


def test_a_shadow_model_gets_its_own_row_outside_all() -> None:
    served = make_records()[:2]
    shadow = replace(served[0], model_version="9", shadow=True, top_categories=("B", "A", "C"))
    frame = pd.DataFrame([r.to_dict() for r in [*served, shadow]])
    result = evaluate_log(frame, make_events(), labelling(), k=2)
    assert set(result.table.index) == {"1", "9-shadow", "all"}
    assert result.table.loc["all", "n_samples"] == 2
    assert result.table.loc["all", "recall_at_2"] == pytest.approx(0.5)
    assert result.table.loc["9-shadow", "recall_at_2"] == pytest.approx(1.0)


def test_log_without_user_hash_is_named() -> None:
    with pytest.raises(ValueError, match="user_hash"):
        evaluate_log(make_log().drop(columns="user_hash"), make_events(), labelling(), k=2)


def test_cli_prints_table_and_logs_to_mlflow(state_dir: Path, tmp_path: Path) -> None:
    import mlflow

    config = tmp_path / "c.yaml"
    config.write_text("{}\n")
    paths = load_config(path=config).paths.resolved()
    log = PredictionLog(paths.prediction_log, rotate_rows=3)
    log.write(make_records())
    log.close()
    bundle = tmp_path / "bundle"  # labelling reads only these two bundle files
    bundle.mkdir()
    labelling().vocab.save(bundle / "vocab.json")
    (bundle / "feature_config.json").write_text(FEATURES.model_dump_json())
    events = tmp_path / "events.csv"
    write_events(make_events(), events)
    args = ["monitor", "performance", "--data", str(events), "--format", "canonical"]
    args += ["--bundle", str(bundle), "--k", "2"]
    env = {"INTEREST_CONFIG": str(config)}
    out = CliRunner().invoke(app, [*args, "--json"], env=env)
    assert out.exit_code == 0, out.output
    payload = json.loads(out.stdout)
    assert (payload["n_labelled"], payload["n_incomplete"]) == (3, 1)
    overall = {r["model_version"]: r for r in payload["rows"]}["all"]
    assert overall["recall_at_2"] == pytest.approx(0.5)
    run = mlflow.MlflowClient(paths.tracking_uri).get_run(payload["mlflow_run"])
    assert run.data.metrics["perf_recall_at_2"] == pytest.approx(0.5)
    assert run.data.metrics["perf_v1_buy_auc"] == pytest.approx(1.0)
    _, project = get_project(paths.evidently_workspace)  # the dashboard's realised panel
    panel = next(p for p in project.dashboard.model().panels if p.title == PERFORMANCE_TITLE)
    v1 = next(r for r in payload["rows"] if r["model_version"] == "1")["recall_at_2"]
    assert panel_series(paths.evidently_workspace, project.id, panel) == {"recall_at_2 v1": [v1]}
    text = CliRunner().invoke(app, args, env=env)
    assert text.exit_code == 0 and "recall_at_2" in text.stdout
    rows = {line.split("│")[1].strip(): line for line in text.stdout.splitlines() if "│" in line}
    assert f"{overall['recall_at_2']:.4f}" in rows["recall_at_2"]  # metrics as rows
    assert max(len(line) for line in text.stdout.splitlines()) <= 80

    early = tmp_path / "early.csv"
    write_events(make_events().iloc[:3], early)  # events end before any horizon is over
    none = CliRunner().invoke(app, [*args[:3], str(early), *args[4:]], env=env)
    assert none.exit_code == 4 and "horizon" in none.output
    no_champion = CliRunner().invoke(app, args[:6], env=env)  # no --bundle, no registry
    assert no_champion.exit_code == 1 and "no registered champion" in no_champion.output


def test_an_empty_window_scores_nothing() -> None:
    result = evaluate_log(make_log().iloc[:0], make_events(), labelling())
    assert (result.n_records, result.n_labelled) == (0, 0) and result.table.empty
    assert np.isfinite(result.labels_until.value)
