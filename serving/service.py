"""BentoML service: ``bentoml serve serving.service:InterestService``.

Endpoints: ``POST /predict`` (one user), ``POST /predict_batch`` (many users),
``GET /model`` (what is served, and whether the registry holds it as champion now),
``POST /admin/reload`` (serve another stored model, no restart), ``POST /admin/shadow`` and
``DELETE /admin/shadow`` (a challenger predicting in shadow), and BentoML's ``/livez``,
``/readyz`` (ready once the model is loaded and warmed; a small JSON body,
:mod:`serving.health`), ``/metrics`` (Prometheus) and
OpenAPI docs at ``/``. With ``serving.auth_token`` set, every route except health, metrics
and docs needs the bearer token (:mod:`serving.limits`), the admin ones included.

At start the service serves the BentoML model ``INTEREST_BENTO_MODEL`` (default
``<ServingConfig.bento_model>:latest``) from the store at ``BENTOML_HOME``, with the shadow
``INTEREST_SHADOW_MODEL`` if set, unless an admin call to this server already chose others
(a restarted worker rejoins its siblings; :mod:`serving.desired`). Reloads and shadow
changes reach every worker of ``bentoml serve --workers N`` within about a second plus the
load time, and the admin call answers once every live worker runs them (:mod:`serving.slots`);
only the worker that took the call reports its errors.

Request bodies are decoded by msgspec into columns (:mod:`serving.wire`; the pydantic models
of :mod:`serving.schemas` stay the documented schema and give every 400), all users of a
request are encoded in one pass, and answers are serialised once by msgspec. The batcher's
finish step builds a micro-batch's responses; its prediction-log records (matched by the
``request_id`` of each prediction; ``core.predlog``, CONTRACT.md) are built and written with
one ``os.write`` before the answers (``serving.log_write = "sync"``, the default: a log
that cannot be written gets those requests a 503 naming it), or by a background queue after
them with ``"queued"`` (flushed at shutdown, :mod:`serving.logqueue`). The shadow's records
(:mod:`serving.shadow`) are written after the answers.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import os
import time
from datetime import UTC, datetime
from typing import Any

import bentoml
import msgspec
from fastapi import FastAPI, Request
from pydantic import ValidationError
from starlette.responses import JSONResponse, Response

from core.config import ServingConfig, load_config
from core.predlog import PredictionLog, PredictionLogError
from serving.batching import MicroBatcher, OverloadedError
from serving.champion import CHAMPION, ChampionChecker, ChampionStatus, registry_lookup
from serving.deployed import (
    Deployed,
    ModelNotFoundError,
    describe,
    get_stored,
    identify,
    load_deployed,
    load_stored,
)
from serving.desired import Desired, DesiredFile
from serving.encode import RequestError, encode_requests
from serving.errors import quiet_client_errors, with_cutoff
from serving.finish import PREDLOG_FAILED, Job, answer_batch
from serving.health import ReadyBody
from serving.limits import RequestGuard
from serving.logqueue import LogQueue
from serving.openapi import document
from serving.schemas import (
    BatchResponse,
    ModelInfo,
    ModelRef,
    ModelTagRequest,
    PredictResponse,
    ReloadResponse,
    ShadowResponse,
)
from serving.shadow import ShadowRunner
from serving.slots import ModelSlots
from serving.stages import coming, observe, observe_parse, reached_batcher
from serving.wire import BatchRequestIODescriptor, PredictRequestIODescriptor, RequestBatch

logger = logging.getLogger("bentoml.serve.interest")  # shown by BentoML's log config
info_app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
INLINE_EVENTS = 500  # encode requests this small on the event loop (about 0.3 ms)
# Requests of at most this many users gather on the event loop and are predicted there
# together, without thread hops, while no larger batch is on the model thread (batching).
LOOP_ROWS = 32
FIRST_CHECK_WAIT_S = 20.0  # readiness waits this long at most for the first registry answer
OOV_EVENTS = bentoml.metrics.Counter(
    name="interest_oov_events", documentation="Request events with an unknown category"
)
REJECTED = bentoml.metrics.Counter(
    name="interest_rejected_requests", documentation="4xx/503 answers", labelnames=["reason"]
)


def model_tag() -> str:
    """The BentoML model tag to serve (env ``INTEREST_BENTO_MODEL``)."""
    return os.environ.get("INTEREST_BENTO_MODEL") or f"{ServingConfig().bento_model}:latest"


def _json(content: Any) -> Response:
    return Response(msgspec.json.encode(content), media_type="application/json")


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
        quiet_client_errors()  # a 4xx is one warning line (serving.limits), not a traceback
        project = load_config()
        paths = project.paths.resolved()
        self.config = project.serving
        self.predlog = PredictionLog(paths.prediction_log, self.config.log_rotate_rows)
        self.log_queue = (
            LogQueue(self.predlog.write, self.config.log_queue_batches, PREDLOG_FAILED.inc)
            if self.config.log_write == "queued"
            else None
        )
        self.shadows = ShadowRunner(self.predlog.write, self.config)
        self.checker = ChampionChecker(registry_lookup(project), self.config.champion_check_s)
        desired = DesiredFile.for_server(paths.state_dir)
        wanted = desired.read()
        stored = self._first_model(wanted)
        self.checker.watch(identify(stored))
        self.checker.start()  # the first registry check overlaps loading
        served = load_stored(stored, self.config)
        self._attach(served)
        self.slots = ModelSlots(served, None, self._load, self._attach, self._swapped, desired)
        shadow = wanted.shadow_tag if wanted else os.environ.get("INTEREST_SHADOW_MODEL") or None
        if shadow:
            try:
                self.slots.set_shadow(shadow, share=False)
            except Exception as exc:  # noqa: BLE001 - serve without the shadow
                self.slots.shadow_error = f"cannot load shadow {shadow}: {exc}"
                logger.exception("serving without a shadow")
        self.slots.follow()
        if not self.checker.wait_first(FIRST_CHECK_WAIT_S):
            logger.warning(
                "no registry answer after %.0f s; is_champion unknown", FIRST_CHECK_WAIT_S
            )
        logger.info("serving %s; ready in %.1f s", served.model, time.perf_counter() - started)
        # The start-up heap (TensorFlow, the model, pandas) never dies: out of the collector's
        # sight, full collections no longer walk it while requests wait (gc.freeze).
        gc.collect()
        gc.freeze()
        self._ready = True

    def _first_model(self, wanted: Desired | None) -> bentoml.Model:
        if wanted is not None and wanted.model_tag != str(self.bento_model.tag):
            try:
                return get_stored(wanted.model_tag)
            except ModelNotFoundError:
                logger.exception("%s, chosen by a reload of this server, is gone", wanted)
        return self.bento_model

    def _load(self, tag: str) -> Deployed:
        return load_deployed(tag, self.config)

    def _attach(self, deployed: Deployed) -> None:
        # Each served model gets its own batcher, so one micro-batch never mixes two models.
        deployed.batcher = MicroBatcher(
            deployed.bundle.predict,
            max_batch_rows=self.config.max_batch_users,
            max_pending_rows=self.config.max_batch_users * 16,
            finish=functools.partial(self._finish_batch, deployed),
            observe=functools.partial(observe, deployed.model.version),
            loop_rows=LOOP_ROWS,
            coming=coming,  # requests still parsing or encoding join the next model call
        )
        self.checker.current(deployed.model)  # answers carry the right alias from the swap on

    def _swapped(self, served: Deployed) -> None:
        self.checker.watch(served.model)

    def __is_ready__(self) -> bool:
        return self._ready

    def _ref(self, deployed: Deployed, status: ChampionStatus | None = None) -> ModelRef:
        status = status or self.checker.cached(deployed.model)
        alias = CHAMPION if status.is_champion else None
        return ModelRef(**deployed.model.model_dump(), alias=alias)

    async def _answer(self, batch: RequestBatch, prefixes: list[str]) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        with self.slots.acquire() as served:  # one model from encoding to the answer
            version = served.model.version
            observe_parse(version)
            started = time.perf_counter()
            args = (batch, served.bundle, self.config, now, prefixes)
            try:
                if len(batch.time_ns) <= INLINE_EVENTS:
                    encoded = encode_requests(*args)  # cheaper than the hop to a thread
                else:
                    encoded = await asyncio.to_thread(encode_requests, *args)
            except RequestError as exc:  # name the cutoff used and the history window
                history = served.bundle.feature_config.history
                said = with_cutoff(exc.field, exc.message, batch.users, prefixes, now, history)
                raise RequestError(exc.field, said) from exc
            observe(version, "encode", time.perf_counter() - started)
            assert served.batcher is not None
            job = (batch.users, encoded)
            reached_batcher()
            responses = await served.batcher.run(encoded.arrays.inputs(), job)
        OOV_EVENTS.inc(sum(encoded.oov_events))
        return responses

    def _finish_batch(
        self, served: Deployed, jobs: list[Job], outputs: list[dict[str, Any]]
    ) -> list[list[dict[str, Any]]]:
        answered = answer_batch(
            served, self._ref(served), jobs, outputs, self.predlog, self.config, self.log_queue
        )
        if (shadow := self.slots.shadow) is not None:
            # On its own thread, after these answers and (queued) after their records.
            if self.log_queue is None:
                self.shadows.submit(shadow, jobs)
            else:
                self.log_queue.after(lambda: self.shadows.submit(shadow, jobs))
        return answered

    async def _guarded(
        self, batch: RequestBatch, prefixes: list[str]
    ) -> list[dict[str, Any]] | JSONResponse:
        try:
            return await self._answer(batch, prefixes)
        except RequestError as exc:
            return _error(400, exc.field, exc.message)
        except OverloadedError as exc:
            return _error(503, "body", f"overloaded, retry later ({exc})")
        except PredictionLogError as exc:
            return _error(503, "prediction_log", f"not answered: {exc}")

    # Bodies are parsed by msgspec into columns (serving.wire; PredictRequest/BatchRequest stay
    # the documented schema and the source of every 400); answers are dicts in
    # PredictResponse's JSON shape, serialised once by msgspec: no per-item validation.
    @bentoml.api(
        route="/predict", input_spec=PredictRequestIODescriptor, output_spec=PredictResponse
    )
    async def predict(self, events: RequestBatch, **_unset: Any) -> Response:
        """Rank one user's next categories; purchase/churn odds; interest trajectory."""
        result = await self._guarded(events, [""])
        return _json(result[0]) if isinstance(result, list) else result

    @bentoml.api(
        route="/predict_batch", input_spec=BatchRequestIODescriptor, output_spec=BatchResponse
    )
    async def predict_batch(self, users: RequestBatch) -> Response:
        """Predict for many users; one bad entry rejects the batch, naming ``users[i]``."""
        if len(users) > self.config.max_batch_users:
            return _error(
                400,
                "users",
                f"{len(users)} users exceed the limit of {self.config.max_batch_users}",
            )
        result = await self._guarded(users, [f"users[{i}]." for i in range(len(users))])
        return _json({"predictions": result}) if isinstance(result, list) else result

    @info_app.get("/model", response_model=ModelInfo)
    def model_info(self) -> ModelInfo:
        """The served model: identity, champion check, shadow, metrics, feature contract."""
        served = self.slots.served
        status = self.checker.current(served.model)  # asks the registry if the cache is stale
        return describe(
            served, self._ref(served, status), status, self.slots.shadow, self.slots.shadow_error
        )

    @info_app.post("/admin/reload", response_model=ReloadResponse)
    async def reload(self, request: Request) -> ReloadResponse | JSONResponse:
        """Serve the stored model ``{"model_tag": "interest-evolution:<tag>"}`` from now on.

        Loads and warms it off the request path, then swaps it in between micro-batches;
        requests already running finish on the old model. 404: no such model; 422: it
        cannot be loaded (the old model keeps serving). The other workers of this server
        follow within about a second; the answer waits for them (:mod:`serving.slots`).
        """
        body = await _tag_body(request)
        if isinstance(body, JSONResponse):
            return body
        try:
            new, old = await asyncio.to_thread(self.slots.reload, body.model_tag)
        except ModelNotFoundError as exc:
            return _error(404, "model_tag", str(exc))
        except Exception as exc:  # noqa: BLE001 - the old model keeps serving
            logger.exception("reload to %s failed", body.model_tag)
            served = self.slots.served.model.bento_tag
            return _error(422, "model_tag", f"cannot load it, still serving {served}: {exc}")
        return ReloadResponse(model=self._ref(new), previous=old.model)

    @info_app.post("/admin/shadow", response_model=ShadowResponse)
    async def set_shadow(self, request: Request) -> ShadowResponse | JSONResponse:
        """Predict in shadow with ``{"model_tag": ...}``: logged with ``shadow=true``, never
        returned. 404: no such model; 422: it cannot be loaded (the old shadow stays)."""
        body = await _tag_body(request)
        if isinstance(body, JSONResponse):
            return body
        return await self._change_shadow(body.model_tag)

    @info_app.delete("/admin/shadow", response_model=ShadowResponse)
    async def remove_shadow(self) -> ShadowResponse | JSONResponse:
        """Stop shadow predictions."""
        return await self._change_shadow(None)

    @info_app.api_route(
        "/admin/shadow", methods=["GET", "PUT", "PATCH", "OPTIONS"], include_in_schema=False
    )
    def shadow_methods(self) -> JSONResponse:
        """405 naming both methods (Starlette's own 405 names only the first route's)."""
        return JSONResponse(
            {"error": "use POST or DELETE", "field": "method"},
            status_code=405,
            headers={"Allow": "DELETE, POST"},
        )

    async def _change_shadow(self, tag: str | None) -> ShadowResponse | JSONResponse:
        try:
            new, old = await asyncio.to_thread(self.slots.set_shadow, tag)
        except ModelNotFoundError as exc:
            return _error(404, "model_tag", str(exc))
        except Exception as exc:  # noqa: BLE001 - the old shadow stays
            logger.exception("shadow %s failed to load", tag)
            return _error(422, "model_tag", f"cannot load it as the shadow: {exc}")
        return ShadowResponse(
            shadow=new.model if new is not None else None,
            previous=old.model if old is not None else None,
        )

    @bentoml.on_shutdown
    def close(self) -> None:
        """Stop the threads, let running finish steps write, close the log."""
        self.checker.close()
        self.slots.close()
        if self.log_queue is not None:
            self.log_queue.close()  # every queued record (and shadow step) before the log closes
        self.shadows.close()
        self.predlog.close()


async def _tag_body(request: Request) -> ModelTagRequest | JSONResponse:
    try:
        return ModelTagRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        return _error(422, field, first["msg"])


InterestService.add_asgi_middleware(RequestGuard)
InterestService.add_asgi_middleware(ReadyBody)  # /readyz answers a small JSON body
document(InterestService)
