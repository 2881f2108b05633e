"""BentoML service: ``bentoml serve serving.service:InterestService``.

Endpoints: ``POST /predict`` (one user), ``POST /predict_batch`` (many users),
``GET /model`` (what is deployed), and BentoML's ``/livez``, ``/readyz`` (ready once the
model is loaded and warmed), ``/metrics`` (Prometheus) and OpenAPI docs at ``/``.

The model is the BentoML model ``INTEREST_BENTO_MODEL`` (default
``<ServingConfig.bento_model>:latest``) in the store at ``BENTOML_HOME``.

Every 200 from ``/predict`` or ``/predict_batch`` has its prediction-log record (matched by
the ``request_id`` of each prediction) in the kernel before the response is sent: the
batcher's finish step builds a micro-batch's responses and records and writes the records
with one ``os.write`` (``core.predlog``; CONTRACT.md). If the log cannot be written, those
requests get a 503 naming the log problem rather than an answer that leaves no record.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from datetime import UTC, datetime
from typing import Any

import bentoml
import numpy as np
from fastapi import FastAPI
from starlette.responses import JSONResponse

from core.arrays import SequenceArrays
from core.config import ServingConfig, load_config
from core.predlog import PredictionLog, PredictionLogError
from modelkit.bundle import load_bundle
from serving.batching import MicroBatcher, OverloadedError
from serving.encode import (
    Encoded,
    RequestError,
    build_responses,
    encode_requests,
    log_records,
)
from serving.limits import RequestGuard
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
PREDLOG_FAILED = bentoml.metrics.Counter(
    name="interest_predlog_failed",
    documentation="Predictions answered 503 because their log record could not be written",
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
        self.predlog = PredictionLog(
            config.paths.resolved().prediction_log, self.config.log_rotate_rows
        )
        self.batcher = MicroBatcher(
            self.bundle.predict,
            max_batch_rows=self.config.max_batch_users,
            max_pending_rows=self.config.max_batch_users * 16,
            finish=self._finish_batch,
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
        responses = await self.batcher.run(encoded.arrays.inputs(), (requests, encoded))
        OOV_EVENTS.inc(sum(encoded.oov_events))
        return responses

    def _finish_batch(
        self, jobs: list[tuple[list[PredictRequest], Encoded]], outputs: list[dict[str, Any]]
    ) -> list[list[PredictResponse]]:
        # Runs on the batcher's finish thread, once per model batch: responses for every
        # request, then all their log records in one write, before any of them is answered.
        answered = [
            build_responses(
                requests,
                encoded,
                out,
                self.bundle.vocab,
                self.buckets,
                self.model_ref,
                self.bundle.feature_config.period,
                self.config.top_k,
            )
            for (requests, encoded), out in zip(jobs, outputs, strict=True)
        ]
        rows = sum(len(r) for r in answered)
        try:
            records = log_records(
                _merge([e for _, e in jobs]),
                _merge_outputs(outputs),
                [r for batch in answered for r in batch],
                self.bundle.vocab,
                self.buckets,
                datetime.now(UTC),
            )
            self.predlog.write(records)
        except PredictionLogError:
            PREDLOG_FAILED.inc(rows)
            logger.exception("prediction log: %d predictions answered 503", rows)
            raise
        except Exception as exc:  # a record that cannot be built cannot be written either
            PREDLOG_FAILED.inc(rows)
            logger.exception("prediction log: could not build %d records", rows)
            raise PredictionLogError(f"prediction log: cannot build records: {exc}") from exc
        return answered

    async def _guarded(
        self, requests: list[PredictRequest], prefixes: list[str]
    ) -> list[PredictResponse] | JSONResponse:
        try:
            return await self._answer(requests, prefixes)
        except RequestError as exc:
            return _error(400, exc.field, exc.message)
        except OverloadedError as exc:
            return _error(503, "body", f"overloaded, retry later ({exc})")
        except PredictionLogError as exc:
            return _error(503, "prediction_log", f"not answered: {exc}")

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
        """Stop the model thread, let a running finish step write, close the log."""
        self.batcher.close()
        self.predlog.close()


def _merge(parts: list[Encoded]) -> Encoded:
    if len(parts) == 1:
        return parts[0]
    return Encoded(
        arrays=SequenceArrays.concat([e.arrays for e in parts]),
        cutoffs=[c for e in parts for c in e.cutoffs],
        oov_events=[n for e in parts for n in e.oov_events],
        request_ids=[r for e in parts for r in e.request_ids],
    )


def _merge_outputs(parts: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([np.asarray(p[name]) for p in parts]) for name in parts[0]}


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


InterestService.add_asgi_middleware(RequestGuard)
