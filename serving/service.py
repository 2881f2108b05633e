"""BentoML service: ``bentoml serve serving.service:InterestService``.

Endpoints: ``POST /predict`` (one user), ``POST /predict_batch`` (many users),
``GET /model`` (what is deployed), and BentoML's ``/livez``, ``/readyz`` (ready once the
model is loaded and warmed), ``/metrics`` (Prometheus) and OpenAPI docs at ``/``.

The model is the BentoML model ``INTEREST_BENTO_MODEL`` (default
``<ServingConfig.bento_model>:latest``) in the store at ``BENTOML_HOME``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from datetime import UTC, datetime
from typing import Any

import bentoml
from fastapi import FastAPI
from starlette.responses import JSONResponse

from core.arrays import SequenceArrays
from core.config import ServingConfig, load_config
from serving.batching import MicroBatcher, OverloadedError
from serving.encode import (
    Encoded,
    RequestError,
    build_responses,
    encode_requests,
    log_records,
)
from serving.limits import RequestGuard
from serving.predlog import PredictionLog
from serving.schemas import (
    BatchRequest,
    BatchResponse,
    ModelInfo,
    ModelRef,
    PredictRequest,
    PredictResponse,
)
from serving.store import bundle_path

logger = logging.getLogger("bentoml.serve.interest")  # shown by BentoML's log config
info_app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
OOV_EVENTS = bentoml.metrics.Counter(
    name="interest_oov_events", documentation="Request events with an unknown category"
)
REJECTED = bentoml.metrics.Counter(
    name="interest_rejected_requests", documentation="4xx/503 answers", labelnames=["reason"]
)
PREDLOG_DROPPED = bentoml.metrics.Counter(
    name="interest_predlog_dropped", documentation="Prediction-log records dropped"
)


def model_tag() -> str:
    """The BentoML model tag to serve (env ``INTEREST_BENTO_MODEL``)."""
    return os.environ.get("INTEREST_BENTO_MODEL") or f"{ServingConfig().bento_model}:latest"


def _error(status: int, field: str, message: str) -> JSONResponse:
    REJECTED.labels(reason=field.split("[")[0].split(".")[-1] or "body").inc()
    return JSONResponse({"error": f"{field}: {message}", "field": field}, status_code=status)


@bentoml.service(name="interest", traffic={"timeout": 30})
@bentoml.asgi_app(info_app, path="/")
class InterestService:
    """Next-category, purchase, churn and interest-trajectory predictions."""

    bento_model = bentoml.models.BentoModel(model_tag())

    def __init__(self) -> None:
        from core.bundle import load_bundle

        started = time.perf_counter()
        config = load_config()
        self.config = config.serving
        stored = self.bento_model
        self.bundle = load_bundle(bundle_path(stored))
        logger.info("loaded %s in %.1f s", stored.tag, time.perf_counter() - started)
        meta = self.bundle.metadata
        labels = stored.info.labels
        self.model_ref = ModelRef(
            name=labels.get("model_name", meta.get("model_name", stored.tag.name)),
            version=labels.get("version", str(meta.get("version", ""))),
            alias=labels.get("alias"),
            bento_tag=str(stored.tag),
        )
        spec = self.bundle.spec
        self.buckets = self.bundle.vocab.bucket_names(spec.n_buckets)
        self.batcher = MicroBatcher(
            self.bundle.predict,
            max_batch_rows=self.config.max_batch_users,
            max_pending_rows=self.config.max_batch_users * 16,
        )
        self.predlog = PredictionLog(
            config.paths.resolved().prediction_log,
            self.config.log_rotate_rows,
            summarise=self._log_rows,
        )
        self._ready = False
        started = time.perf_counter()
        self._warm_up()
        logger.info("warmed up in %.1f s; ready", time.perf_counter() - started)

    def _warm_up(self) -> None:
        # One request through the whole encode path, then every padded batch size of the
        # tf.function, before /readyz says yes.
        category = self.buckets[0] if not self.buckets[0].startswith("<") else "warmup"
        request = PredictRequest(
            events=[{"item_id": "0", "category_id": category, "behavior": "view", "timestamp": 0}],
            cutoff=datetime(1970, 1, 2, tzinfo=UTC),
        )
        encoded = encode_requests([request], self.bundle, self.config, datetime.now(UTC))
        self.bundle.predict(encoded.arrays.inputs())
        self.bundle.warmup()
        self._ready = True

    def __is_ready__(self) -> bool:
        return self._ready

    async def _answer(
        self, requests: list[PredictRequest], prefixes: list[str]
    ) -> list[PredictResponse]:
        now = datetime.now(UTC)
        encoded = await asyncio.to_thread(
            encode_requests, requests, self.bundle, self.config, now, prefixes
        )
        outputs = await self.batcher.run(encoded.arrays.inputs())
        responses = build_responses(
            requests,
            encoded,
            outputs,
            self.bundle.vocab,
            self.buckets,
            self.model_ref,
            self.bundle.feature_config.period,
            self.config.top_k,
        )
        OOV_EVENTS.inc(sum(encoded.oov_events))
        # Records are built on the log's writer thread, many requests per call.
        if not self.predlog.submit_deferred(
            (encoded, responses, datetime.now(UTC)), len(responses)
        ):
            PREDLOG_DROPPED.inc(len(responses))
        return responses

    def _log_rows(self, items: list[tuple[Encoded, list[PredictResponse], datetime]]) -> list:
        # Runs on the prediction-log thread; must never raise into it.
        try:
            encoded = Encoded(
                arrays=SequenceArrays.concat([e.arrays for e, _, _ in items]),
                cutoffs=[c for e, _, _ in items for c in e.cutoffs],
                oov_events=[n for e, _, _ in items for n in e.oov_events],
                request_ids=[r for e, _, _ in items for r in e.request_ids],
            )
            responses = [r for _, answered, _ in items for r in answered]
            records = log_records(encoded, responses, self.bundle.vocab, items[0][2])
        except Exception:  # noqa: BLE001 - logging must never fail a prediction
            rows = sum(len(answered) for _, answered, _ in items)
            logger.exception("prediction log: could not summarise %d samples", rows)
            PREDLOG_DROPPED.inc(rows)
            return []
        stamps = [at.isoformat() for _, answered, at in items for _ in answered]
        for record, stamp in zip(records, stamps, strict=True):
            record["logged_at"] = stamp
        return records

    async def _guarded(self, requests: list[PredictRequest], prefixes: list[str]) -> Any:
        try:
            return await self._answer(requests, prefixes)
        except RequestError as exc:
            return _error(400, exc.field, exc.message)
        except OverloadedError as exc:
            return _error(503, "body", f"overloaded, retry later ({exc})")

    @bentoml.api(route="/predict", input_spec=PredictRequest, output_spec=PredictResponse)
    async def predict(self, **request: Any) -> PredictResponse:
        """Rank one user's next categories; purchase/churn odds; interest trajectory."""
        result = await self._guarded([PredictRequest.model_construct(**request)], [""])
        return result[0] if isinstance(result, list) else result

    @bentoml.api(route="/predict_batch", input_spec=BatchRequest, output_spec=BatchResponse)
    async def predict_batch(self, users: list[PredictRequest]) -> BatchResponse:
        """Predict for many users; one bad entry rejects the batch, naming ``users[i]``."""
        if len(users) > self.config.max_batch_users:
            return _error(
                400,
                "users",
                f"{len(users)} users exceed the limit of {self.config.max_batch_users}",
            )
        result = await self._guarded(users, [f"users[{i}]." for i in range(len(users))])
        return BatchResponse(predictions=result) if isinstance(result, list) else result

    @info_app.get("/model", response_model=ModelInfo)
    def model_info(self) -> ModelInfo:
        """The deployed model: identity, metrics, feature-spec hash, training-data fingerprint."""
        meta = dict(self.bundle.metadata)
        spec = self.bundle.spec
        return ModelInfo(
            model=self.model_ref,
            metrics={k: _finite(v) for k, v in (meta.get("metrics") or {}).items()},
            feature_spec_hash=spec.spec_hash,
            vocab_hash=spec.vocab_hash,
            feature_spec=spec.__dict__,
            data_fingerprint=meta.get("data_fingerprint") or meta.get("fingerprint") or {},
            metadata=meta,
        )

    @bentoml.on_shutdown
    def close(self) -> None:
        """Write the queued prediction-log records and stop the model thread."""
        self.predlog.close()
        self.batcher.close()


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


InterestService.add_asgi_middleware(RequestGuard)
