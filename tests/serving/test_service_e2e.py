"""End to end: a real ``bentoml serve`` of an untrained bundle imported into a temp store."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MODEL_NAME = "interest-evolution"


def _frame(seed: int = 0) -> pd.DataFrame:
    from core.schema import conform

    rng = np.random.default_rng(seed)
    n = 600
    return conform(
        pd.DataFrame(
            {
                "user_id": [f"u{u}" for u in rng.integers(0, 40, n)],
                "item_id": [f"i{i}" for i in rng.integers(0, 100, n)],
                "category_id": [f"c{c}" for c in rng.zipf(1.5, n) % 15],
                "behavior": rng.choice(["view", "view", "view", "cart", "fav", "buy"], n),
                "timestamp": pd.Timestamp("2024-01-01", tz="UTC")
                + pd.to_timedelta(rng.integers(0, 10 * 86400, n), unit="s"),
            }
        )
    )


def small_bundle(
    directory: Path, version: str = "7", seed: int = 0, history: str | None = "7D"
) -> Path:
    """Save an untrained small model's bundle (registry version ``version``) in ``directory``."""
    from core.config import FeatureConfig
    from core.features import feature_spec
    from core.vocab import fit_vocabulary
    from modelkit.builder import build_model
    from modelkit.bundle import save_bundle
    from modelkit.model_config import ModelConfig

    fc = FeatureConfig(
        max_events=20, n_periods=3, top_categories=5, future_periods=2, history=history
    )
    vocab = fit_vocabulary(_frame(seed), fc)
    spec = feature_spec(vocab, fc)
    small = ModelConfig(units=8, cat_embed_dim=8, attention_units=8, period_units=8, head_units=8)
    metadata = {
        "model_name": MODEL_NAME,
        "version": version,
        "run_id": f"run-e2e-{version}",
        "metrics": {"recall_at_10": 0.42, "buy_auc": float("nan")},
        "data_fingerprint": {"dataset": "synthetic-e2e", "rows": 600},
    }
    save_bundle(directory, build_model(small, spec), vocab, fc, spec, metadata, None)
    return directory


def small_store(tmp: Path) -> tuple[Path, Path, str]:
    """Bundle an untrained small model and import it into a BentoML home under ``tmp``.

    Returns:
        The bundle folder, the BentoML home and the imported model's tag.
    """
    from serving.store import import_bundle

    bundle_dir = small_bundle(tmp / "bundle")
    home = tmp / "bentoml"
    tag = import_bundle(bundle_dir, MODEL_NAME, labels={"alias": "champion"}, home=home)
    return bundle_dir, home, tag


def _serve(tmp_path_factory, workers: int | None = None, log_write: str = "sync"):
    """Bundle an untrained small model, import it into a temp BentoML home, serve it."""
    from serving.launch import ServerStartError, start_server, stop_server
    from serving.store import import_bundle

    tmp = tmp_path_factory.mktemp("e2e" if workers is None else f"e2e-{workers}w")
    bundle_dir, home, tag = small_store(tmp)
    # A second stored model (another vocabulary) to reload to and to run in shadow.
    other = import_bundle(small_bundle(tmp / "bundle-8", "8", seed=1), MODEL_NAME, home=home)
    state = tmp / "state"
    config = tmp / "config.yaml"
    config.write_text(
        "serving:\n  max_events: 30\n  max_body_bytes: 20000\n  log_rotate_rows: 1000\n"
        f"  log_write: {log_write}\n"
    )
    env = {
        "BENTOML_HOME": str(home),
        "INTEREST_STATE_DIR": str(state),
        "INTEREST_CONFIG": str(config),
        "INTEREST_BENTO_MODEL": tag,
    }
    if workers is not None:
        env["BENTOML_CONFIG_OPTIONS"] = f"services.interest.workers={workers}"
    try:
        server = start_server(env, tmp / "server.log", timeout=90)
    except ServerStartError as exc:
        pytest.fail(str(exc))
    try:
        yield {
            "url": server.url,
            "bundle_dir": bundle_dir,
            "state": state,
            "tag": tag,
            "other_tag": other,
            "proc": server.process,
        }
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """The service's default: one worker."""
    yield from _serve(tmp_path_factory)


@pytest.fixture(scope="module")
def deployed_2_workers(tmp_path_factory):
    """Two worker processes behind one port (BENTOML_CONFIG_OPTIONS), with the queued log
    (records and shadow records written by each worker's log thread after the answers)."""
    yield from _serve(tmp_path_factory, workers=2, log_write="queued")


