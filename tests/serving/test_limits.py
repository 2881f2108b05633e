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


def test_non_json_bodies_get_415_naming_the_content_type():
    guard = RequestGuard(_echo, max_body_bytes=100)
    for media in (b"multipart/form-data", b"application/x-www-form-urlencoded", b"text/plain"):
        status, body = _call(guard, [b"x"], [(b"content-type", media)])
        assert status == 415 and json.loads(body)["field"] == "Content-Type"
    assert _call(guard, [b"{}"], [(b"content-type", b"application/json; charset=utf-8")])[0] == 200


def _answer(status: int, body: bytes):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


def test_every_4xx_leaves_in_the_one_error_shape():
    pydantic_400 = json.dumps(
        {
            "error": "2 validation errors for PredictRequestIODescriptor",
            "detail": [
                {"loc": ["users", 0, "events", 2, "timestamp"], "msg": "Value error, too old"},
                {"loc": ["x"], "msg": "Extra inputs are not permitted"},
            ],
        }
    ).encode()
    cases = [
        (400, pydantic_400, "users[0].events[2].timestamp"),
        (415, b'[{"error": "pickle is not allowed"}]', "Content-Type"),
        (404, b"Not Found", "path"),
        (400, b'{"error": "users[1].events: none", "field": "users[1].events"}', "users[1].events"),
    ]
    for status, raw, field in cases:
        got, body = _call(RequestGuard(_answer(status, raw), max_body_bytes=100), [b"{}"])
        data = json.loads(body)
        assert got == status and set(data) == {"error", "field"} and data["field"] == field
    data = json.loads(_call(RequestGuard(_answer(400, pydantic_400), 100), [b"{}"])[1])
    assert data["error"] == "users[0].events[2].timestamp: too old (and 1 more errors)"


def test_client_error_tracebacks_are_filtered_but_server_errors_kept():
    import logging
    import sys

    from pydantic import BaseModel

    from serving.errors import ClientErrorFilter

    class M(BaseModel):
        x: int

    def record(exc: BaseException) -> logging.LogRecord:
        try:
            raise exc
        except BaseException:  # noqa: BLE001
            info = sys.exc_info()
        return logging.LogRecord("b", logging.ERROR, "f", 1, "Exception on /p", (), info)

    try:
        M.model_validate({"x": "no"})
    except Exception as exc:  # noqa: BLE001
        invalid = exc
    assert not ClientErrorFilter().filter(record(invalid))
    assert ClientErrorFilter().filter(record(RuntimeError("bug")))
