"""ASGI guard in front of the service: request-body size limit and optional bearer token.

BentoML 1.4 has no body-size setting, so this middleware answers 413 before the body is
parsed: from ``Content-Length`` when present, otherwise by counting a chunked body.
"""

from __future__ import annotations

import hmac
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.config import load_config

OPEN_PATHS = ("/livez", "/readyz", "/healthz", "/metrics", "/docs.json", "/schema.json")


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
        headers = dict(scope.get("headers") or [])
        if self.auth_token and not scope["path"].startswith(OPEN_PATHS) and scope["path"] != "/":
            given = headers.get(b"authorization", b"").decode("latin-1")
            if not hmac.compare_digest(given, f"Bearer {self.auth_token}"):
                return await _reject(send, 401, "missing or wrong bearer token", "Authorization")
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
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
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
