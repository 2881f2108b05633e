"""The finish step of a served micro-batch: responses, then their log records in one write.

Runs on the batcher's finish thread (:mod:`serving.batching`), once per model batch, before
any request of the batch is answered: so every 200 has its record in the kernel.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import bentoml
import numpy as np

from core.arrays import SequenceArrays
from core.config import ServingConfig
from core.predlog import PredictionLog, PredictionLogError
from serving.deployed import Deployed
from serving.encode import Encoded, build_responses, log_records
from serving.logqueue import LogQueue
from serving.schemas import ModelRef
from serving.stages import observe

logger = logging.getLogger("bentoml.serve.interest")
PREDLOG_FAILED = bentoml.metrics.Counter(
    name="interest_predlog_failed",
    documentation="Predictions without a log record: answered 503 (sync) or lost (queued)",
)
Job = tuple[Sequence[Any], Encoded]  # one request group: requests (user_id, top_k, ...), encoding


def answer_batch(
    served: Deployed,
    model: ModelRef,
    jobs: list[Job],
    outputs: list[dict[str, Any]],
    predlog: PredictionLog,
    config: ServingConfig,
    log_queue: LogQueue | None = None,
) -> list[list[dict[str, Any]]]:
    """Build the responses of a micro-batch and log all their records with one write.

    The responses are plain dicts in ``PredictResponse``'s JSON shape (:func:`build_responses`).
    With ``log_queue`` the records are built and written by its thread after the answers
    (``serving.log_write = "queued"``); without it, here, before them (``"sync"``).

    Args:
        served: the model that predicted (bundle, buckets).
        model: its identity as the answers state it.
        jobs: the batch's request groups, in order.
        outputs: each group's model outputs.
        predlog: the prediction log.
        config: ``top_k``.
        log_queue: the background log writer, if records are written after the answers.

    Raises:
        PredictionLogError: (sync only) the records could not be built or written (503).
    """
    bundle, version = served.bundle, served.model.version
    started = time.perf_counter()
    answered = [
        build_responses(
            requests,
            encoded,
            out,
            bundle.vocab,
            served.buckets,
            model,
            bundle.feature_config.period,
            config.top_k,
        )
        for (requests, encoded), out in zip(jobs, outputs, strict=True)
    ]
    rows = sum(len(r) for r in answered)
    built = time.perf_counter()
    observe(version, "respond", built - started, len(jobs))
    logged_at = datetime.now(UTC)

    def build() -> list[Any]:
        return log_records(
            _merge([e for _, e in jobs]),
            _merge_outputs(outputs),
            [r for batch in answered for r in batch],
            bundle.vocab,
            served.buckets,
            logged_at,
        )

    if log_queue is not None:
        log_queue.submit(build, rows)
        observe(version, "log_write", time.perf_counter() - built, len(jobs))
        return answered
    try:
        predlog.write(build())
        observe(version, "log_write", time.perf_counter() - built, len(jobs))
    except PredictionLogError:
        PREDLOG_FAILED.inc(rows)
        logger.exception("prediction log: %d predictions answered 503", rows)
        raise
    except Exception as exc:  # a record that cannot be built cannot be written either
        PREDLOG_FAILED.inc(rows)
        logger.exception("prediction log: could not build %d records", rows)
        raise PredictionLogError(f"prediction log: cannot build records: {exc}") from exc
    return answered


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
