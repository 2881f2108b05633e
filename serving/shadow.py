"""Shadow predictions: a challenger predicts for the served requests; only the log sees it.

After a micro-batch's served answers are built and their records written, the batch's
requests go to :class:`ShadowRunner`, which on its own thread encodes them with the
shadow's own bundle (vocabulary, feature config) through the same ``serving.encode``
functions, at the cutoffs the served model used, predicts, and writes records with
``shadow=True``, the shadow's ``model_name``/``model_version`` and the served requests'
``request_id``. Shadow predictions are never returned.

Durability: the served records are in the kernel before the answer (as without a shadow);
shadow records are written after it, so a killed server may lose the last few. A shadow
failure never touches the served answer: it is logged and counted in
``interest_shadow_failures{stage}`` (one per served prediction without a shadow record):
``encode`` (the shadow's history window or vocabulary leaves no events), ``predict`` (the
shadow model or record building raised), ``log`` (the write failed), ``backlog`` (the shadow
fell :data:`MAX_PENDING_BATCHES` micro-batches behind and the batch was dropped).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime

import bentoml

from core.config import ServingConfig
from core.predlog import PredictionRecord
from serving.deployed import Deployed
from serving.encode import Encoded, RequestError, build_responses, encode_requests, log_records
from serving.finish import Job
from serving.schemas import ModelRef
from serving.wire import UserRequest

logger = logging.getLogger("bentoml.serve.interest")
SHADOW_FAILURES = bentoml.metrics.Counter(
    name="interest_shadow_failures",
    documentation="Served predictions left without a shadow record, by stage",
    labelnames=["stage"],
)
MAX_PENDING_BATCHES = 16  # shadow micro-batches waiting before new ones are dropped


def shadow_records(
    jobs: Sequence[Job], shadow: Deployed, config: ServingConfig, logged_at: datetime
) -> tuple[list[PredictionRecord], int]:
    """The shadow's log records for served requests, and how many it could not encode.

    Args:
        jobs: the served micro-batch: each request group with its served encoding (for
            the effective cutoffs and request ids).
        shadow: the shadow model.
        config: serving limits and ``top_k``.
        logged_at: the records' ``logged_at``.

    Returns:
        Records in request order (``shadow=True``, the served ``request_id``), and the
        number of requests left out because the shadow's encoding rejected them.
    """
    requests, ids = [], []
    for served, encoded in jobs:
        for request, cutoff, request_id in zip(
            served, encoded.cutoffs, encoded.request_ids, strict=True
        ):
            # The served cutoff; the events as parsed (pydantic or msgspec, serving.wire).
            requests.append(UserRequest(request.user_id, request.top_k, cutoff, request.events))
            ids.append(request_id)
    encoded, kept = _encode(requests, shadow, config, logged_at)
    if encoded is None:
        return [], len(requests)
    encoded = replace(encoded, request_ids=[ids[i] for i in kept])
    kept_requests = [requests[i] for i in kept]
    bundle = shadow.bundle
    outputs = bundle.predict(encoded.arrays.inputs())
    responses = build_responses(
        kept_requests,
        encoded,
        outputs,
        bundle.vocab,
        shadow.buckets,
        ModelRef(**shadow.model.model_dump()),
        bundle.feature_config.period,
        config.top_k,
    )
    records = log_records(
        encoded, outputs, responses, bundle.vocab, shadow.buckets, logged_at, shadow=True
    )
    return records, len(requests) - len(kept)


def _encode(
    requests: list[UserRequest], shadow: Deployed, config: ServingConfig, now: datetime
) -> tuple[Encoded | None, list[int]]:
    # One call for the batch; if the shadow rejects a request (a shorter history window,
    # say), find which one by one and encode the rest.
    try:
        return encode_requests(requests, shadow.bundle, config, now), list(range(len(requests)))
    except RequestError:
        pass
    kept = []
    for i, request in enumerate(requests):
        try:
            encode_requests([request], shadow.bundle, config, now)
        except RequestError:
            continue
        kept.append(i)
    if not kept:
        return None, []
    return encode_requests([requests[i] for i in kept], shadow.bundle, config, now), kept


class ShadowRunner:
    """Runs shadow predictions on one thread of their own, in micro-batch order.

    Args:
        write: writes records to the prediction log (``PredictionLog.write``).
        config: serving limits and ``top_k``.
        max_pending: micro-batches allowed to wait; further ones are dropped and counted.
    """

    def __init__(
        self,
        write: Callable[[list[PredictionRecord]], None],
        config: ServingConfig,
        max_pending: int = MAX_PENDING_BATCHES,
    ) -> None:
        self._write = write
        self.config = config
        self.max_pending = max_pending
        self._pending = 0
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")

    def submit(self, shadow: Deployed, jobs: Sequence[Job]) -> None:
        """Queue the shadow's predictions for a served micro-batch; never raises."""
        rows = sum(len(requests) for requests, _ in jobs)
        with self._lock:
            if self._pending >= self.max_pending:
                _failed("backlog", rows)
                return
            self._pending += 1
        try:
            self._executor.submit(self._run, shadow, list(jobs), rows)
        except RuntimeError:  # shut down
            with self._lock:
                self._pending -= 1
            _failed("backlog", rows)

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every queued shadow batch is written (tests, shutdown)."""
        self._executor.submit(lambda: None).result(timeout_s)

    def close(self) -> None:
        """Finish the running shadow batch; drop queued ones."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _run(self, shadow: Deployed, jobs: list[Job], rows: int) -> None:
        tag = shadow.model.bento_tag
        try:
            try:
                records, unencoded = shadow_records(jobs, shadow, self.config, datetime.now(UTC))
            except Exception:  # noqa: BLE001 - the served answers are already out
                logger.warning("shadow %s failed on %d predictions", tag, rows, exc_info=True)
                _failed("predict", rows)
                return
            if unencoded:
                logger.warning("shadow %s could not encode %d requests", tag, unencoded)
                _failed("encode", unencoded)
            try:
                self._write(records)
            except Exception:  # noqa: BLE001
                logger.warning("shadow %s: %d records not logged", tag, len(records), exc_info=True)
                _failed("log", len(records))
        finally:
            with self._lock:
                self._pending -= 1


def _failed(stage: str, rows: int) -> None:
    if rows:
        SHADOW_FAILURES.labels(stage=stage).inc(rows)
