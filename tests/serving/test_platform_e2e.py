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


def _pyfunc(config):
    """The registered champion as ``mlflow.pyfunc`` loads it: raw events in."""
    import mlflow

    uri = config.paths.resolved().tracking_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")


def _naive(events: pd.DataFrame) -> pd.DataFrame:
    # MLflow's datetime columns take naive UTC times.
    return events.assign(timestamp=events["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None))


def _assert_same_answer(answer: dict, row: dict) -> None:
    """A service answer and a prediction-table row: same ranking, values within 1e-5."""
    assert [c["category_id"] for c in answer["next_categories"]] == [
        c["category_id"] for c in row["next_categories"]
    ]
    np.testing.assert_allclose(
        [c["score"] for c in answer["next_categories"]],
        [c["score"] for c in row["next_categories"]],
        atol=1e-5,
    )
    assert answer["p_buy"] == pytest.approx(row["p_buy"], abs=1e-5)
    assert answer["p_churn"] == pytest.approx(row["p_churn"], abs=1e-5)
    for want, got in zip(answer["trajectory"], row["trajectory"], strict=True):
        assert [b["bucket"] for b in want["buckets"]] == [b["bucket"] for b in got["buckets"]]
        np.testing.assert_allclose(
            [b["share"] for b in want["buckets"]], [b["share"] for b in got["buckets"]], atol=1e-5
        )
    assert answer["events_used"] == row["events_used"]
    assert answer["oov_events"] == row["oov_events"]


def test_served_predictions_equal_the_registry_model(served):
    from serving.encode import events_frame
    from serving.schemas import PredictRequest

    url = served["url"]
    cats = list(served["events"]["category_id"].value_counts().index)
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
    model = _pyfunc(served["config"])
    for body, answer in zip(bodies, answers, strict=True):
        assert answer["model"]["version"] == served["version"]
        assert answer["model"]["alias"] == "champion"
        frame = _naive(events_frame(["x"], [PredictRequest.model_validate(body)]))
        table = model.predict(frame, params={"cutoff": answer["cutoff"], "top_k": 5})
        assert len(table) == 1 and table["model_version"].iloc[0] == served["version"]
        _assert_same_answer(answer, table.iloc[0].to_dict())


def test_batch_scoring_the_pyfunc_and_the_service_agree(served, tmp_path):
    """The same log users through `interest predict`, the registered pyfunc and /predict_batch."""
    from typer.testing import CliRunner

    from eventlogs.loaders import write_events
    from interest.cli import app

    events = served["events"]
    cutoff = (events["timestamp"].max() - pd.Timedelta("3D")).floor("D")
    log, out = tmp_path / "log.parquet", tmp_path / "predictions.parquet"
    write_events(events, log)
    env = {"INTEREST_STATE_DIR": str(served["state"])}
    args = ["predict", "--data", str(log), "--format", "canonical", "--cutoff", str(cutoff)]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--top-k", "5"], env=env)
    assert result.exit_code == 0, result.output
    batch = pd.read_parquet(out).set_index("user_id")
    assert (batch["model_version"] == served["version"]).all()
    users = sorted(batch.index)[:40]
    before = events[(events["timestamp"] < cutoff) & events["user_id"].isin(users)]
    pyfunc = _pyfunc(served["config"]).predict(
        _naive(before), params={"cutoff": cutoff.isoformat(), "top_k": 5}
    )
    pyfunc = pyfunc.set_index("user_id")
    assert sorted(pyfunc.index) == users
    bodies = [
        {
            "user_id": user,
            "cutoff": cutoff.isoformat(),
            "top_k": 5,
            "events": [
                {
                    "item_id": r.item_id,
                    "category_id": r.category_id,
                    "behavior": r.behavior,
                    "timestamp": r.timestamp.isoformat(),
                }
                for r in frame.itertuples()
            ],
        }
        for user, frame in before.groupby("user_id")
    ]
    resp = httpx.post(f"{served['url']}/predict_batch", json={"users": bodies}, timeout=60)
    assert resp.status_code == 200, resp.text
    for answer in resp.json()["predictions"]:
        _assert_same_answer(answer, batch.loc[answer["user_id"]].to_dict())
        _assert_same_answer(answer, pyfunc.loc[answer["user_id"]].to_dict())
        assert pd.Timestamp(answer["cutoff"]) == cutoff == batch.loc[answer["user_id"], "cutoff"]


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
