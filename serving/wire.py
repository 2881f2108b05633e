"""Request bodies on the hot path: msgspec decoding straight into columns for encode.

:mod:`serving.schemas` stays the documented contract (the OpenAPI schema, the 400s); this
module decodes a body with msgspec structs that mirror it (about 30x faster than pydantic
on a 6,400-event batch) and hands the events on as columns, one entry per event:
:class:`RequestBatch`. Anything msgspec rejects, and anything it accepts that the schema
would not (a timestamp outside :data:`serving.schemas.TIME_RANGE`, a non-finite price), is
validated again by pydantic, which then raises the documented error naming the field, or
accepts the few forms only pydantic reads (a date without a time): so both parsers accept
exactly the same bodies and every 400 is the one pydantic gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
import numpy as np
from _bentoml_sdk.io_models import IOMixin
from starlette.requests import Request

from serving.schemas import (
    EARLIEST,
    HARD_MAX_EVENTS,
    HARD_MAX_USERS,
    LATEST,
    BatchRequest,
    Behavior,
    PredictRequest,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_LO_US, _HI_US = (EARLIEST - _EPOCH) // _US, (LATEST - _EPOCH) // _US
_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
_Short = Annotated[str, msgspec.Meta(max_length=256)]


# Strings only: a number sent as an id (which pydantic reads as its text) takes the pydantic
# path, so the columns never need a per-event conversion.
class _Event(msgspec.Struct, forbid_unknown_fields=True):
    item_id: _Id
    category_id: _Id
    behavior: Behavior  # type: ignore[valid-type]
    timestamp: datetime
    price: float | None = None
    brand: _Short | None = None
    session_id: _Short | None = None
    text: Annotated[str, msgspec.Meta(max_length=20_000)] | None = None
    item_text: Annotated[str, msgspec.Meta(max_length=2_000)] | None = None


class _Request(msgspec.Struct, forbid_unknown_fields=True):
    events: Annotated[list[_Event], msgspec.Meta(min_length=1, max_length=HARD_MAX_EVENTS)]
    user_id: _Short | None = None
    top_k: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    cutoff: datetime | None = None


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    users: Annotated[list[_Request], msgspec.Meta(min_length=1, max_length=HARD_MAX_USERS)]


# strict=False: numbers in strings ("5", "1.5", unix seconds), as pydantic's lax mode.
_ONE = msgspec.json.Decoder(_Request, strict=False)
_MANY = msgspec.json.Decoder(_Batch, strict=False)


@dataclass
class UserRequest:
    """One user's options and events (``events[i].timestamp`` as sent; times in columns)."""

    user_id: str | None
    top_k: int | None
    cutoff: datetime | None  # UTC
    events: Sequence[Any]  # objects with PredictRequest's Event attributes


@dataclass
class RequestBatch:
    """Requests as columns, users in order and each user's events in order (``E`` events).

    ``users[i]`` owns events ``starts[i]:stops[i]``.
    """

    users: list[UserRequest]
    stops: np.ndarray  # (U,) int64 end offset of each user's events
    time_ns: np.ndarray  # (E,) int64 ns since the epoch, UTC
    category_id: list[str]  # (E,)
    behavior: list[str]  # (E,)

    def __len__(self) -> int:
        return len(self.users)

    @property
    def starts(self) -> np.ndarray:
        """(U,) offset of each user's first event."""
        return np.concatenate([[0], self.stops[:-1]]).astype(np.int64)

    @property
    def events(self) -> list[Any]:
        """(E,) event objects, users in order (for text, attributes and frames)."""
        return [e for u in self.users for e in u.events]

    @classmethod
    def from_requests(cls, requests: Sequence[PredictRequest]) -> RequestBatch:
        """Columns of already validated pydantic requests (timestamps are UTC)."""
        users = [UserRequest(r.user_id, r.top_k, r.cutoff, r.events) for r in requests]
        events = [e for u in users for e in u.events]
        return cls.of(users, _ns([e.timestamp for e in events]))

    @classmethod
    def of(cls, users: list[UserRequest], time_ns: np.ndarray) -> RequestBatch:
        """The batch of ``users``, their events' times already in ``time_ns``."""
        events = [e for u in users for e in u.events]
        return cls(
            users=users,
            stops=np.cumsum([len(u.events) for u in users], dtype=np.int64),
            time_ns=time_ns,
            category_id=[e.category_id for e in events],
            behavior=[e.behavior for e in events],
        )


