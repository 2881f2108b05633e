"""One shape for every 4xx answer, ``{"error": str, "field": str}``, and quiet 4xx logging.

BentoML answers a body that fails its pydantic model with ``{"error", "detail": [...]}``,
its own 4xx exceptions with a one-item list, and Starlette's 404/405 with plain text. The
request guard (:mod:`serving.limits`) passes every 4xx body through :func:`reshape`, and
:class:`ClientErrorFilter` turns BentoML's ERROR-with-traceback log of those client errors
into nothing (the guard logs one warning line per 4xx instead).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import pandas as pd

#: The BentoML logger that writes "Exception on /path [POST]" with a traceback.
BENTOML_APP_LOGGER = "bentoml._internal.server.http_app"
_FIELD_BY_STATUS = {404: "path", 405: "method", 415: "Content-Type"}


def field_path(loc: Sequence[Any]) -> str:
    """A pydantic error location as the API names fields: ``users[0].events[2].timestamp``.

    Args:
        loc: the location tuple of one pydantic error (``("events", 2, "timestamp")``).
    """
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _from_pydantic(errors: list[Any]) -> tuple[str, str] | None:
    first = errors[0] if errors else None
    if not isinstance(first, dict) or "msg" not in first:
        return None
    field = field_path(first.get("loc") or ())
    message = str(first["msg"]).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
    return field, f"{field}: {message}{more}"


def reshape(status: int, body: bytes) -> bytes | None:
    """Return ``body`` rewritten to ``{"error", "field"}``, or None when it already is.

    Args:
        status: the 4xx status of the answer.
        body: the answer's body as the app sent it.
    """
    try:
        data: Any = json.loads(body) if body else None
    except ValueError:
        data = None
    if isinstance(data, dict) and set(data) == {"error", "field"}:
        return None
    field, message = _FIELD_BY_STATUS.get(status, "body"), ""
    if isinstance(data, dict) and isinstance(data.get("detail"), list):
        found = _from_pydantic(data["detail"])
        if found is not None:
            field, message = found
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]  # BentoML's BentoMLException body: a one-item list
    if not message and isinstance(data, dict):
        message = str(data.get("error") or data.get("detail") or "")
    if not message:
        text = body.decode("utf-8", "replace").strip() if data is None else ""
        message = text[:200] or HTTPStatus(status).phrase
    return json.dumps({"error": message, "field": field}).encode()


class ClientErrorFilter(logging.Filter):
    """Drop BentoML's ERROR records (with traceback) for errors the client caused.

    Those are pydantic validation errors of the body and BentoML exceptions with a 4xx
    code; the request guard logs each such answer as one warning line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a client error's record (dropped), True otherwise."""
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return True
        from pydantic import ValidationError

        if isinstance(exc, ValidationError):
            return False
        code = getattr(getattr(exc, "error_code", None), "value", 500)
        return not (isinstance(code, int) and 400 <= code < 500)


def quiet_client_errors() -> None:
    """Install :class:`ClientErrorFilter` on BentoML's app logger (once per process)."""
    logger = logging.getLogger(BENTOML_APP_LOGGER)
    if not any(isinstance(f, ClientErrorFilter) for f in logger.filters):
        logger.addFilter(ClientErrorFilter())


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def with_cutoff(
    field: str,
    message: str,
    requests: Sequence[Any],
    prefixes: Sequence[str],
    now: datetime,
    history: str | None,
) -> str:
    """A request error that depends on the cutoff, with the cutoff used and the window named.

    A client that replays a user's past events without ``cutoff`` gets the server's clock as
    the cutoff; the message then says so, and what to send instead.

    Args:
        field: the error's field (``users[3].events``, ``events[2].timestamp``).
        message: the error's message.
        requests: the parsed requests (``PredictRequest``: ``events``, ``cutoff``).
        prefixes: each request's field prefix (``""``, ``"users[3]."``).
        now: the server clock the cutoffs defaulted to.
        history: the model's history window (``FeatureConfig.history``; ``None``: uncapped).
    """
    index = next(
        (i for i, p in enumerate(prefixes) if field.startswith(f"{p}events")),
        None,
    )
    depends = "history window" in message or "after the cutoff" in message
    if index is None or not depends or not requests[index].events:
        return message
    request = requests[index]
    given = request.cutoff is not None
    cutoff = request.cutoff if given else now
    source = "the request's" if given else "the server's clock; the request gave no cutoff"
    if history is None:
        window = f"the history window (uncapped) before the cutoff {_iso(cutoff)} ({source})"
    else:
        start = cutoff - pd.Timedelta(history).to_pytimedelta()
        window = (
            f"the history window {history} before the cutoff {_iso(cutoff)} ({source}), "
            f"i.e. {_iso(start)} .. {_iso(cutoff)}"
        )
    # Naive times mean UTC (msgspec keeps them naive; pydantic's are already UTC).
    stamps = [
        e.timestamp if e.timestamp.tzinfo else e.timestamp.replace(tzinfo=UTC)
        for e in request.events
    ]
    span = f"the events span {_iso(min(stamps))} .. {_iso(max(stamps))}"
    hint = "" if given else "; send `cutoff` to predict as of the events' time"
    return f"{message}: {window}; {span}{hint}"
