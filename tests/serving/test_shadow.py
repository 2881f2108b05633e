"""Shadow records: the shadow's own encoding, the served request ids, never a served failure."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from prometheus_client import REGISTRY

from core.config import ServingConfig
from core.predlog import PredictionLog, read_prediction_log
from serving.deployed import Deployed
from serving.encode import encode_requests
from serving.schemas import ModelId, PredictRequest
from serving.shadow import ShadowRunner, shadow_records
from serving.wire import parse_batch
from tests.serving.test_service_e2e import small_bundle

NOW = datetime(2024, 1, 12, tzinfo=UTC)
CONFIG = ServingConfig()


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Deployed, Deployed]:
    """The served model (v7, 7-day history) and a shadow (v8, another vocabulary, 1 day)."""
    from modelkit.bundle import load_bundle

    tmp = tmp_path_factory.mktemp("shadow")
    out = []
    for version, seed, history in (("7", 0, "7D"), ("8", 1, "1D")):
        bundle = load_bundle(small_bundle(tmp / version, version, seed, history))
        model = ModelId(name="interest-evolution", version=version, bento_tag=f"ie:{version}")
        out.append(Deployed(model, bundle, bundle.vocab.bucket_names(bundle.spec.n_buckets)))
    return out[0], out[1]


def _request(user: str | None, days_ago: float, top_k: int | None = None) -> PredictRequest:
    end = NOW - timedelta(days=days_ago)
    events = [
        {
            "item_id": f"i{i}",
            "category_id": ["c1", "c2", "c3", "c4"][i % 4],
            "behavior": "view",
            "timestamp": (end - timedelta(hours=2 * (4 - i))).isoformat(),
        }
        for i in range(4)
    ]
    return PredictRequest(user_id=user, events=events, top_k=top_k)


def _served_jobs(served: Deployed, groups: list[list[PredictRequest]]) -> list:
    # As the service makes them: bodies parsed by serving.wire, its per-user requests.
    jobs = []
    for requests in groups:
        users = [r.model_dump(mode="json", exclude_none=True) for r in requests]
        batch = parse_batch(json.dumps({"users": users}).encode())
        jobs.append((batch.users, encode_requests(batch, served.bundle, CONFIG, NOW)))
    return jobs


def test_shadow_records_use_the_shadows_encoding_and_the_served_ids(models):
    served, shadow = models
    assert served.bundle.vocab.categories != shadow.bundle.vocab.categories
    groups = [[_request("a", 0.1, top_k=3)], [_request(None, 0.2), _request("c", 0.3)]]
    jobs = _served_jobs(served, groups)
    records, skipped = shadow_records(jobs, shadow, CONFIG, NOW)
    assert skipped == 0
    ids = [i for _, encoded in jobs for i in encoded.request_ids]
    cutoffs = [c for _, encoded in jobs for c in encoded.cutoffs]
    assert [r.request_id for r in records] == ids
    assert [r.cutoff for r in records] == cutoffs
    assert all(r.shadow and r.model_version == "8" for r in records)
    assert records[1].user_hash is None and records[0].user_hash is not None
    flat = [r for group in groups for r in group]
    requests = [r.model_copy(update={"cutoff": c}) for r, c in zip(flat, cutoffs, strict=True)]
    own = encode_requests(requests, shadow.bundle, CONFIG, NOW)  # the shadow's vocabulary
    expected = shadow.bundle.predict(own.arrays.inputs())
    np.testing.assert_allclose([r.p_buy for r in records], expected["buy"], atol=1e-6)
    assert set(records[0].trajectory[0]) == set(shadow.buckets)


def test_requests_the_shadow_cannot_encode_are_left_out_and_counted(models):
    served, shadow = models
    groups = [[_request("recent", 0.1), _request("old", 3.0)]]  # 3 days: outside 1D history
    records, skipped = shadow_records(_served_jobs(served, groups), shadow, CONFIG, NOW)
    assert skipped == 1 and len(records) == 1


def _failures(stage: str) -> float:
    return REGISTRY.get_sample_value("interest_shadow_failures_total", {"stage": stage}) or 0.0


def test_the_runner_logs_shadow_records_and_swallows_failures(models, tmp_path: Path):
    served, shadow = models
    log = PredictionLog(tmp_path / "log", rotate_rows=100)
    runner = ShadowRunner(log.write, CONFIG)
    jobs = _served_jobs(served, [[_request("a", 0.1), _request("b", 0.2)]])
    runner.submit(shadow, jobs)
    runner.flush(30)
    frame = read_prediction_log(tmp_path / "log")
    assert frame["shadow"].tolist() == [True, True]
    assert frame["request_id"].tolist() == jobs[0][1].request_ids

    def broken(inputs):
        raise RuntimeError("shadow model broke")

    before = _failures("predict")
    broken_bundle = replace(shadow.bundle, predictor=SimpleNamespace(predict=broken))
    bad = Deployed(shadow.model, broken_bundle, shadow.buckets)
    runner.submit(bad, jobs)  # never raises
    runner.flush(30)
    assert _failures("predict") == before + 2

    before = _failures("backlog")
    full = ShadowRunner(log.write, CONFIG, max_pending=0)
    full.submit(shadow, jobs)
    assert _failures("backlog") == before + 2
    runner.close()
    full.close()
    log.close()
