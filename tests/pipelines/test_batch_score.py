"""Batch scoring and the registered events-in pyfunc give the service's answers.

A small (untrained) bundle is logged and registered the way a refit does it (``bundle/``
artifact + :func:`modelkit.pyfunc.log_events_model`) in a real SQLite MLflow store; the
same users are scored by ``interest predict`` (out-of-core path, several buckets), by
``mlflow.pyfunc.load_model(...).predict`` and by the service's own request code
(``serving.encode``: encode, ``Bundle.predict``, the response builder of ``/predict``).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import functools
import shutil
from datetime import UTC
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from core.config import ProjectConfig

runner = CliRunner()
MODEL = "interest-evolution"


@pytest.fixture(scope="module")
def registered(tmp_path_factory, empty_db: Path) -> dict:
    """Synthetic log -> untrained small bundle -> logged like a refit -> version 1, champion."""
    import mlflow

    from core.features import feature_spec
    from core.vocab import fit_vocabulary
    from modelkit.builder import build_model
    from modelkit.bundle import load_bundle, save_bundle
    from modelkit.model_config import ModelConfig
    from modelkit.pyfunc import example_events, log_events_model
    from modelkit.registry import registry_client
    from synthlogs.config import SynthConfig
    from synthlogs.generator import generate_events
    from training.registry import register_run
    from training.tracking import setup_tracking

    folder = tmp_path_factory.mktemp("batch")
    state = folder / "state"
    state.mkdir()
    shutil.copy(empty_db, state / "mlflow.db")
    config = ProjectConfig.model_validate(
        {
            "paths": {"state_dir": str(state)},
            "features": {"max_events": 20, "top_categories": 5, "n_periods": 3},
        }
    )
    events = generate_events(SynthConfig(n_users=60, n_days=10, seed=5)).events
    log = folder / "events.parquet"
    events.to_parquet(log)
    vocab = fit_vocabulary(events, config.features)
    spec = feature_spec(vocab, config.features)
    small = ModelConfig(units=8, cat_embed_dim=8, attention_units=8, period_units=8, head_units=8)
    cutoff = (pd.Timestamp(events["timestamp"].max()) - pd.Timedelta("2D")).floor("D")
    setup_tracking(config)
    with mlflow.start_run() as run:
        meta = {"model_name": MODEL, "run_id": run.info.run_id}
        model = build_model(small, spec)
        bundle_dir = save_bundle(folder / "bundle", model, vocab, config.features, spec, meta)
        mlflow.log_artifacts(str(bundle_dir), "bundle")
        log_events_model(bundle_dir, example_events(vocab, cutoff), top_k=4)
    version = str(register_run(config, run.info.run_id, metrics={}).version)
    registry_client(config).set_registered_model_alias(MODEL, "champion", version)
    return {
        "config": config,
        "state": state,
        "log": log,
        "events": events,
        "cutoff": cutoff,
        "version": version,
        "bundle": load_bundle(bundle_dir),
    }


def _invoke(registered: dict, *args: str):
    from interest.cli import app

    env = {"INTEREST_STATE_DIR": str(registered["state"])}
    return runner.invoke(app, ["predict", *args], env=env)


def _service_answers(bundle, events: pd.DataFrame, cutoff: pd.Timestamp, top_k: int) -> dict:
    """``/predict``'s answers, built by the service's own code, per user id."""
    from core.config import ServingConfig
    from serving.encode import build_responses, encode_requests
    from serving.schemas import ModelRef, PredictRequest

    before = events[events["timestamp"] < cutoff]
    requests = [
        PredictRequest.model_validate(
            {
                "user_id": user,
                "top_k": top_k,
                "cutoff": cutoff.isoformat(),
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
        )
        for user, frame in before.groupby("user_id")
    ]
    serving = ServingConfig(max_events=100_000)
    encoded = encode_requests(requests, bundle, serving, cutoff.to_pydatetime())
    outputs = bundle.predict(encoded.arrays.inputs())
    buckets = bundle.vocab.bucket_names(bundle.spec.n_buckets)
    model = ModelRef(name=MODEL, version="1", bento_tag="x:1", alias=None)
    answers = build_responses(
        requests, encoded, outputs, bundle.vocab, buckets, model, "day", top_k
    )
    return {a["user_id"]: a for a in answers}


def assert_rows_match(table: pd.DataFrame, answers: dict) -> None:
    """Same users, same ranked categories, probabilities and trajectory within 1e-5."""
    assert sorted(table["user_id"]) == sorted(answers)
    for row in table.to_dict("records"):
        want = answers[row["user_id"]]
        got_cats = [c["category_id"] for c in row["next_categories"]]
        assert got_cats == [c["category_id"] for c in want["next_categories"]], row["user_id"]
        np.testing.assert_allclose(
            [c["score"] for c in row["next_categories"]],
            [c["score"] for c in want["next_categories"]],
            atol=1e-5,
        )
        assert row["p_buy"] == pytest.approx(want["p_buy"], abs=1e-5)
        assert row["p_churn"] == pytest.approx(want["p_churn"], abs=1e-5)
        assert row["events_used"] == want["events_used"]
        assert row["oov_events"] == want["oov_events"]
        for got_p, want_p in zip(row["trajectory"], want["trajectory"], strict=True):
            assert [b["bucket"] for b in got_p["buckets"]] == [
                b["bucket"] for b in want_p["buckets"]
            ]
            np.testing.assert_allclose(
                [b["share"] for b in got_p["buckets"]],
                [b["share"] for b in want_p["buckets"]],
                atol=1e-5,
            )
        assert pd.Timestamp(row["cutoff"]) == pd.Timestamp(want["cutoff"])


def test_predict_cli_pyfunc_and_service_code_agree(registered, tmp_path) -> None:
    import mlflow

    cutoff, events = registered["cutoff"], registered["events"]
    out = tmp_path / "predictions.parquet"
    # ~1,000 rows per chunk: the log goes through several user buckets.
    result = _invoke(
        registered,
        *("--data", str(registered["log"]), "--format", "canonical"),
        *("--cutoff", cutoff.isoformat(), "--out", str(out), "--top-k", "4"),
        *("--rows-per-chunk", "1000"),
    )
    assert result.exit_code == 0, result.output
    assert "chunk(s)" in result.stderr and "1 chunk(s)" not in result.stderr
    table = pd.read_parquet(out)
    assert (table["model_version"] == registered["version"]).all()
    assert (table["model_name"] == MODEL).all()
    answers = _service_answers(registered["bundle"], events, cutoff, top_k=4)
    assert len(answers) > 20
    assert_rows_match(table, answers)

    uri = registered["config"].paths.resolved().tracking_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    naive = events.assign(timestamp=events["timestamp"].dt.tz_convert(UTC).dt.tz_localize(None))
    scored = model.predict(naive, params={"cutoff": cutoff.isoformat(), "top_k": 4})
    assert (scored["model_version"] == registered["version"]).all()
    assert_rows_match(scored, answers)
    # A cutoff column instead of the parameter; the logged default top_k (4).
    with_column = model.predict(naive.assign(cutoff=cutoff.tz_localize(None)))
    assert_rows_match(with_column, answers)


@functools.cache
def _pyfunc_model(uri: str):
    import mlflow

    return mlflow.pyfunc.load_model(uri)


def _score_partition(part: pd.DataFrame, uri: str, cutoff: str) -> pd.DataFrame:
    """What a Dask worker runs: the model by URI (loaded once per process), one partition."""
    return _pyfunc_model(uri).predict(part.reset_index(), params={"cutoff": cutoff})


def test_pyfunc_scores_in_mlflow_serving_and_dask_partitions(registered) -> None:
    import dask.dataframe as dd
    import mlflow
    from mlflow.pyfunc import scoring_server
    from starlette.testclient import TestClient

    from modelkit.scoring import empty_prediction_table

    cutoff, events = registered["cutoff"], registered["events"]
    answers = _service_answers(registered["bundle"], events, cutoff, top_k=4)
    uri = registered["config"].paths.resolved().tracking_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}/{registered['version']}")
    # The app `mlflow models serve` runs; JSON times arrive as ISO strings.
    frame = events[["user_id", "item_id", "category_id", "behavior"]].assign(
        timestamp=events["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    )
    split = frame.to_dict(orient="split")
    body = {
        "dataframe_split": {"columns": split["columns"], "data": split["data"]},
        "params": {"cutoff": cutoff.isoformat()},
    }
    resp = TestClient(scoring_server.init(model)).post("/invocations", json=body)
    assert resp.status_code == 200, resp.text
    assert_rows_match(pd.DataFrame(resp.json()["predictions"]), answers)
    # Dask: partitions by user (a sorted index never splits one user's events).
    naive = events.assign(timestamp=events["timestamp"].dt.tz_convert(UTC).dt.tz_localize(None))
    parts = dd.from_pandas(naive.set_index("user_id"), npartitions=3, sort=True)
    assert parts.npartitions > 1
    version_uri = f"models:/{MODEL}/{registered['version']}"
    scored = parts.map_partitions(
        _score_partition, version_uri, cutoff.isoformat(), meta=empty_prediction_table()
    ).compute(scheduler="synchronous")
    assert_rows_match(scored, answers)


def test_predict_cli_errors_are_one_line(registered, tmp_path) -> None:
    base = ("--data", str(registered["log"]), "--format", "canonical")
    out = ("--out", str(tmp_path / "p.parquet"))
    result = _invoke(registered, *base, *out, "--cutoff", "yesterday-ish")
    assert result.exit_code == 2 and "--cutoff" in result.output
    result = _invoke(registered, *base, *out, "--cutoff", "2024-01-01", "--version", "9")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: model {MODEL!r} has no version 9"
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,item_id,behavior,timestamp\nu1,i1,view,2024-01-01\n")
    result = _invoke(
        registered, "--data", str(bad), "--format", "canonical", *out, "--cutoff", "2024-01-02"
    )
    assert result.exit_code == 1 and "category_id" in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "p.parquet").exists()  # nothing half-written


def test_other_formats_are_scored_in_user_chunks_with_the_same_answers(registered, tmp_path):
    from pipelines.batch_score import score_log

    events, cutoff = registered["events"], registered["cutoff"]
    taobao = pd.DataFrame(
        {
            "user_id": events["user_id"],
            "item_id": events["item_id"],
            "category_id": events["category_id"],
            "behavior_type": events["behavior"].replace({"view": "pv"}),
            "timestamp": events["timestamp"].astype("int64") // 10**9,
        }
    )
    assert set(taobao["behavior_type"]) <= {"pv", "fav", "cart", "buy"}
    log = tmp_path / "taobao.csv"
    taobao.to_csv(log, index=False)
    config = registered["config"].model_copy(
        update={"data": registered["config"].data.model_copy(update={"format": "taobao"})}
    )
    out = tmp_path / "taobao.parquet"
    result = score_log(config, log, cutoff, out, version="1", top_k=4, users_per_chunk=7)
    n_users = events["user_id"].nunique()
    assert result.chunks == -(-n_users // 7) > 1 and result.users == n_users
    assert result.model_version == "1"
    table = pd.read_parquet(out)
    assert len(table) == result.users_scored
    assert_rows_match(table, _service_answers(registered["bundle"], events, cutoff, top_k=4))
