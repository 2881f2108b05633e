"""Registration, promotion, rollback and status against a real MLflow SQLite store."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.config import PathsConfig, ProjectConfig, RegistryConfig
from evaluation.samples import SampleScores, write_samples
from modelkit.registry import download_bundle, registered_champion, registry_client
from pipelines.status import status
from training.aliases import NothingToRollBack, invoked_command
from training.contenders import SAMPLES_DIR, SAMPLES_FILE
from training.promotion import Candidate
from training.registry import model_history, promote_version, register_run, rollback

METRIC = "recall_at_10"


@pytest.fixture()
def config(empty_db: Path, tmp_path: Path):
    import mlflow

    state = tmp_path / "state"
    state.mkdir()
    shutil.copy(empty_db, state / "mlflow.db")
    cfg = ProjectConfig(paths=PathsConfig(state_dir=state), registry=RegistryConfig(model_name="m"))
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    # Both: an earlier test in the process may have pointed the registry elsewhere.
    mlflow.set_tracking_uri(cfg.paths.resolved().tracking_uri)
    mlflow.set_registry_uri(cfg.paths.resolved().tracking_uri)
    yield cfg
    mlflow.set_tracking_uri(previous[0])
    mlflow.set_registry_uri(previous[1])


def per_user(mean: float, n: int = 300, seed: int = 0) -> SampleScores:
    """Per-user recall@10 around ``mean`` for users u0..u{n-1} at one cutoff."""
    values = np.clip(mean + np.random.default_rng(seed).normal(0.0, 0.1, n), 0.0, 1.0)
    values += mean - values.mean()  # the stored mean is exactly ``mean``
    return SampleScores(
        np.array([f"u{i}" for i in range(n)], dtype=object),
        np.full(n, np.datetime64("2024-01-01"), dtype="datetime64[ns]"),
        {METRIC: values},
    )


def log_run(
    config: ProjectConfig,
    value: float,
    split: str = "split-a",
    base: float = 0.1,
    samples: bool = True,
) -> str:
    """Log a run with a tiny pyfunc model, metrics, a baseline, per-sample scores, a bundle/."""
    import mlflow

    from training.promotion import ensure_experiment

    class Echo(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    client = registry_client(config)
    exp = ensure_experiment(client, "train", config.paths.resolved().artifact_root)
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.pyfunc.log_model(name="model", python_model=Echo(), pip_requirements=[])
        mlflow.log_metrics({METRIC: value, "buy_auc": 0.7, f"baseline.popularity.{METRIC}": base})
        mlflow.set_tags({"data.split_hash": split, "data.rows": "1000"})
        mlflow.log_dict({"value": value}, "bundle/metadata.json")
        if samples:
            scored = {
                "model": per_user(value, seed=int(value * 100)),
                "baseline.popularity": per_user(base),
            }
            path = write_samples(config.paths.resolved().state_dir / SAMPLES_FILE, scored)
            mlflow.log_artifact(str(path), SAMPLES_DIR)
    return run.info.run_id


def aliases(config: ProjectConfig) -> dict[str, str]:
    model = registry_client(config).get_registered_model(config.registry.model_name)
    return {a: str(v) for a, v in model.aliases.items()}


def test_register_tags_and_challenger_alias(config):
    run_id = log_run(config, 0.3)
    mv = register_run(
        config, run_id, study_name="s1", data_fingerprint={"split_hash": "h", "rows": 5}
    )
    assert str(mv.version) == "1" and mv.run_id == run_id
    assert mv.tags["study"] == "s1"
    assert mv.tags["data.split_hash"] == "h" and mv.tags["data.rows"] == "5"
    assert "recall_at_10: **0.3000**" in mv.description  # metrics: the run, the description
    assert aliases(config) == {"challenger": "1"}
    assert registered_champion(config) is None


def test_first_promotion_then_better_and_worse_challengers(config):
    import mlflow

    v1 = str(register_run(config, log_run(config, 0.30)).version)
    first = promote_version(config, "challenger")
    assert first.promote and first.champion is None
    assert aliases(config) == {"champion": v1}

    run2 = log_run(config, 0.40)
    v2 = str(register_run(config, run2).version)
    assert promote_version(config, v2).promote
    assert aliases(config) == {"champion": v2, "previous": v1}
    assert registered_champion(config) == (v2, run2)
    loaded = mlflow.pyfunc.load_model(f"models:/{config.registry.model_name}@champion")
    assert loaded.metadata.run_id == run2

    v3 = str(register_run(config, log_run(config, 0.35)).version)
    worse = promote_version(config, v3)
    assert not worse.promote
    assert aliases(config) == {"champion": v2, "previous": v1, "challenger": v3}
    mv3 = registry_client(config).get_model_version(config.registry.model_name, v3)
    assert mv3.tags["promotion.decision"] == "refused"
    assert "(0.3500 vs 0.4000)" in mv3.tags["promotion.reasons"]
    assert "95% CI" in mv3.tags["promotion.reasons"]


def test_baseline_blocks_first_model(config):
    register_run(config, log_run(config, 0.05, base=0.10))
    decision = promote_version(config, "challenger")
    assert not decision.promote
    assert "champion" not in aliases(config)


def test_mismatched_split_refused_unless_reevaluated(config):
    register_run(config, log_run(config, 0.30, split="split-a"))
    promote_version(config, "challenger")
    v2 = str(register_run(config, log_run(config, 0.50, split="split-b")).version)
    refused = promote_version(config, v2)
    assert not refused.promote
    assert any("split fingerprints differ" in r and "--data" in r for r in refused.reasons)

    calls = []

    def evaluate(champion: str, challenger: str) -> Candidate:
        calls.append((champion, challenger))
        rescored = per_user(0.45, seed=7)
        return Candidate(f"champion v{champion}", {}, "split-b", champion, rescored)

    accepted = promote_version(config, v2, evaluate=evaluate)
    assert calls == [("1", v2)]
    assert accepted.promote and accepted.champion == pytest.approx(0.45)
    assert aliases(config)["champion"] == v2


def test_versions_without_per_sample_scores_are_refused_with_the_remedy(config):
    register_run(config, log_run(config, 0.9, samples=False))
    decision = promote_version(config, "challenger")
    assert not decision.promote
    assert any("no per-sample scores" in r and "--data" in r for r in decision.reasons)


def test_force_and_rollback(config):
    v1 = str(register_run(config, log_run(config, 0.30)).version)
    promote_version(config, v1)
    with pytest.raises(NothingToRollBack, match="first champion"):
        rollback(config)
    v2 = str(register_run(config, log_run(config, 0.20)).version)
    forced = promote_version(config, v2, force=True)
    assert forced.promote and forced.forced
    assert forced.reasons[0] == "forced by user"
    assert any("gate refused" in r for r in forced.reasons)
    assert aliases(config) == {"champion": v2, "previous": v1}

    result = rollback(config, reason="bad latency")
    assert (result.from_version, result.to_version) == (v2, v1)
    assert aliases(config) == {"champion": v1, "previous": v2}
    client = registry_client(config)
    assert client.get_model_version("m", v2).tags["rolled_back"] == "true"
    assert client.get_run(result.run_id).data.params["to_version"] == v1


def test_rollback_twice_restores_v1_then_v2_and_the_history_shows_every_move(config):
    v1 = str(register_run(config, log_run(config, 0.30)).version)
    promote_version(config, v1, command="interest promote 1")
    v2 = str(register_run(config, log_run(config, 0.40)).version)
    assert promote_version(config, v2).promote
    assert rollback(config).to_version == v1
    assert registered_champion(config)[0] == v1
    again = rollback(config, reason="the rollback was a mistake", command="interest rollback")
    assert (again.from_version, again.to_version) == (v1, v2)
    assert aliases(config) == {"champion": v2, "previous": v1}
    client = registry_client(config)
    assert "rolled_back" not in client.get_model_version("m", v2).tags
    assert client.get_model_version("m", v1).tags["rolled_back"] == "true"

    moves = [(m.alias, m.from_version, m.to_version) for m in model_history(config)]
    assert moves == [
        ("challenger", None, v1),
        ("champion", None, v1),
        ("challenger", v1, None),
        ("challenger", None, v2),
        ("previous", None, v1),
        ("champion", v1, v2),
        ("challenger", v2, None),
        ("champion", v2, v1),
        ("previous", v1, v2),
        ("champion", v1, v2),
        ("previous", v2, v1),
    ]
    history = model_history(config)
    assert history[1].command == "interest promote 1" and "gate passed" in history[1].reason
    assert history[7].command == invoked_command()  # default: this process's command line
    assert history[-1].command == "interest rollback"
    assert "the rollback was a mistake" in history[-1].reason
    assert all(m.who and m.at.endswith("+00:00") for m in history)


def test_rollback_without_history_falls_back_to_previous_and_detects_outside_moves(config):
    v1 = str(register_run(config, log_run(config, 0.30)).version)
    promote_version(config, v1)
    v2 = str(register_run(config, log_run(config, 0.40)).version)
    client = registry_client(config)
    client.set_registered_model_alias("m", "champion", v2)  # moved outside interest
    with pytest.raises(LookupError, match="outside interest"):
        rollback(config)
    for key in [k for k in client.get_registered_model("m").tags if k.startswith("alias_")]:
        client.delete_registered_model_tag("m", key)  # a model registered before the history
    client.set_registered_model_alias("m", "previous", v1)
    assert rollback(config).to_version == v1


def test_nan_metric_refused(config):
    register_run(config, log_run(config, 0.3, samples=False), metrics={METRIC: math.nan})
    decision = promote_version(config, "challenger")
    assert not decision.promote
    assert any("no finite" in r for r in decision.reasons)


def test_download_bundle_and_errors(config, tmp_path):
    with pytest.raises(LookupError, match="does not exist"):
        download_bundle(config, "champion", tmp_path / "x")
    register_run(config, log_run(config, 0.3))
    with pytest.raises(LookupError, match="no alias 'champion'"):
        download_bundle(config, "champion", tmp_path / "x")
    bundle = download_bundle(config, "challenger", tmp_path / "dl")
    assert json.loads((bundle / "metadata.json").read_text()) == {"value": 0.3}


def test_status_lists_versions_and_empty_stores(config):
    empty = status(config)
    assert empty["registered_models"] == [] and empty["studies"] == []
    assert empty["bento_models"] == []
    register_run(config, log_run(config, 0.3))
    promote_version(config, "challenger")
    state = status(config)
    (model,) = state["registered_models"]
    (version,) = model["versions"]
    assert version["aliases"] == ["champion"] and version["metrics"][METRIC] == 0.3
    assert version["decision"] == "promoted"
    json.dumps(state)


def test_descriptions_and_metrics_on_the_run_not_as_version_tags(config):
    client = registry_client(config)
    run_id = log_run(config, 0.3)
    mv = register_run(config, run_id, study_name="s1", metrics={"ndcg_at_10": 0.25})
    assert not [t for t in mv.tags if t.startswith(("metric.", "baseline."))]
    logged = client.get_run(run_id).data.metrics
    assert logged["ndcg_at_10"] == 0.25 and logged[METRIC] == 0.3  # given ones go to the run
    text = mv.description
    assert "Refit of study `s1`" in text and "split `split-a`" in text
    assert f"- {METRIC}: **0.3000** (best baseline `popularity` 0.1000)" in text
    assert "- ndcg_at_10: **0.2500**" in text
    assert (
        f"runs:/{run_id}/card/model_card.md" in text and "artifactPath/card/model_card.md" in text
    )
    model = client.get_registered_model(config.registry.model_name)
    assert "champion" in model.description and "card/model_card.md" in model.description
    # The gate and status read the metrics and baselines from the run.
    first = promote_version(config, "challenger")
    assert first.promote
    v2 = str(register_run(config, log_run(config, 0.05, base=0.10)).version)
    refused = promote_version(config, v2)
    assert not refused.promote and any("popularity" in r for r in refused.reasons)
    (model_row,) = status(config)["registered_models"]
    row = next(v for v in model_row["versions"] if v["version"] == "1")
    assert row["metrics"][METRIC] == 0.3
