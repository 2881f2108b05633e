"""Request -> canonical events -> the training feature code -> model outputs -> response.

Serving encodes with ``core.features.build_features(..., with_labels=False)``, the very
function training used, so features cannot drift between the two. Checks that need the
deployed configuration or the clock raise :class:`RequestError` naming the field.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from core.arrays import SequenceArrays
from core.config import ServingConfig
from core.hashing import hash_user
from core.predlog import RANKED_CATEGORIES, PredictionRecord, finite, rank_categories
from core.profile import PROFILE_COLUMNS, summarize_columns
from core.schema import conform
from core.textstats import text_profile
from core.vocab import OOV_INDEX
from serving.schemas import ModelRef, PredictRequest
from serving.text import attach_request_text, reads_text
from serving.wire import RequestBatch

TRAJECTORY_TOP = 5  # buckets reported per future period
_NUDGE_NS = 1_000_000  # 1 ms: the cutoff moves just past tolerated "future" events
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def _ns(value: datetime) -> int:
    # Exact integer nanoseconds; float timestamps would lose microseconds.
    return (value - _EPOCH) // _US * 1000


class RequestError(ValueError):
    """Bad input that the request schema cannot catch; ``field`` locates it in the body."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass
class Encoded:
    """Model inputs for a list of requests, one sample per request, in request order."""

    arrays: SequenceArrays
    cutoffs: list[datetime]
    oov_events: list[int]
    request_ids: list[str]


def resolve_cutoffs(
    batch: RequestBatch, config: ServingConfig, now: datetime, prefixes: Sequence[str]
) -> np.ndarray:
    """Validate requests against the serving limits; return each one's cutoff (int64 ns).

    The cutoff is the request's ``cutoff`` or ``now``. Events later than the cutoff by at
    most ``config.max_future_skew_s`` (client clock skew) are kept and the cutoff moves 1 ms
    past the last of them; later events are rejected. One vectorised pass over all events.

    Raises:
        RequestError: too many events, or an event from the future (the first request in
            order that has either, naming the field with its prefix ``users[i].``).
    """
    counts = np.diff(batch.stops, prepend=0)
    now_ns = _ns(now)
    cutoff = np.array([now_ns if u.cutoff is None else _ns(u.cutoff) for u in batch.users])
    limit = cutoff + timedelta(seconds=config.max_future_skew_s) // _US * 1000
    late = batch.time_ns > np.repeat(limit, counts)
    too_many = counts > config.max_events
    if too_many.any() or late.any():
        bad_user = np.flatnonzero(
            too_many | (np.bincount(_owners(counts)[late], minlength=len(counts)) > 0)
        )
        _raise_first(batch, int(bad_user[0]), late, config, now, prefixes)
    last = np.maximum.reduceat(batch.time_ns, batch.starts) if len(batch.time_ns) else cutoff
    return np.where(last >= cutoff, np.maximum(cutoff, last + _NUDGE_NS), cutoff)


def _owners(counts: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(counts)), counts)