def _events(n: int = 6, end: datetime | None = None, unknown: bool = False) -> list[dict]:
    end = end or datetime.now(UTC) - timedelta(minutes=5)
    cats = ["c1", "c2", "c3", "c1", "c4", "c2"]
    events = [
        {
            "item_id": f"i{i}",
            "category_id": cats[i % len(cats)],
            "behavior": ["view", "cart", "view", "buy"][i % 4],
            "timestamp": (end - timedelta(hours=3 * (n - i))).isoformat(),
        }
        for i in range(n)
    ]
    if unknown:
        events[-1]["category_id"] = "never-seen"
        events[-1]["timestamp"] = int(end.timestamp())  # unix seconds are accepted too
    return events


def _reference(bundle_dir: Path, body: dict, cutoff: str) -> dict:
    from core.features import build_features
    from modelkit.bundle import load_bundle
    from serving.encode import events_frame
    from serving.schemas import PredictRequest

    bundle = load_bundle(bundle_dir)
    frame = events_frame(["x"], [PredictRequest.model_validate(body)])
    arrays = build_features(
        frame, [pd.Timestamp(cutoff)], bundle.vocab, bundle.feature_config, with_labels=False
    )
    return bundle, {k: np.asarray(v) for k, v in bundle.predict(arrays.inputs()).items()}


def test_predict_matches_the_bundle_in_process(deployed):
    body = {"user_id": "alice", "events": _events(unknown=True), "top_k": 3}
    resp = httpx.post(f"{deployed['url']}/predict", json=body, timeout=30)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["model"] == {
        "name": MODEL_NAME,
        "version": "7",
        "alias": None,  # the import-time "champion" label is not trusted; no registry here
        "bento_tag": deployed["tag"],
    }
    assert out["oov_events"] == 1 and out["events_used"] == 6 and out["user_id"] == "alice"
    assert len(out["next_categories"]) == 3 and len(out["trajectory"]) == 2
    bundle, ref = _reference(deployed["bundle_dir"], body, out["cutoff"])
    assert out["p_buy"] == pytest.approx(float(ref["buy"].reshape(-1)[0]), abs=1e-5)
    assert out["p_churn"] == pytest.approx(float(ref["churn"].reshape(-1)[0]), abs=1e-5)
    scores = ref["next_cats"][0]
    for item in out["next_categories"]:
        index = bundle.vocab.encode([item["category_id"]])[0]
        assert item["score"] == pytest.approx(float(scores[index]), abs=1e-5)
    best = np.argsort(-scores[2:])[:3] + 2
    assert {c["category_id"] for c in out["next_categories"]} == set(bundle.vocab.decode(best))
    shares = {b["bucket"]: b["share"] for b in out["trajectory"][0]["buckets"]}
    assert max(shares.values()) == pytest.approx(float(ref["trajectory"][0, 0].max()), abs=1e-5)


def test_predict_batch_answers_each_user_in_order(deployed):
    users = [{"user_id": f"u{i}", "events": _events(2 + i)} for i in range(5)]
    resp = httpx.post(f"{deployed['url']}/predict_batch", json={"users": users}, timeout=30)
    assert resp.status_code == 200, resp.text
    preds = resp.json()["predictions"]
    assert [p["user_id"] for p in preds] == [f"u{i}" for i in range(5)]
    assert [p["events_used"] for p in preds] == [2, 3, 4, 5, 6]
    single = httpx.post(f"{deployed['url']}/predict", json=users[3], timeout=30).json()
    assert preds[3]["p_buy"] == pytest.approx(single["p_buy"], abs=1e-4)


def test_concurrent_requests_are_batched_and_answered_correctly(deployed):
    from concurrent.futures import ThreadPoolExecutor

    def call(i: int) -> tuple[int, dict]:
        body = {"user_id": f"c{i}", "events": _events(1 + i % 6)}
        resp = httpx.post(f"{deployed['url']}/predict", json=body, timeout=60)
        return resp.status_code, resp.json()

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, range(32)))
    assert all(status == 200 for status, _ in results)
    assert [r["user_id"] for _, r in results] == [f"c{i}" for i in range(32)]
    assert [r["events_used"] for _, r in results] == [1 + i % 6 for i in range(32)]


