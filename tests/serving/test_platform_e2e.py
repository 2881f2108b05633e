"""Platform path end to end: a trained, REGISTERED champion -> ``interest bento import`` ->
a real ``bentoml serve`` whose answers equal the registry model's own predictions."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow

MODEL = "interest-evolution"


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """Tiny synthetic log -> prepared data -> refit (1 epoch) -> registered champion."""
    import mlflow

    from core.config import ProjectConfig
    from core.dataset import prepare_dataset
    from modelkit.model_config import ModelConfig
    from synthlogs.generator import SynthConfig, generate_events
    from training.refit import refit_best
    from training.registry import promote_version, register_run
    from training.search import TrialPlan
    from training.tracking import setup_tracking

    state = tmp_path_factory.mktemp("platform") / "state"
    config = ProjectConfig.model_validate(
        {
            "paths": {"state_dir": str(state)},
            "train": {"epochs": 1, "pretrain_epochs": 0, "batch_size": 64},
            "features": {"max_events": 20, "top_categories": 5, "n_periods": 3},
        }
    )
    # 64 categories: the model card's recall curve reads ranks up to 50.
    synth = SynthConfig(n_users=120, n_days=14, seed=3, n_groups=8, cats_per_group=8, n_items=500)
    events = generate_events(synth).events
    data = prepare_dataset(events, config, "platform-e2e")
    setup_tracking(config)
    small = ModelConfig(units=8, cat_embed_dim=8, attention_units=8, period_units=8, head_units=8)
    with mlflow.start_run(run_name="study-platform-e2e"):
        refit = refit_best(
            config, events, data, TrialPlan(small), epochs=1, warm_start=None, study_name="e2e"
        )
    version = str(register_run(config, refit.run_id, study_name="e2e").version)
    promote_version(config, version, force=True)
    (state / "config.yaml").write_text(
        json.dumps({"serving": {"log_rotate_rows": 100, "champion_check_s": 1}})
    )

    def refit_and_register(seed: int) -> str:
        plan = TrialPlan(dataclasses.replace(small, units=8 + seed))
        with mlflow.start_run(run_name=f"study-platform-e2e-{seed}"):
            again = refit_best(
                config, events, data, plan, epochs=1, warm_start=None, study_name="e2e"
            )
        return str(register_run(config, again.run_id, study_name="e2e").version)

    return {
        "config": config,
        "state": state,
        "version": version,
        "run_id": refit.run_id,
        "events": events,
        "refit_and_register": refit_and_register,
    }


@pytest.fixture(scope="module")
def served(registered, tmp_path_factory):
    """``interest bento import --alias champion``, then a real ``bentoml serve``."""
    from typer.testing import CliRunner

    from interest.cli import app
    from serving.package import bentoml_env

    state = registered["state"]
    env = {"INTEREST_STATE_DIR": str(state), "INTEREST_CONFIG": str(state / "config.yaml")}
    result = CliRunner().invoke(app, ["bento", "import", "--alias", "champion"], env=env)
    assert result.exit_code == 0, result.output
    tag = result.stdout.strip().splitlines()[-1]
    from serving.launch import ServerStartError, start_server

    child_env = {**bentoml_env(registered["config"], tag), **env}
    log_path = tmp_path_factory.mktemp("serve") / "server.log"
    try:
        server = start_server(child_env, log_path, timeout=120)
    except ServerStartError as exc:
        pytest.fail(str(exc))
    try:
        yield {**registered, "url": server.url, "tag": tag}
    finally:
        server.stop()


def _events(categories: list[str], n: int) -> list[dict]:
    end = datetime.now(UTC) - timedelta(minutes=5)
    return [
        {
            "item_id": f"i{i}",
            "category_id": categories[i % len(categories)],
            "behavior": ["view", "cart", "view", "buy", "fav"][i % 5],
            "timestamp": (end - timedelta(hours=5 * (n - i))).isoformat(),
        }
        for i in range(n)
    ]


def _registry_predictions(config, bodies: list[dict], cutoffs: list[str]) -> list[dict]:
    """The champion as MLflow serves it, on features built with the registered bundle."""
    import mlflow

    import modelkit.layers  # noqa: F401  (custom layers for deserialisation)
    from core.config import FeatureConfig
    from core.features import build_features
    from core.vocab import Vocabulary
    from modelkit.registry import download_bundle
    from serving.encode import events_frame
    from serving.schemas import PredictRequest

    uri = config.paths.resolved().tracking_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    model = mlflow.tensorflow.load_model(f"models:/{MODEL}@champion")
    bundle = download_bundle(config, "champion", config.paths.resolved().state_dir / "ref")
    vocab = Vocabulary.load(bundle / "vocab.json")
    features = FeatureConfig.model_validate_json((bundle / "feature_config.json").read_text())
    out = []
    for body, cutoff in zip(bodies, cutoffs, strict=True):
        frame = events_frame(["x"], [PredictRequest.model_validate(body)])
        arrays = build_features(frame, [pd.Timestamp(cutoff)], vocab, features, with_labels=False)
        pred = model(arrays.inputs(), training=False)
        out.append({k: np.asarray(v) for k, v in pred.items()} | {"vocab": vocab})
    return out


def test_served_predictions_equal_the_registry_model(served):
    from core.vocab import Vocabulary

    url = served["url"]
    cats = Vocabulary.load(
        next(Path(served["state"], "bentoml", "models").rglob("vocab.json"))
    ).categories
    bodies = [
        {"user_id": "alice", "events": _events(cats[:4], 8), "top_k": 5},
        {"user_id": "bob", "events": _events([cats[5], "never-seen"], 3), "top_k": 5},
    ]
    answers = []
    for body in bodies:
        resp = httpx.post(f"{url}/predict", json=body, timeout=30)
        assert resp.status_code == 200, resp.text
        answers.append(resp.json())
    assert answers[1]["oov_events"] >= 1
    refs = _registry_predictions(served["config"], bodies, [a["cutoff"] for a in answers])
    for answer, ref in zip(answers, refs, strict=True):
        assert answer["model"]["version"] == served["version"]
        assert answer["model"]["alias"] == "champion"
        assert answer["p_buy"] == pytest.approx(float(ref["buy"].reshape(-1)[0]), abs=1e-5)
        assert answer["p_churn"] == pytest.approx(float(ref["churn"].reshape(-1)[0]), abs=1e-5)
        scores = ref["next_cats"][0]
        for item in answer["next_categories"]:
            index = ref["vocab"].encode([item["category_id"]])[0]
            assert item["score"] == pytest.approx(float(scores[index]), abs=1e-5)
        best = ref["vocab"].decode((np.argsort(-scores[2:])[:5] + 2).tolist())
        assert {c["category_id"] for c in answer["next_categories"]} == set(best)


def test_invalid_requests_are_rejected_naming_the_field(served):
    url = served["url"]
    resp = httpx.post(f"{url}/predict", json={"events": []}, timeout=30)
    assert resp.status_code == 400 and "events" in resp.text
    bad = {"events": [{**_events(["c"], 1)[0], "behavior": "stare"}]}
    resp = httpx.post(f"{url}/predict", json=bad, timeout=30)
    assert resp.status_code == 400 and "behavior" in resp.text
    assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200


def test_model_endpoint_reports_the_registry_version(served):
    info = httpx.get(f"{served['url']}/model", timeout=10).json()
    assert info["model"]["name"] == MODEL
    assert info["model"]["version"] == served["version"]
    assert info["model"]["alias"] == "champion"  # asked of the registry, not a stored label
    assert info["is_champion"] is True and info["champion_version"] == served["version"]
    assert info["registry_error"] is None and info["checked_at"]
    assert info["model"]["bento_tag"] == served["tag"]
    assert info["metadata"]["run_id"] == served["run_id"]
    assert info["data_fingerprint"]["dataset"] == "platform-e2e"


def test_prediction_log_has_the_served_records(served):
    url, state = served["url"], served["state"]
    body = {"user_id": "logged-user", "events": _events(["g00-c00"], 2)}
    assert httpx.post(f"{url}/predict", json=body, timeout=30).status_code == 200
    deadline, rows = time.monotonic() + 10, []
    while time.monotonic() < deadline:
        files = sorted((state / "predictions").glob("predictions-*.jsonl"))
        rows = [json.loads(line) for f in files for line in f.read_text().splitlines()]
        if len(rows) >= 3:
            break
        time.sleep(0.2)
    assert len(rows) >= 3  # alice, bob and this one
    assert {r["model_version"] for r in rows} == {served["version"]}
    assert all(r["model_name"] == MODEL for r in rows)


def _model_info(url: str, until: Callable[[dict], bool], timeout: float = 20) -> dict:
    """``GET /model`` until ``until(info)`` holds (the service checks the registry each 1 s)."""
    deadline, info = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        info = httpx.get(f"{url}/model", timeout=10).json()
        if until(info):
            return info
        time.sleep(0.5)
    raise AssertionError(f"/model never satisfied the condition: {info}")


def _log_rows(state: Path) -> list[dict]:
    files = sorted((state / "predictions").glob("predictions-*.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


def test_lifecycle_promote_deploy_shadow_drift_rollback(served):
    """v1 served -> v2 promoted and deployed -> v3 in shadow -> drift per version -> rollbacks.

    Runs last in the module: it moves the champion.
    """
    from core.predlog import read_prediction_log
    from monitoring.check import check_window
    from monitoring.online import compare_shadows
    from monitoring.performance import BundleLabelling, evaluate_log
    from monitoring.reference import version_bundle
    from pipelines.deploy import deploy
    from pipelines.status import deployment_status
    from pipelines.traffic import replay
    from serving.registry_import import import_from_registry
    from training.registry import model_history, promote_version, rollback

    config, url, state, v1 = served["config"], served["url"], served["state"], served["version"]
    started = datetime.now(UTC)
    v2, v3 = served["refit_and_register"](1), served["refit_and_register"](2)
    # Tiny one-epoch models: the gate's own verdict is tested in tests/training; force it here.
    assert promote_version(config, v2, force=True).forced

    # The running v1 learns from the registry that it is no longer the champion.
    info = _model_info(url, lambda i: i["is_champion"] is False)
    assert info["model"]["version"] == v1 and info["champion_version"] == v2
    events = served["events"]
    cutoff = events["timestamp"].max() - pd.Timedelta("4D")
    assert replay(url, events, [cutoff], "7D", max_users=40, seed=1) > 0  # v1's traffic

    done = deploy(config, "champion", url=url, config_path=state / "config.yaml")
    assert done.served_version == v2
    info = _model_info(url, lambda i: i["is_champion"] is True)
    assert info["model"]["version"] == v2
    assert deployment_status(config)["model_version"] == v2
    assert deployment_status(config)["is_champion"] is True

    shadow_tag = import_from_registry(config, alias=None, version=v3).tag
    answer = httpx.post(f"{url}/admin/shadow", json={"model_tag": shadow_tag}, timeout=120)
    assert answer.status_code == 200, answer.text
    assert replay(url, events, [cutoff], "7D", max_users=40, seed=2) > 0  # v2 + shadow v3
    answer = httpx.post(f"{url}/predict", json={"events": _events(["g00-c00"], 3)}, timeout=30)
    assert answer.json()["model"]["version"] == v2  # the shadow never answers

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        rows = _log_rows(state)
        shadow = {r["request_id"] for r in rows if r.get("shadow")}
        if len(shadow) >= 40:
            break
        time.sleep(0.5)
    served_ids = {r["request_id"] for r in rows if r["model_version"] == v2 and not r.get("shadow")}
    assert shadow and shadow <= served_ids
    assert {r["model_version"] for r in rows if r.get("shadow")} == {v3}

    # Realised performance of served v2 and shadow v3 on the same requests, with an interval.
    window = read_prediction_log(state / "predictions", started, datetime.now(UTC))
    labelling = BundleLabelling.load(version_bundle(config, v2))
    result = evaluate_log(window, events, labelling, 10)
    assert {v2, f"{v3}-shadow"} <= set(result.samples)
    assert result.shadowing == {f"{v3}-shadow": {v2}}
    (online,) = compare_shadows(result.samples, config.registry, "recall_at_10", result.shadowing)
    assert online.served_version == v2 and online.interval.n_users > 10
    assert online.interval.lower <= online.interval.point <= online.interval.upper

    # A window with v1 and v2 traffic: each part against its own version's reference.
    check = check_window(config, None, started, datetime.now(UTC), stamp="e2e", trigger="test")
    assert {c.version for c in check.versions} == {v1, v2}
    assert len({c.reference for c in check.versions}) == 2

    assert rollback(config, reason="canary").to_version == v1
    assert rollback(config, reason="undo").to_version == v2
    moves = [(m.from_version, m.to_version) for m in model_history(config) if m.alias == "champion"]
    assert moves[-3:] == [(v1, v2), (v2, v1), (v1, v2)]
