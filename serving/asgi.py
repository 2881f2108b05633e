"""One ASGI ``send`` wrapper: hold a response, then send its body rewritten as JSON.

Used by the request guard (:mod:`serving.limits`, every 4xx in the one error shape) and the
readiness body (:mod:`serving.health`); both keep the status and the other headers.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import Message, Send


def json_rewriter(
    send: Send,
    rewrite: Callable[[int, bytes], bytes],
    held: Callable[[int], bool] = lambda _status: True,
) -> Send:
    """Wrap ``send`` so that an answer whose status passes ``held`` leaves as JSON.

    Its body is gathered whole, replaced by ``rewrite(status, body)`` and sent with
    ``content-type: application/json`` and a matching ``content-length``; other answers
    and messages pass through unchanged.
    """
    start: Message | None = None
    chunks: list[bytes] = []

    async def rewritten(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start" and held(message["status"]):
            start = message
            return
        if start is None or message["type"] != "http.response.body":
            return await send(message)
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = rewrite(start["status"], b"".join(chunks))
        headers = [
            (k, v)
            for k, v in start.get("headers", [])
            if k.lower() not in (b"content-type", b"content-length")
        ]
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return rewritten