def test_model_endpoint_describes_the_deployed_model(deployed):
    info = httpx.get(f"{deployed['url']}/model", timeout=10).json()
    assert info["model"]["version"] == "7" and info["model"]["alias"] is None
    # No registry in this test: unknown, and why; the check did run.
    assert info["is_champion"] is None and info["champion_version"] is None
    assert "no registry" in info["registry_error"] and info["checked_at"]
    assert info["shadow"] is None
    assert info["metrics"] == {"recall_at_10": 0.42, "buy_auc": None}
    assert len(info["feature_spec_hash"]) == 16
    assert info["data_fingerprint"]["dataset"] == "synthetic-e2e"
    # The runtime was measured at load: TFLite at batch 1 unless it failed or lost, and only
    # when its outputs matched Keras (the model's answers are checked in the test above).
    measured = info["metadata"]["runtime"]["by_batch"]
    assert set(measured) == {"1", "8"} and info["runtime"] == measured["1"]["runtime"]
    assert set(measured["1"]["ms"]) | set(measured["1"]["left_out"]) == {"tf.function", "tflite"}
    assert all(d <= 1e-4 for d in measured["1"]["max_abs_diff"].values())


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"events": []}, 400, "events"),
        ({"events": [{**_events(1)[0], "behavior": "stare"}]}, 400, "behavior"),
        ({"events": [{**_events(1)[0], "timestamp": "last tuesday"}]}, 400, "timestamp"),
        ({"events": [{**_events(1)[0], "price": [1]}]}, 400, "price"),
        ({"events": _events(31)}, 400, "events"),
        (
            {"events": _events(2, end=datetime.now(UTC) + timedelta(days=2))},
            400,
            "events[0].timestamp",
        ),
        ({"events": _events(1), "top_k": -1}, 400, "top_k"),
        ({"events": [{**_events(1)[0], "category_id": "x" * 25000}]}, 413, "body"),
    ],
)
def test_bad_input_gets_4xx_naming_the_field(deployed, body, status, field):
    resp = httpx.post(f"{deployed['url']}/predict", json=body, timeout=30)
    assert resp.status_code == status, resp.text
    assert field in resp.text
    assert httpx.get(f"{deployed['url']}/livez", timeout=5).status_code == 200


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("/predict", b"{not json", "body"),
        ("/predict", b'{"events": [], "surprise": 1}', "events"),
        ("/predict", b'{"events": [{"item_id": "i"}]}', "events[0].category_id"),
        ("/predict_batch", b'{"users": [{"events": "x"}]}', "users[0].events"),
        ("/predict_batch", b'{"users": [{"events": [{"item_id": "i", "category_id": "c", '
         b'"behavior": "view", "timestamp": "0875-04-26T22:04:37Z"}]}]}',
         "users[0].events[0].timestamp"),
    ],
)  # fmt: skip
def test_msgspec_parse_errors_have_the_one_error_shape(deployed, route, body, field):
    # Bodies are decoded by msgspec (serving.wire); a rejected one still gets pydantic's 400.
    resp = httpx.post(
        f"{deployed['url']}{route}",
        content=body,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert resp.status_code == 400, resp.text
    assert set(resp.json()) == {"error", "field"} and resp.json()["field"] == field, resp.text


def test_malformed_json_and_batch_errors_are_4xx(deployed):
    url = deployed["url"]
    resp = httpx.post(
        f"{url}/predict", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert 400 <= resp.status_code < 500
    bad = {
        "users": [
            {"events": _events(2)},
            {"events": _events(1, end=datetime.now(UTC) + timedelta(days=1))},
        ]
    }
    resp = httpx.post(f"{url}/predict_batch", json=bad, timeout=30)
    assert resp.status_code == 400 and "users[1].events[0].timestamp" in resp.text
    assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200


def test_readyz_json_and_cutoff_errors_that_say_which_cutoff(deployed):
    url = deployed["url"]
    ready = httpx.get(f"{url}/readyz", timeout=5)
    assert ready.status_code == 200 and ready.json() == {"ready": True, "status": 200}
    # A replayed history without `cutoff`: the server's clock is the cutoff, and says so.
    old = {"events": _events(3, end=datetime.now(UTC) - timedelta(days=60))}
    resp = httpx.post(f"{url}/predict", json=old, timeout=30)
    assert resp.status_code == 400 and resp.json()["field"] == "events", resp.text
    error = resp.json()["error"]
    assert "no events inside the model's history window: the history window 7D" in error
    assert "the server's clock; the request gave no cutoff" in error and "`cutoff`" in error


def test_metrics_and_prediction_log(deployed):
    url = deployed["url"]
    before = _log_rows(deployed["state"])
    ok = sum(
        httpx.post(
            f"{url}/predict", json={"user_id": f"p{i}", "events": _events(3)}, timeout=30
        ).status_code
        == 200
        for i in range(4)
    )
    httpx.post(f"{url}/predict", json={"events": []}, timeout=30)  # rejected: not logged
    deadline = time.monotonic() + 5
    while len(_log_rows(deployed["state"])) < len(before) + ok and time.monotonic() < deadline:
        time.sleep(0.1)
    rows = _log_rows(deployed["state"])
    assert ok == 4 and len(rows) == len(before) + 4
    from core.hashing import hash_user
    from core.profile import PROFILE_COLUMNS

    # Each worker writes its own files, so new records need not follow the old ones in name
    # order: new = the rows that were not there before.
    seen = {json.dumps(r, sort_keys=True) for r in before}
    new = [r for r in rows if json.dumps(r, sort_keys=True) not in seen]
    [last] = [r for r in new if r["user_hash"] == hash_user("p3")]
    assert last["user_hash"] == hash_user("p3") and "p3" not in json.dumps(last)
    assert set(PROFILE_COLUMNS) <= set(last) and last["model_version"] == "7"
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    assert "interest_oov_events" in metrics and "bentoml_service_request" in metrics
    counts = {}  # per-stage histograms, one observation per answered request
    for labels, value in re.findall(
        r"^interest_stage_seconds_count\{([^}]*)\} (\S+)$", metrics, re.M
    ):
        fields = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        counts[(fields["stage"], fields["model_version"])] = float(value)
    from serving.stages import STAGES

    for stage in STAGES:
        assert counts.get((stage, "7"), 0) >= 4, (stage, counts)


def test_latency_over_http_vs_in_process(deployed):
    url, body = deployed["url"], {"user_id": "lat", "events": _events(20)}
    with httpx.Client() as client:
        for _ in range(5):
            client.post(f"{url}/predict", json=body)
        http = []
        for _ in range(40):
            start = time.perf_counter()
            assert client.post(f"{url}/predict", json=body).status_code == 200
            http.append(time.perf_counter() - start)
    cutoff = datetime.now(UTC).isoformat()
    bundle, _ = _reference(deployed["bundle_dir"], body, cutoff)
    from core.features import build_features
    from serving.encode import events_frame
    from serving.schemas import PredictRequest

    frame = events_frame(["x"], [PredictRequest.model_validate(body)])
    inputs = build_features(
        frame, [pd.Timestamp(cutoff)], bundle.vocab, bundle.feature_config, with_labels=False
    ).inputs()
    local = []
    for _ in range(45):
        start = time.perf_counter()
        bundle.predict(inputs)
        local.append(time.perf_counter() - start)
    print(
        f"\nlatency p50: HTTP /predict {np.median(http) * 1e3:.1f} ms, "
        f"in-process Bundle.predict batch 1 {np.median(local[5:]) * 1e3:.2f} ms"
    )
    assert np.median(http) < 1.0


def _log_rows(state: Path) -> list[dict]:
    files = sorted((state / "predictions").glob("predictions-*.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


def test_bentoml_build_packs_the_service_and_the_model(deployed, tmp_path):
    env = {
        **os.environ,
        "BENTOML_HOME": str(Path(deployed["bundle_dir"]).parent / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
        "INTEREST_BENTO_MODEL": deployed["tag"],
    }
    bentoml_cli = Path(sys.executable).parent / "bentoml"
    out = subprocess.run(
        [str(bentoml_cli), "build", "-o", "tag"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    tag = out.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    name, version = tag.split(":")
    manifest = Path(env["BENTOML_HOME"]) / "bentos" / name / version / "bento.yaml"
    text = manifest.read_text()
    assert "serving.service:InterestService" in text and deployed["tag"] in text


def test_admin_reload_rejects_unknown_tags_and_bad_bodies(deployed):
    url = deployed["url"]
    resp = httpx.post(f"{url}/admin/reload", json={"model_tag": f"{MODEL_NAME}:nope"}, timeout=30)
    assert resp.status_code == 404 and resp.json()["field"] == "model_tag"
    resp = httpx.post(f"{url}/admin/reload", json={"tag": deployed["tag"]}, timeout=30)
    assert resp.status_code == 422 and set(resp.json()) == {"error", "field"}
    resp = httpx.post(f"{url}/admin/shadow", json={"model_tag": "not a tag!"}, timeout=30)
    assert resp.status_code == 404 and resp.json()["field"] == "model_tag"
    assert httpx.get(f"{url}/model", timeout=10).json()["model"]["version"] == "7"


def _records_of(state: Path, request_id: str, count: int) -> list[dict]:
    deadline, rows = time.monotonic() + 10, []
    while time.monotonic() < deadline:
        rows = [r for r in _log_rows(state) if r["request_id"] == request_id]
        if len(rows) >= count:
            break
        time.sleep(0.1)
    return rows


def test_reload_swaps_the_model_and_a_shadow_logs_beside_it(deployed):
    url, state = deployed["url"], deployed["state"]
    v7 = {"name": MODEL_NAME, "version": "7", "bento_tag": deployed["tag"]}
    try:
        resp = httpx.post(
            f"{url}/admin/reload", json={"model_tag": deployed["other_tag"]}, timeout=120
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["model"]["version"] == "8" and resp.json()["previous"] == v7
        info = httpx.get(f"{url}/model", timeout=10).json()
        assert info["model"]["version"] == "8"
        assert info["model"]["bento_tag"] == deployed["other_tag"]
        body = {"user_id": "after-reload", "events": _events(4)}
        answer = httpx.post(f"{url}/predict", json=body, timeout=30).json()
        assert answer["model"]["version"] == "8"
        [record] = _records_of(state, answer["request_id"], 1)
        assert record["model_version"] == "8" and record["shadow"] is False
        # What the server's other workers follow.
        desired = json.loads(next((state / "serving").glob("desired-*.json")).read_text())
        assert desired["model_tag"] == deployed["other_tag"] and desired["shadow_tag"] is None

        resp = httpx.post(f"{url}/admin/shadow", json={"model_tag": deployed["tag"]}, timeout=120)
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"shadow": v7, "previous": None}
        assert httpx.get(f"{url}/model", timeout=10).json()["shadow"] == v7
        body = {"user_id": "shadowed", "events": _events(5)}
        answer = httpx.post(f"{url}/predict", json=body, timeout=30).json()
        assert answer["model"]["version"] == "8"  # the shadow's prediction is never returned
        rows = _records_of(state, answer["request_id"], 2)
        assert sorted((r["shadow"], r["model_version"]) for r in rows) == [
            (False, "8"),
            (True, "7"),
        ]
        served, shadow = sorted(rows, key=lambda r: r["shadow"])
        assert served["p_buy"] == pytest.approx(answer["p_buy"], abs=1e-6)
        assert shadow["cutoff"] == served["cutoff"] and shadow["user_hash"] == served["user_hash"]

        resp = httpx.delete(f"{url}/admin/shadow", timeout=30)
        assert resp.status_code == 200 and resp.json() == {"shadow": None, "previous": v7}
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
        assert re.search(r'interest_model_is_champion\{[^}]*model_version="8"[^}]*\} -1', metrics)
    finally:
        httpx.delete(f"{url}/admin/shadow", timeout=30)
        httpx.post(f"{url}/admin/reload", json={"model_tag": deployed["tag"]}, timeout=120)
    assert httpx.get(f"{url}/model", timeout=10).json()["model"]["version"] == "7"


def test_two_workers_log_whole_records_and_all_follow_reloads_and_shadows(deployed_2_workers):
    # Every request below may reach either worker: the admin answers come only once both run
    # the change, and each worker logs whole records into its own files.
    state = deployed_2_workers["state"]
    deadline = time.monotonic() + 10
    while len(list((state / "serving").glob("applied-*.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(list((state / "serving").glob("applied-*.json"))) == 2  # one per worker
    for _ in range(2):
        test_metrics_and_prediction_log(deployed_2_workers)
        test_reload_swaps_the_model_and_a_shadow_logs_beside_it(deployed_2_workers)
    from concurrent.futures import ThreadPoolExecutor

    def call(i: int) -> dict:
        body = {"user_id": f"w{i}", "events": _events(3)}
        return httpx.post(f"{deployed_2_workers['url']}/predict", json=body, timeout=30).json()

    with ThreadPoolExecutor(8) as pool:  # concurrent, so both workers take some
        answers = list(pool.map(call, range(40)))
    assert {a["model"]["version"] for a in answers} == {"7"}
    files = (state / "predictions").glob("predictions-*.jsonl")
    pids = {f.stem.rsplit("-", 1)[-1].split("_")[0] for f in files}
    assert len(pids) == 2, pids  # both workers answered and logged
