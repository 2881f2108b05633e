"""/readyz answers a small JSON body; BentoML's decision and status code are kept."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from serving.health import ReadyBody

STATE = {"ready": True}


async def readyz(_request):  # what BentoML 1.4's readyz answers
    if not STATE["ready"]:
        raise HTTPException(503, "Service is not ready because .__is_ready__() returns False.")
    return PlainTextResponse("\n")


async def livez(_request):
    return PlainTextResponse("\n")


def test_readyz_answers_json_and_keeps_the_status() -> None:
    app = ReadyBody(Starlette(routes=[Route("/readyz", readyz), Route("/livez", livez)]))
    client = TestClient(app)
    ok = client.get("/readyz")
    assert ok.status_code == 200 and ok.headers["content-type"] == "application/json"
    assert ok.json() == {"ready": True, "status": 200}
    STATE["ready"] = False
    try:
        busy = client.get("/readyz")
    finally:
        STATE["ready"] = True
    assert busy.status_code == 503
    assert busy.json() == {
        "ready": False,
        "status": 503,
        "reason": "Service is not ready because .__is_ready__() returns False.",
    }
    assert client.get("/livez").text == "\n"  # other routes untouched
