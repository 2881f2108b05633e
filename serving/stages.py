"""Per-stage request timings as one Prometheus histogram, labelled by stage and model version.

``interest_stage_seconds{stage, model_version}`` on ``/metrics``, stages in request order:

- ``parse``: the request guard saw the request -> our handler starts (body read, BentoML's
  routing and pydantic validation);
- ``encode``: validation against the serving limits and the shared feature code;
- ``queue``: waiting in the micro-batcher for the model;
- ``model``: the model call of the micro-batch (observed once per request in it);
- ``respond``: building the micro-batch's answers (their JSON text: about 20 us more);
- ``log_write``: building and writing the micro-batch's prediction-log records;

and ``request``: the whole request inside the server, from the guard to the last byte
handed to the server (BentoML's own response handling included), for answered predictions.
"""

from __future__ import annotations

import functools
import time
from contextvars import ContextVar
from typing import Any

import bentoml

STAGES: tuple[str, ...] = ("parse", "encode", "queue", "model", "respond", "log_write", "request")
# 50 us .. 2.5 s: the stages of one request run from tens of microseconds to (queued) seconds.
_BUCKETS = (5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 1, 2.5)
STAGE_SECONDS = bentoml.metrics.Histogram(
    name="interest_stage_seconds",
    documentation="Seconds per request stage: " + ", ".join(STAGES),
    labelnames=["stage", "model_version"],
    buckets=_BUCKETS,
)
#: Set by the request guard per request: ``start`` (``time.perf_counter()``) and the
#: ``version`` that answered it (set by the handler; a dict, so the guard sees it even when
#: the handler ran in a copied context).
REQUEST: ContextVar[dict[str, Any] | None] = ContextVar("interest_request", default=None)


@functools.lru_cache(maxsize=256)
def _child(stage: str, version: str) -> Any:
    return STAGE_SECONDS.labels(stage=stage, model_version=version)


def observe(version: str, stage: str, seconds: float, count: int = 1) -> None:
    """Record ``seconds`` for ``stage`` of ``model_version``, ``count`` times (one per request)."""
    histogram = _child(stage, version)
    for _ in range(count):
        histogram.observe(seconds)


PREDICT_PATHS = ("/predict", "/predict_batch")
_coming = [0]  # prediction requests between the guard and the micro-batcher (loop thread)


def start_request(path: str) -> dict[str, Any]:
    """Called by the request guard: stamp the start of a request (to ``path``)."""
    state = {"start": time.perf_counter(), "version": None, "coming": path in PREDICT_PATHS}
    _coming[0] += state["coming"]
    REQUEST.set(state)
    return state


def coming() -> int:
    """Prediction requests received and not yet handed to the micro-batcher (being parsed
    and encoded): the batcher waits a little for them to share a model call."""
    return _coming[0]


def reached_batcher() -> None:
    """Called by the handler as its request is handed to the micro-batcher."""
    state = REQUEST.get()
    if state is not None and state["coming"]:
        state["coming"] = False
        _coming[0] -= 1


def observe_parse(version: str) -> None:
    """Record the parse stage (the guard's stamp to now) and which version answers."""
    state = REQUEST.get()
    if state is not None:
        state["version"] = version
        observe(version, "parse", time.perf_counter() - state["start"])


def end_request(state: dict[str, Any]) -> None:
    """Called by the request guard after the response: the ``request`` stage, if predicted."""
    if state["coming"]:  # answered before reaching the batcher (a 4xx, say)
        state["coming"] = False
        _coming[0] -= 1
    if state["version"] is not None:
        observe(state["version"], "request", time.perf_counter() - state["start"])