def _raise_first(
    batch: RequestBatch,
    user: int,
    late: np.ndarray,
    config: ServingConfig,
    now: datetime,
    prefixes: Sequence[str],
) -> None:
    request, prefix = batch.users[user], prefixes[user]
    if len(request.events) > config.max_events:
        raise RequestError(
            f"{prefix}events",
            f"{len(request.events)} events exceed the limit of {config.max_events}",
        )
    start = int(batch.starts[user])
    i = int(np.argmax(late[start : int(batch.stops[user])]))
    stamp = _EPOCH + timedelta(microseconds=int(batch.time_ns[start + i]) // 1000)
    cutoff = request.cutoff or now
    raise RequestError(
        f"{prefix}events[{i}].timestamp",
        f"{stamp.isoformat()} is after the cutoff {cutoff.isoformat()} "
        f"by more than {config.max_future_skew_s:g} s",
    )


def events_frame(keys: Sequence[str], requests: Sequence[Any]) -> pd.DataFrame:
    """Return the canonical events frame of ``requests``, user ids replaced by ``keys``.

    The hot path skips pandas (:func:`encode_requests` feeds ``encode_codes``); this frame
    is the same events in the canonical schema, for parity checks and offline replays.
    """
    batch = _as_batch(requests)
    events = batch.events
    cols: dict[str, Any] = {
        "user_id": np.repeat(np.asarray(keys, dtype=object), np.diff(batch.stops, prepend=0)),
        "item_id": [e.item_id for e in events],
        "category_id": batch.category_id,
        "behavior": batch.behavior,
        "timestamp": pd.to_datetime(batch.time_ns, utc=True),
    }
    for name in ("price", "brand", "session_id", "text", "item_text"):
        cols[name] = [getattr(e, name) for e in events]
    return conform(pd.DataFrame(cols))


def _as_batch(requests: Sequence[PredictRequest] | RequestBatch) -> RequestBatch:
    return requests if isinstance(requests, RequestBatch) else RequestBatch.from_requests(requests)


def encode_requests(
    requests: Sequence[PredictRequest] | RequestBatch,
    bundle: Any,
    config: ServingConfig,
    now: datetime,
    prefixes: Sequence[str] | None = None,
) -> Encoded:
    """Validate and encode requests into one :class:`SequenceArrays` (request order).

    All requests' events go through the shared feature code in one pass
    (``core.features.build_inputs_at``: each user at its own cutoff), no loop per user.

    Args:
        requests: parsed requests (pydantic, or the columns of :mod:`serving.wire`).
        bundle: a ``modelkit.bundle.Bundle`` (vocab, feature_config).
        config: serving limits.
        now: the server clock (UTC), the default cutoff.
        prefixes: field prefix per request for error messages (``"users[3]."``).

    Raises:
        RequestError: see :func:`resolve_cutoffs`; or no event left inside the history window.
    """
    from core.encoding import encode_behaviors, encode_codes
    from core.features import build_inputs_at

    batch = _as_batch(requests)
    n = len(batch)
    prefixes = prefixes or [""] * n
    cutoffs = resolve_cutoffs(batch, config, now, prefixes)
    keys = np.array([f"r{i:06d}" for i in range(n)], dtype=object)  # ascending, as required
    owners = _owners(np.diff(batch.stops, prepend=0))
    cat = bundle.vocab.encode(batch.category_id)
    events = encode_codes(
        owners, keys, batch.time_ns, cat, encode_behaviors(batch.behavior), bundle.vocab
    )
    arrays = build_inputs_at(events, cutoffs, bundle.vocab, bundle.feature_config)
    if len(arrays.user_id) < n:  # samples come in user order; name the first user left out
        missing = sorted(set(range(n)) - {int(str(k)[1:]) for k in arrays.user_id})[0]
        raise RequestError(
            f"{prefixes[missing]}events", "no events inside the model's history window"
        )
    if reads_text(bundle):
        attach_request_text(arrays, keys.tolist(), batch, bundle)
    oov = np.bincount(owners, weights=cat == OOV_INDEX, minlength=n).astype(int).tolist()
    ids = [uuid.uuid4().hex for _ in range(n)]
    times = [_EPOCH + timedelta(microseconds=c // 1000) for c in cutoffs.tolist()]
    return Encoded(arrays=arrays, cutoffs=times, oov_events=oov, request_ids=ids)


def _json_time(value: datetime) -> str:
    # The same text pydantic writes for a UTC datetime.
    return value.isoformat().replace("+00:00", "Z")


def _floats(values: np.ndarray) -> list[Any]:
    # NaN/inf as null, as pydantic's JSON does; the common all-finite case stays vectorised.
    listed = values.tolist()
    if np.isfinite(values).all():
        return listed
    return (
        [[finite(v) for v in row] for row in listed]
        if values.ndim > 1
        else [finite(v) for v in listed]
    )


def build_responses(
    requests: Sequence[PredictRequest],
    encoded: Encoded,
    outputs: dict[str, np.ndarray],
    vocab: Any,
    buckets: Sequence[str],
    model: ModelRef,
    period: str,
    default_top_k: int,
) -> list[dict[str, Any]]:
    """Turn model outputs (rows in request order) into responses.

    Returns plain dicts with exactly :class:`PredictResponse`'s JSON shape (what it would
    serialise to), built with array operations per micro-batch: validating a pydantic
    model per category and bucket cost more than the model call.
    """
    scores = np.asarray(outputs["next_cats"])
    ks = [r.top_k or default_top_k for r in requests]
    ranked = rank_categories(scores, max(ks, default=1))
    width = ranked.shape[1]
    names = vocab.decode(ranked.reshape(-1))
    top_scores = _floats(np.take_along_axis(scores, ranked, axis=1))
    buy = _floats(np.asarray(outputs["buy"]).reshape(-1))
    churn = _floats(np.asarray(outputs["churn"]).reshape(-1))
    trajectory = np.asarray(outputs["trajectory"])
    order = np.argsort(-trajectory, axis=-1, kind="stable")[..., :TRAJECTORY_TOP]
    shares = _floats(np.take_along_axis(trajectory, order, axis=-1).reshape(len(requests), -1))
    order_list = order.tolist()
    used = (encoded.arrays.cat > 0).sum(axis=1).tolist()
    ref = model.model_dump()
    responses = []
    for i, request in enumerate(requests):
        k = min(ks[i], width)
        row_names = names[i * width : i * width + k]
        periods, flat = [], shares[i]
        for p, picked in enumerate(order_list[i]):
            base = p * len(picked)
            periods.append(
                {
                    "period": p + 1,
                    "buckets": [
                        {"bucket": buckets[b], "share": flat[base + j]}
                        for j, b in enumerate(picked)
                    ],
                }
            )
        responses.append(
            {
                "request_id": encoded.request_ids[i],
                "user_id": request.user_id,
                "cutoff": _json_time(encoded.cutoffs[i]),
                "next_categories": [
                    {"category_id": str(n), "score": top_scores[i][j]}
                    for j, n in enumerate(row_names)
                ],
                "p_buy": buy[i],
                "p_churn": churn[i],
                "trajectory": periods,
                "period": period,
                "events_used": int(used[i]),
                "oov_events": encoded.oov_events[i],
                "model": ref,
            }
        )
    return responses


def _column(values: Any) -> list[Any]:
    # Plain Python values, NaN/inf as None; numeric arrays stay vectorised while all finite.
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
        return _floats(values)
    listed = values.tolist() if isinstance(values, np.ndarray) else list(values)
    return [finite(v) for v in listed]


def log_records(
    encoded: Encoded,
    outputs: dict[str, np.ndarray],
    responses: Sequence[dict[str, Any]],
    vocab: Any,
    buckets: Sequence[str],
    logged_at: datetime,
    shadow: bool = False,
) -> list[PredictionRecord]:
    """Prediction-log records (CONTRACT.md) of answered predictions, from the model arrays.

    A record ranks ``max(top_k served, RANKED_CATEGORIES)`` categories and holds every
    trajectory bucket, so monitoring can score it as the promotion gate scores a model.

    Args:
        encoded: the requests' model inputs (rows in response order).
        outputs: the model outputs of those rows.
        responses: what was answered (user, model, how many categories were served).
        vocab: the bundle's vocabulary.
        buckets: trajectory bucket names (``vocab.bucket_names``).
        logged_at: the time of logging (UTC).
        shadow: the records are a shadow model's predictions (logged, never answered).
    """
    summary = summarize_columns(encoded.arrays, vocab.decode)
    # Column lists straight from the arrays: a DataFrame cost more than the rest of the step.
    columns = {c: _column(summary[c]) for c in PROFILE_COLUMNS}
    profiles = [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]
    texts = text_profile(encoded.arrays)
    text_rows = (
        [None] * len(profiles)
        if texts is None
        else [{c: finite(v) for c, v in row.items()} for row in texts.to_dict("records")]
    )
    scores = np.asarray(outputs["next_cats"])
    ks = [max(len(r["next_categories"]), RANKED_CATEGORIES) for r in responses]
    ranked = rank_categories(scores, max(ks, default=1))
    width = ranked.shape[1]  # at most V - 2
    names = vocab.decode(ranked.reshape(-1))
    buy = np.asarray(outputs["buy"]).reshape(-1).tolist()
    churn = np.asarray(outputs["churn"]).reshape(-1).tolist()
    shares = np.asarray(outputs["trajectory"]).tolist()
    records = []
    for i, (profile, response) in enumerate(zip(profiles, responses, strict=True)):
        top = names[i * width : i * width + min(ks[i], width)]
        records.append(
            PredictionRecord(
                logged_at=logged_at,
                request_id=encoded.request_ids[i],
                user_hash=hash_user(response["user_id"]),
                model_name=response["model"]["name"],
                model_version=response["model"]["version"],
                cutoff=encoded.cutoffs[i],
                profile=profile,
                p_buy=finite(buy[i]),
                p_churn=finite(churn[i]),
                top_pred=top[0] if top else None,
                top_score=finite(float(scores[i, ranked[i, 0]])) if top else None,
                top_categories=tuple(top),
                trajectory=tuple(dict(zip(buckets, period, strict=True)) for period in shares[i]),
                shadow=shadow,
                text_profile=text_rows[i],
            )
        )
    return records
