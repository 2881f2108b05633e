"""Request guard: body-size limit (with and without Content-Length) and bearer token."""

from __future__ import annotations

import asyncio
import json

from serving.limits import RequestGuard


async def _echo(scope, receive, send):
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def _call(guard, chunks, headers=(), path="/predict"):
    sent, queue = (
        [],
        [
            {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
            for i, c in enumerate(chunks)
        ],
    )

    async def receive():
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": list(headers)}
    asyncio.run(guard(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body


def test_small_bodies_pass_through_unchanged():
    guard = RequestGuard(_echo, max_body_bytes=10)
    assert _call(guard, [b"12345"], [(b"content-length", b"5")]) == (200, b"12345")
    assert _call(guard, [b"123", b"456"]) == (200, b"123456")  # chunked, replayed


def test_oversized_bodies_get_413_naming_the_body():
    guard = RequestGuard(_echo, max_body_bytes=10)
    status, body = _call(guard, [b"x" * 11], [(b"content-length", b"11")])
    assert status == 413 and json.loads(body)["field"] == "body"
    status, _ = _call(guard, [b"x" * 6, b"x" * 6])  # chunked, no Content-Length
    assert status == 413
    status, body = _call(guard, [b""], [(b"content-length", b"lots")])
    assert status == 400 and b"Content-Length" in body


def test_bearer_token_guards_api_routes_but_not_probes():
    guard = RequestGuard(_echo, max_body_bytes=100, auth_token="s3cret")
    assert _call(guard, [b"{}"])[0] == 401
    assert _call(guard, [b"{}"], [(b"authorization", b"Bearer s3cret")])[0] == 200
    assert _call(guard, [b""], path="/readyz")[0] == 200


def test_bearer_token_guards_the_admin_and_model_routes():
    guard = RequestGuard(_echo, max_body_bytes=100, auth_token="s3cret")
    for path in ("/admin/reload", "/admin/shadow", "/model"):
        status, body = _call(guard, [b"{}"], path=path)
        assert status == 401 and json.loads(body)["field"] == "Authorization"
    token = [(b"authorization", b"Bearer s3cret")]
    assert _call(guard, [b"{}"], token, path="/admin/reload")[0] == 200
