"""``/readyz`` with a small JSON body instead of BentoML's bare newline.

BentoML 1.4 serves ``/readyz`` itself, as a system route ahead of every mounted app, and
answers ``"\\n"`` (200) or a plain-text reason (503); a service cannot replace the route.
This ASGI middleware (added with ``add_asgi_middleware``, like the request guard) keeps
BentoML's decision and status code and rewrites only the body:
``{"ready": true, "status": 200}`` or ``{"ready": false, "status": 503, "reason": "..."}``.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from serving.asgi import json_rewriter

READY_PATHS = ("/readyz",)


def ready_body(status: int, body: bytes) -> bytes:
    """The JSON body of a readiness answer with ``status`` and BentoML's own ``body``."""
    payload: dict[str, object] = {"ready": status == 200, "status": status}
    reason = body.decode("utf-8", "replace").strip()
    if status != 200 and reason:
        try:  # Starlette's HTTPException answers {"detail": "..."} as JSON already
            found = json.loads(reason)
            reason = str(found.get("detail", reason)) if isinstance(found, dict) else reason
        except ValueError:
            pass
        payload["reason"] = reason[:500]
    return json.dumps(payload).encode()


class ReadyBody:
    """Rewrite the body of ``GET /readyz`` answers as :func:`ready_body` JSON."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") not in READY_PATHS:
            return await self.app(scope, receive, send)
        return await self.app(scope, receive, json_rewriter(send, ready_body))
