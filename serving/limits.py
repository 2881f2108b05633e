"""ASGI guard in front of the service: body size and type, bearer token, one 4xx shape.

BentoML 1.4 has no body-size setting, so this middleware answers 413 before the body is
parsed: from ``Content-Length`` when present, otherwise by counting a chunked body. A body
sent as anything but JSON gets 415 (BentoML would try its multipart parser and fail with a
500). Every 4xx answer leaves as ``{"error", "field"}`` (:func:`serving.errors.reshape`)
and is logged as one warning line.
"""

from __future__ import annotations

import hmac
import json
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.config import load_config
from serving.asgi import json_rewriter
from serving.errors import reshape
from serving.stages import end_request, start_request

logger = logging.getLogger("bentoml.serve.interest")  # shown by BentoML's log config

BODY_METHODS = ("POST", "PUT", "PATCH")
OPEN_PATHS = ("/livez", "/readyz", "/healthz", "/metrics", "/docs.json", "/schema.json")


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";")[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


async def _reject(send: Send, status: int, message: str, field: str = "body") -> None:
    body = json.dumps({"error": message, "field": field}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """Reject oversized bodies (413) and, when a token is configured, unauthenticated calls.

    Args:
        app: the wrapped ASGI app.
        max_body_bytes: largest accepted body; default ``ServingConfig.max_body_bytes``.
        auth_token: required ``Authorization: Bearer`` token on API routes; default
            ``ServingConfig.auth_token`` (``None`` disables the check).
    """

    def __init__(
        self, app: ASGIApp, max_body_bytes: int | None = None, auth_token: str | None = None
    ) -> None:
        if max_body_bytes is None:
            serving = load_config().serving
            max_body_bytes, auth_token = serving.max_body_bytes, serving.auth_token
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.auth_token = auth_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        state = start_request(scope["path"])  # parse and request stages (serving.stages)
        try:
            return await self._guard(scope, receive, _shaping(scope, send))
        finally:
            end_request(state)

    async def _guard(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or [])
        if self.auth_token and not scope["path"].startswith(OPEN_PATHS) and scope["path"] != "/":
            given = headers.get(b"authorization", b"").decode("latin-1")
            if not hmac.compare_digest(given, f"Bearer {self.auth_token}"):
                return await _reject(send, 401, "missing or wrong bearer token", "Authorization")
        content_type = headers.get(b"content-type")
        if scope.get("method") in BODY_METHODS and content_type and not _is_json(content_type):
            given = content_type.decode("latin-1")[:100]
            return await _reject(
                send, 415, f"send the body as application/json, not {given}", "Content-Type"
            )
        length = headers.get(b"content-length")
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                return await _reject(
                    send, 400, "Content-Length is not an integer", "Content-Length"
                )
            if size > self.max_body_bytes:
                return await _reject(
                    send, 413, f"body of {size} bytes exceeds the limit of {self.max_body_bytes}"
                )
            return await self.app(scope, receive, send)
        if scope.get("method") not in BODY_METHODS:
            return await self.app(scope, receive, send)
        # Chunked body: read it up to the limit, then replay it to the app.
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body_bytes:
                return await _reject(send, 413, f"body exceeds the limit of {self.max_body_bytes}")
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        return await self.app(scope, replay, send)


def _shaping(scope: Scope, send: Send) -> Send:
    """Wrap ``send`` so that a 4xx answer leaves in the one error shape, logged once."""

    def shaped(status: int, body: bytes) -> bytes:
        body = reshape(status, body) or body
        try:
            error = json.loads(body)["error"]
        except (ValueError, KeyError, TypeError):
            error = "?"
        logger.warning("%s %s answered %d: %s", scope.get("method"), scope["path"], status, error)
        return body

    return json_rewriter(send, shaped, held=lambda status: 400 <= status < 500)
