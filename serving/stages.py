"""Per-stage request timings as one Prometheus histogram, labelled by stage and model version.

``interest_stage_seconds{stage, model_version}`` on ``/metrics``, stages in request order:

- ``parse``: the request guard saw the request -> our handler starts (body read, BentoML's
  routing and pydantic validation);
- ``encode``: validation against the serving limits and the shared feature code;
- ``queue``: waiting in the micro-batcher for the model;
- ``model``: the model call of the micro-batch (observed once per request in it);
- ``respond``: building the micro-batch's answers (their JSON text: about 20 us more);
- ``log_write``: building and writing the micro-batch's prediction-log records.
"""

from __future__ import annotations

import time
from contextvars import ContextVar

import bentoml

STAGES: tuple[str, ...] = ("parse", "encode", "queue", "model", "respond", "log_write")
# 50 us .. 2.5 s: the stages of one request run from tens of microseconds to (queued) seconds.
_BUCKETS = (5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 1, 2.5)
STAGE_SECONDS = bentoml.metrics.Histogram(
    name="interest_stage_seconds",
    documentation="Seconds per request stage: " + ", ".join(STAGES),
    labelnames=["stage", "model_version"],
    buckets=_BUCKETS,
)
#: ``time.perf_counter()`` when the request guard received the request (0: unknown).
REQUEST_START: ContextVar[float] = ContextVar("interest_request_start", default=0.0)


def observe(version: str, stage: str, seconds: float, count: int = 1) -> None:
    """Record ``seconds`` for ``stage`` of ``model_version``, ``count`` times (one per request)."""
    histogram = STAGE_SECONDS.labels(stage=stage, model_version=version)
    for _ in range(count):
        histogram.observe(seconds)


def observe_parse(version: str) -> None:
    """Record the parse stage: from the guard's start stamp to now (skipped without a stamp)."""
    start = REQUEST_START.get()
    if start:
        observe(version, "parse", time.perf_counter() - start)