def _micros(stamps: list[datetime]) -> np.ndarray:
    try:  # timestamps with a zone (the usual case): one subtraction each
        return np.fromiter(((s - _EPOCH) // _US for s in stamps), np.int64, len(stamps))
    except TypeError:  # naive ones mean UTC
        utc = [s.replace(tzinfo=UTC) if s.tzinfo is None else s for s in stamps]
        return np.fromiter(((s - _EPOCH) // _US for s in utc), np.int64, len(utc))


def _ns(stamps: list[datetime]) -> np.ndarray:
    return _micros(stamps) * 1000  # exact integer ns (float seconds would lose microseconds)


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is UTC:
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _columns(requests: list[_Request]) -> RequestBatch | None:
    """The batch, or None when a value passes msgspec but not the schema (pydantic decides)."""
    events = [e for r in requests for e in r.events]
    micros = _micros([e.timestamp for e in events])
    if micros.size and (micros.min() < _LO_US or micros.max() >= _HI_US):
        return None
    cutoffs = [r.cutoff for r in requests]
    for cutoff in cutoffs:
        if cutoff is not None and not _LO_US <= _micros([cutoff])[0] < _HI_US:
            return None
    prices = [e.price for e in events if e.price is not None]
    if prices and not np.isfinite(prices).all():  # "inf" in a string: msgspec reads it
        return None
    users = [
        UserRequest(r.user_id, r.top_k, _utc(c), r.events)
        for r, c in zip(requests, cutoffs, strict=True)
    ]
    return RequestBatch.of(users, micros * 1000)


def parse_predict(body: bytes) -> RequestBatch:
    """Decode a ``/predict`` body (one user).

    Raises:
        pydantic.ValidationError: the body does not match ``PredictRequest`` (its error).
    """
    try:
        batch = _columns([_ONE.decode(body)])
    except (msgspec.ValidationError, msgspec.DecodeError):
        batch = None
    if batch is None:  # pydantic raises the documented error, or accepts what it reads
        return RequestBatch.from_requests([PredictRequest.model_validate_json(body or b"{}")])
    return batch


def parse_batch(body: bytes) -> RequestBatch:
    """Decode a ``/predict_batch`` body (``{"users": [...]}``).

    Raises:
        pydantic.ValidationError: the body does not match ``BatchRequest`` (its error).
    """
    try:
        batch = _columns(_MANY.decode(body).users)
    except (msgspec.ValidationError, msgspec.DecodeError):
        batch = None
    if batch is None:
        return RequestBatch.from_requests(BatchRequest.model_validate_json(body or b"{}").users)
    return batch


class PredictRequestIODescriptor(IOMixin, PredictRequest):
    """``/predict``'s input spec: ``PredictRequest``'s schema and docs, msgspec's parser.

    The handler gets the parsed :class:`RequestBatch` as ``events``.
    """

    @classmethod
    async def from_http_request(cls, request: Request, serde: Any) -> Any:
        """Parse the body (pydantic's ``ValidationError`` for a bad one: BentoML's 400)."""
        return cls.model_construct(events=parse_predict(await request.body()))


class BatchRequestIODescriptor(IOMixin, BatchRequest):
    """``/predict_batch``'s input spec; the handler gets the :class:`RequestBatch` as ``users``."""

    @classmethod
    async def from_http_request(cls, request: Request, serde: Any) -> Any:
        """Parse the body (pydantic's ``ValidationError`` for a bad one: BentoML's 400)."""
        return cls.model_construct(users=parse_batch(await request.body()))
