"""The promotion gate: pure decisions, then logging and alias moves on a real MLflow store."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from training.promotion import (
    PROMOTIONS_EXPERIMENT,
    Candidate,
    apply_decision,
    decide_promotion,
)

METRIC = "recall_at_10"


def cand(label: str, value: float, split: str | None = "s1") -> Candidate:
    return Candidate(label=label, metrics={METRIC: value}, split_hash=split)


def test_first_model_needs_only_the_baseline():
    d = decide_promotion(cand("challenger v1", 0.30), None, cand("baseline", 0.20), METRIC, 0.0)
    assert d.promote
    assert d.champion is None and d.challenger == 0.30 and d.baseline == 0.20
    assert any("no current champion" in r for r in d.reasons)
    assert any("+50.00%" in r for r in d.reasons)


def test_must_beat_baseline():
    d = decide_promotion(cand("challenger v1", 0.19), None, cand("baseline", 0.20), METRIC, 0.0)
    assert not d.promote
    assert any("does not beat" in r and "0.1900" in r and "0.2000" in r for r in d.reasons)


def test_must_beat_champion_by_relative_margin():
    args = (cand("baseline", 0.10), METRIC, 0.05)
    small = decide_promotion(cand("challenger v2", 0.31), cand("champion v1", 0.30), *args)
    big = decide_promotion(cand("challenger v2", 0.33), cand("champion v1", 0.30), *args)
    assert not small.promote and big.promote
    assert big.champion == 0.30


def test_equal_metric_does_not_beat_with_zero_margin():
    d = decide_promotion(cand("c", 0.3), cand("champ", 0.3), cand("b", 0.1), METRIC, 0.0)
    assert not d.promote


def test_lower_is_better_direction():
    d = decide_promotion(cand("c", 0.1), cand("champ", 0.2), cand("b", 0.3), METRIC, 0.0, False)
    assert d.promote
    worse = decide_promotion(
        cand("c", 0.25), cand("champ", 0.2), cand("b", 0.3), METRIC, 0.0, False
    )
    assert not worse.promote


def test_split_mismatch_is_refused_with_reason():
    d = decide_promotion(
        cand("challenger v2", 0.9, "split-a"),
        cand("champion v1", 0.1, "split-b"),
        cand("baseline", 0.1, "split-a"),
        METRIC,
        0.0,
    )
    assert not d.promote
    assert any("split fingerprints differ" in r and "split-b" in r for r in d.reasons)


def test_nan_metric_is_refused():
    d = decide_promotion(cand("challenger v1", math.nan), None, cand("b", 0.1), METRIC, 0.0)
    assert not d.promote
    assert any("no finite recall_at_10" in r for r in d.reasons)
    missing = Candidate("challenger v1", {}, "s1")
    assert not decide_promotion(missing, None, cand("b", 0.1), METRIC, 0.0).promote
    nan_base = decide_promotion(cand("c", 0.5), None, cand("b", math.nan), METRIC, 0.0)
    assert not nan_base.promote
    assert nan_base.to_dict()["baseline"] is None


@pytest.fixture()
def client(empty_db: Path, tmp_path: Path):
    from mlflow import MlflowClient

    db = tmp_path / "mlflow.db"
    shutil.copy(empty_db, db)
    return MlflowClient(tracking_uri=f"sqlite:///{db}", registry_uri=f"sqlite:///{db}")


def aliases(client, name: str) -> dict[str, str]:
    return {a: str(v) for a, v in client.get_registered_model(name).aliases.items()}


def make_versions(client, tmp_path: Path, name: str, n: int) -> list[str]:
    exp = client.create_experiment("train", artifact_location=str(tmp_path / "art"))
    client.create_registered_model(name)
    versions = []
    for _ in range(n):
        run = client.create_run(exp)
        mv = client.create_model_version(name, f"runs:/{run.info.run_id}/model", run.info.run_id)
        versions.append(str(mv.version))
    return versions


def test_apply_refusal_logs_and_keeps_champion(client, tmp_path):
    v1, v2 = make_versions(client, tmp_path, "m", 2)
    client.set_registered_model_alias("m", "champion", v1)
    client.set_registered_model_alias("m", "challenger", v2)
    decision = decide_promotion(cand("c", 0.1), cand("champ", 0.2), cand("b", 0.05), METRIC, 0.0)
    run_id = apply_decision(client, "m", v2, decision, artifact_location=str(tmp_path / "promo"))
    assert aliases(client, "m") == {"champion": v1, "challenger": v2}
    mv = client.get_model_version("m", v2)
    assert mv.tags["promotion.decision"] == "refused"
    assert "does not beat" in mv.tags["promotion.reasons"]
    run = client.get_run(run_id)
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.name == PROMOTIONS_EXPERIMENT
    assert run.data.tags["decision"] == "refused"
    assert run.data.metrics["champion"] == 0.2
    assert run.data.params["primary_metric"] == METRIC
    reasons = Path(client.download_artifacts(run_id, "reasons.txt", str(tmp_path))).read_text()
    assert "does not beat" in reasons


def test_apply_promotion_moves_aliases(client, tmp_path):
    v1, v2 = make_versions(client, tmp_path, "m", 2)
    client.set_registered_model_alias("m", "champion", v1)
    client.set_registered_model_alias("m", "challenger", v2)
    decision = decide_promotion(cand("c", 0.3), cand("champ", 0.2), cand("b", 0.05), METRIC, 0.0)
    apply_decision(client, "m", v2, decision, artifact_location=str(tmp_path / "promo"))
    assert aliases(client, "m") == {"champion": v2, "previous": v1}
    assert client.get_model_version("m", v2).tags["promotion.decision"] == "promoted"
