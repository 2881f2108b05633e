"""The promotion gate: pure decisions on per-sample scores, then logging and alias moves."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.config import RegistryConfig
from evaluation.samples import SampleScores
from training.aliases import alias_history
from training.promotion import (
    PROMOTIONS_EXPERIMENT,
    Candidate,
    GateRule,
    apply_decision,
    decide_promotion,
)

METRIC = "recall_at_10"
SPLIT = ("repeat_recall_at_10", "explore_recall_at_10")


def recall(n_users: int, mean: float, seed: int, sd: float = 0.3) -> np.ndarray:
    """Per-user recall@10 spread like real logs (many users near 0 or 1)."""
    rng = np.random.default_rng(seed)
    return np.clip(mean + rng.normal(0.0, sd, n_users), 0.0, 1.0)


def scores(values: np.ndarray, explore: float = 0.1) -> SampleScores:
    n = len(values)
    return SampleScores(
        np.array([f"u{i}" for i in range(n)], dtype=object),
        np.full(n, np.datetime64("2024-01-01"), dtype="datetime64[ns]"),
        {METRIC: values, SPLIT[0]: values, SPLIT[1]: np.full(n, explore)},
    )


def cand(
    label: str, values: np.ndarray | None, split: str = "s1", explore: float = 0.1, **metrics
) -> Candidate:
    samples = None if values is None else scores(values, explore)
    point = {METRIC: float(values.mean())} if values is not None else {}
    return Candidate(label, {**point, **metrics}, split, samples=samples)


def test_first_model_needs_only_the_baseline():
    base = recall(400, 0.3, seed=0)
    d = decide_promotion(cand("challenger v1", base * 1.5), None, [cand("baseline 'pop'", base)])
    assert d.promote and d.champion is None and d.n_users == 400
    assert any("no current champion" in r for r in d.reasons)
    assert any("+50.00% vs baseline 'pop', 95% CI [+50.0%, +50.0%]" in r for r in d.reasons)
    opponent = d.to_dict()["opponents"]["baseline"]
    assert opponent["passed"] and opponent["interval"]["lower"] == pytest.approx(0.5)


def test_small_gain_on_a_few_hundred_users_is_refused_with_its_interval():
    champion = recall(300, 0.38, seed=1)
    noise = np.random.default_rng(2).normal(0.0, 0.15, 300)
    challenger = champion * 1.005 + noise - noise.mean()
    d = decide_promotion(
        cand("challenger v2", challenger),
        cand("champion v1", champion),
        [cand("baseline 'decay'", champion * 0.5)],
    )
    assert not d.promote
    pattern = (
        r"recall_at_10 \+0\.50% vs champion v1, 95% CI \[-\d+\.\d%, \+\d+\.\d%\] on 300 users: "
        r"not above \+0\.00% -> does not beat"
    )
    assert any(re.search(pattern, r) for r in d.reasons), d.reasons
    champ = d.to_dict()["opponents"]["champion"]
    assert champ["interval"]["lower"] < 0 < champ["interval"]["upper"]
    assert d.to_dict()["opponents"]["baseline"]["passed"]


def test_large_real_gain_is_promoted_over_champion_and_best_baseline():
    champion = recall(300, 0.3, seed=3)
    challenger = np.clip(champion + 0.1, 0, 1)
    baselines = [cand(f"baseline {i}", champion * f) for i, f in enumerate((0.5, 0.9, 0.7))]
    d = decide_promotion(
        cand("challenger v2", challenger), cand("champion v1", champion), baselines
    )
    assert d.promote, d.reasons
    assert d.labels["baseline"] == "baseline 1"  # the strongest on the shared samples
    assert d.baseline == pytest.approx((champion * 0.9).mean())
    assert d.champion == pytest.approx(champion.mean())


def test_guard_refuses_an_auc_regression_despite_a_recall_gain():
    base = recall(300, 0.3, seed=4)
    better = np.clip(base + 0.1, 0, 1)
    baselines = [cand("baseline", base * 0.5)]
    champion = cand("champion v1", base, buy_auc=0.75, churn_auc=0.8)
    worse_auc = cand("challenger v2", better, buy_auc=0.70, churn_auc=0.8)
    d = decide_promotion(worse_auc, champion, baselines)
    assert not d.promote
    assert any("guard buy_auc: 0.7000 vs champion v1 0.7500" in r for r in d.reasons)
    assert d.to_dict()["opponents"]["champion"]["guards"]["buy_auc"]["drop"] == pytest.approx(0.05)
    within = cand("challenger v2", better, buy_auc=0.745, churn_auc=0.8)
    assert decide_promotion(within, champion, baselines).promote
    lost_explore = cand("challenger v2", better, explore=0.05, buy_auc=0.75, churn_auc=0.8)
    refused = decide_promotion(lost_explore, champion, baselines)
    assert not refused.promote
    assert any("guard explore_recall_at_10" in r for r in refused.reasons)


def test_margin_and_confidence_come_from_the_config():
    base = recall(300, 0.3, seed=5)
    noise = np.random.default_rng(6).normal(0.0, 0.1, 300)
    challenger, champion = cand("c", base * 1.05 + noise), cand("champ", base)
    baselines = [cand("b", base * 0.5)]
    loose = GateRule.from_config(RegistryConfig(confidence=0.5))
    strict = GateRule.from_config(RegistryConfig(confidence=0.999))
    width = {}
    for name, rule in (("loose", loose), ("strict", strict)):
        comp = decide_promotion(challenger, champion, baselines, rule).comparisons[1]
        width[name] = comp.interval.upper - comp.interval.lower
    assert width["loose"] < width["strict"]
    assert decide_promotion(challenger, champion, baselines, loose).confidence == 0.5
    margin = GateRule.from_config(RegistryConfig(min_improvement=0.5))
    d = decide_promotion(challenger, champion, baselines, margin)
    assert not d.promote and d.margin == 0.5


def test_scores_are_paired_by_user_and_cutoff():
    base = recall(200, 0.3, seed=7)
    champion = cand("champion v1", base)
    shuffled = champion.samples.select(np.random.default_rng(8).permutation(200)[:150])
    challenger = Candidate("challenger v2", {}, "s1", samples=shuffled)
    d = decide_promotion(challenger, champion, [cand("b", base * 0.5)])
    comp = d.comparisons[1]
    assert comp.interval.point == 0.0 and comp.interval.n_users == 150  # same users, same values
    assert not d.promote


def test_split_mismatch_and_missing_samples_say_to_pass_data():
    base = recall(100, 0.3, seed=9)
    d = decide_promotion(
        cand("challenger v2", base * 2, "split-a"),
        cand("champion v1", base, "split-b"),
        [cand("b", base * 0.5, "split-a")],
    )
    assert not d.promote
    assert any("split fingerprints differ" in r and "--data" in r for r in d.reasons)
    legacy = decide_promotion(
        cand("challenger v1", None, recall_at_10=0.9), None, [cand("b", base)]
    )
    assert not legacy.promote
    assert any("per-sample scores" in r and "--data" in r for r in legacy.reasons)


def test_nan_metric_and_no_baseline_are_refused():
    base = recall(100, 0.3, seed=10)
    nan = decide_promotion(cand("c", None, recall_at_10=math.nan), None, [cand("b", base)])
    assert not nan.promote and any("no finite recall_at_10" in r for r in nan.reasons)
    alone = decide_promotion(cand("c", base), None, [])
    assert not alone.promote and math.isnan(alone.baseline)
    assert json.loads(json.dumps(alone.to_dict(), allow_nan=False))["baseline"] is None


def test_decision_records_interval_users_and_the_recall_split():
    base = recall(250, 0.3, seed=11)
    d = decide_promotion(
        cand("challenger v2", np.clip(base + 0.1, 0, 1), explore=0.2),
        cand("champion v1", base),
        [cand("baseline 'pop'", base * 0.5, explore=0.05)],
    )
    out = json.loads(json.dumps(d.to_dict(), allow_nan=False))
    assert out["confidence"] == 0.95 and out["margin"] == 0.0 and out["n_users"] == 250
    assert set(out["opponents"]) == {"baseline", "champion"}
    for opponent in out["opponents"].values():
        assert opponent["interval"]["lower"] <= opponent["interval"]["upper"]
        assert opponent["interval"]["n_users"] == 250
    split = out["recall_split"]
    assert set(split) == {"challenger v2", "champion v1", "baseline 'pop'"}
    assert split["challenger v2"]["explore_recall_at_10"] == pytest.approx(0.2)
    assert split["baseline 'pop'"]["explore_recall_at_10"] == pytest.approx(0.05)
    assert any(r.startswith("repeat/explore recall: challenger") for r in d.reasons)


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


def two_way(challenger_gain: float) -> tuple[Candidate, Candidate, list[Candidate]]:
    base = recall(300, 0.3, seed=12)
    challenger = cand("c", np.clip(base * (1 + challenger_gain), 0, 1))
    return challenger, cand("champ", base), [cand("b", base * 0.3)]


def test_apply_refusal_logs_and_keeps_champion(client, tmp_path):
    v1, v2 = make_versions(client, tmp_path, "m", 2)
    client.set_registered_model_alias("m", "champion", v1)
    client.set_registered_model_alias("m", "challenger", v2)
    decision = decide_promotion(*two_way(-0.3))
    run_id = apply_decision(client, "m", v2, decision, artifact_location=str(tmp_path / "promo"))
    assert aliases(client, "m") == {"champion": v1, "challenger": v2}
    assert alias_history(client, "m") == []
    mv = client.get_model_version("m", v2)
    assert mv.tags["promotion.decision"] == "refused"
    assert "does not beat" in mv.tags["promotion.reasons"]
    run = client.get_run(run_id)
    assert client.get_experiment(run.info.experiment_id).name == PROMOTIONS_EXPERIMENT
    assert run.data.tags["decision"] == "refused"
    assert run.data.metrics["champion"] == pytest.approx(decision.champion)
    assert run.data.metrics["gain.champion.upper"] < 0
    assert run.data.params["primary_metric"] == METRIC
    assert run.data.params["confidence"] == "0.95" and run.data.params["n_users"] == "300"
    saved = json.loads(
        Path(client.download_artifacts(run_id, "decision.json", str(tmp_path))).read_text()
    )
    assert saved["opponents"]["champion"]["interval"]["upper"] < 0
    reasons = Path(client.download_artifacts(run_id, "reasons.txt", str(tmp_path))).read_text()
    assert "does not beat" in reasons and "CI" in reasons


def test_apply_promotion_moves_aliases_and_records_each_move(client, tmp_path):
    v1, v2 = make_versions(client, tmp_path, "m", 2)
    client.set_registered_model_alias("m", "champion", v1)
    client.set_registered_model_alias("m", "challenger", v2)
    decision = decide_promotion(*two_way(0.3))
    run_id = apply_decision(client, "m", v2, decision, str(tmp_path / "promo"), command="test")
    assert aliases(client, "m") == {"champion": v2, "previous": v1}
    assert client.get_model_version("m", v2).tags["promotion.decision"] == "promoted"
    moves = [(m.alias, m.from_version, m.to_version) for m in alias_history(client, "m")]
    assert moves == [("previous", None, v1), ("champion", v1, v2), ("challenger", v2, None)]
    last = alias_history(client, "m")[-1]
    assert last.command == "test" and run_id in last.reason and last.who
