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
from serving.schemas import ModelRef, PredictRequest
from serving.text import attach_request_text, reads_text

TRAJECTORY_TOP = 5  # buckets reported per future period
_NUDGE = timedelta(milliseconds=1)  # cutoff moves just past tolerated "future" events
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def _ns(value: datetime) -> int:
    # Exact integer nanoseconds; float timestamps would lose microseconds.
    return (value - _EPOCH) // _US * 1000


class RequestError(ValueError):
    """Bad input that pydantic could not catch; ``field`` locates it in the body."""

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


def resolve_cutoff(
    request: PredictRequest, config: ServingConfig, now: datetime, prefix: str = ""
) -> datetime:
    """Validate a request against the serving limits and return its effective cutoff.

    The cutoff is ``request.cutoff`` or ``now``. Events later than the cutoff by at most
    ``config.max_future_skew_s`` (client clock skew) are kept and the cutoff moves 1 ms past
    the last of them; later events are rejected.

    Raises:
        RequestError: too many events, or an event from the future.
    """
    if len(request.events) > config.max_events:
        raise RequestError(
            f"{prefix}events",
            f"{len(request.events)} events exceed the limit of {config.max_events}",
        )
    cutoff = request.cutoff or now
    limit = cutoff + timedelta(seconds=config.max_future_skew_s)
    last = request.events[0].timestamp
    for i, event in enumerate(request.events):
        if event.timestamp > limit:
            raise RequestError(
                f"{prefix}events[{i}].timestamp",
                f"{event.timestamp.isoformat()} is after the cutoff {cutoff.isoformat()} "
                f"by more than {config.max_future_skew_s:g} s",
            )
        last = max(last, event.timestamp)
    return max(cutoff, last + _NUDGE) if last >= cutoff else cutoff


def events_frame(keys: Sequence[str], requests: Sequence[PredictRequest]) -> pd.DataFrame:
    """Return the canonical events frame of ``requests``, user ids replaced by ``keys``.

    The hot path skips pandas (:func:`encode_requests` feeds ``encode_arrays``); this frame
    is the same events in the canonical schema, for parity checks and offline replays.
    """
    cols: dict[str, list[Any]] = {
        c: [] for c in ("user_id", "item_id", "category_id", "behavior", "timestamp")
    }
    cols.update(price=[], brand=[], session_id=[], text=[], item_text=[])
    for key, request in zip(keys, requests, strict=True):
        for e in request.events:
            cols["user_id"].append(key)
            cols["item_id"].append(e.item_id)
            cols["category_id"].append(e.category_id)
            cols["behavior"].append(e.behavior)
            cols["timestamp"].append(e.timestamp)
            cols["price"].append(e.price)
            cols["brand"].append(e.brand)
            cols["session_id"].append(e.session_id)
            cols["text"].append(e.text)
            cols["item_text"].append(e.item_text)
    return conform(pd.DataFrame(cols))


def encode_requests(
    requests: Sequence[PredictRequest],
    bundle: Any,
    config: ServingConfig,
    now: datetime,
    prefixes: Sequence[str] | None = None,
) -> Encoded:
    """Validate and encode requests into one :class:`SequenceArrays` (request order).

    Args:
        requests: parsed requests.
        bundle: a ``modelkit.bundle.Bundle`` (vocab, feature_config).
        config: serving limits.
        now: the server clock (UTC), the default cutoff.
        prefixes: field prefix per request for error messages (``"users[3]."``).

    Raises:
        RequestError: see :func:`resolve_cutoff`; or no event left inside the history window.
    """
    from core.encoding import encode_arrays
    from core.features import build_features

    prefixes = prefixes or [""] * len(requests)
    cutoffs = [resolve_cutoff(r, config, now, p) for r, p in zip(requests, prefixes, strict=True)]
    keys = [f"r{i:06d}" for i in range(len(requests))]
    parts = []
    # build_features pairs every user with every cutoff: call it once per distinct cutoff.
    for cutoff in sorted(set(cutoffs)):
        members = [i for i, c in enumerate(cutoffs) if c == cutoff]
        events = [(keys[i], e) for i in members for e in requests[i].events]
        encoded = encode_arrays(
            np.array([k for k, _ in events], dtype=object),
            np.fromiter((_ns(e.timestamp) for _, e in events), np.int64, len(events)),
            np.array([e.category_id for _, e in events], dtype=object),
            np.array([e.behavior for _, e in events], dtype=object),
            bundle.vocab,
        )
        parts.append(
            build_features(
                encoded,
                [pd.Timestamp(cutoff)],
                bundle.vocab,
                bundle.feature_config,
                with_labels=False,
            )
        )
    arrays = parts[0] if len(parts) == 1 else SequenceArrays.concat(parts)
    position = {str(u): i for i, u in enumerate(arrays.user_id)}
    for key, prefix in zip(keys, prefixes, strict=True):
        if key not in position:
            raise RequestError(f"{prefix}events", "no events inside the model's history window")
    arrays = arrays.select(np.array([position[k] for k in keys]))
    if reads_text(bundle):
        attach_request_text(arrays, keys, requests, bundle)
    # One vocabulary lookup for all requests' events, split back per request.
    unknown = bundle.vocab.encode([e.category_id for r in requests for e in r.events]) == 1
    stops = np.cumsum([len(r.events) for r in requests])[:-1]
    oov = [int(part.sum()) for part in np.split(unknown, stops)]
    ids = [uuid.uuid4().hex for _ in requests]
    return Encoded(arrays=arrays, cutoffs=cutoffs, oov_events=oov, request_ids=ids)


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


def _listed(values: Any) -> list[Any]:
    return values.tolist() if isinstance(values, np.ndarray) else list(values)


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
    columns = {c: [finite(v) for v in _listed(summary[c])] for c in PROFILE_COLUMNS}
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
