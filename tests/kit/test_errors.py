"""Every error is RFC 9457 problem+json, of the one published schema; nothing leaks a trace."""

from __future__ import annotations

import json

import httpx
import jsonschema
import pytest
from fastapi import FastAPI, Response

from kit.errors import (
    PROBLEM_BASE,
    PROBLEM_SCHEMA,
    NotFound,
    PayloadTooLarge,
    install_error_handlers,
    problem_body,
)
from kit.middleware import BodyLimitMiddleware, RequestContextMiddleware


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_body_size=2048)
    app.add_middleware(RequestContextMiddleware)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    @app.get("/missing")
    async def missing() -> None:
        raise NotFound("No such thing.")

    @app.post("/echo")
    async def echo(body: dict[str, int]) -> dict[str, int]:
        return body

    @app.get("/cached")
    async def cached() -> Response:
        # a route that sets its own caching and (wrongly) its own request id
        headers = {"Cache-Control": "max-age=60", "X-Request-ID": "from-the-route"}
        return Response(b"{}", media_type="application/json", headers=headers)

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    return app


@pytest.fixture
async def client():
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def _is_problem(resp: httpx.Response, status: int) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["status"] == status
    assert {"type", "title", "detail", "instance", "trace_id"} <= body.keys()
    assert body["trace_id"] == resp.headers["x-request-id"]
    jsonschema.validate(body, PROBLEM_SCHEMA)
    return body


def test_the_published_schema_names_every_member_a_problem_body_has():
    body = problem_body(
        422,
        "Unprocessable Content",
        "The request has invalid fields.",
        slug="validation",
        instance="/items",
        trace_id="abc",
        errors=[{"location": "body.a", "message": "m", "code": "c"}],
        extra={
            "error": "invalid_grant",
            "error_description": "The code is not valid.",
        },  # the token endpoint's
    )
    assert set(body) == set(PROBLEM_SCHEMA["properties"])
    assert set(body["errors"][0]) == set(PROBLEM_SCHEMA["properties"]["errors"]["items"]["properties"])
    jsonschema.validate(body, PROBLEM_SCHEMA)
    assert set(PROBLEM_SCHEMA["required"]) == set(problem_body(404, "Not Found", "x", slug="not-found"))


async def test_unknown_route_is_a_problem_404(client):
    _is_problem(await client.get("/nowhere"), 404)


async def test_api_error_renders_its_detail(client):
    assert _is_problem(await client.get("/missing"), 404)["detail"] == "No such thing."


async def test_wrong_method_is_405_with_allow(client):
    resp = await client.delete("/echo")
    _is_problem(resp, 405)
    assert resp.headers["allow"] == "POST"


async def test_unexpected_exception_is_a_generic_500_without_trace(client):
    resp = await client.get("/boom")
    body = _is_problem(resp, 500)
    assert "hunter2" not in resp.text
    assert "Traceback" not in resp.text
    assert body["detail"] == "An unexpected error occurred."


async def test_validation_error_lists_fields_without_echoing_input(client):
    resp = await client.post("/echo", json={"a": "not-a-number-secret"})
    body = _is_problem(resp, 422)
    assert body["errors"][0]["location"] == "body.a"
    assert "not-a-number-secret" not in resp.text


async def test_invalid_json_is_400(client):
    resp = await client.post("/echo", content=b'{"a": 1', headers={"content-type": "application/json"})
    _is_problem(resp, 400)


async def test_deeply_nested_json_is_a_4xx_not_500(client):
    resp = await client.post("/echo", content=b"[" * 100_000, headers={"content-type": "application/json"})
    assert 400 <= resp.status_code < 500


async def test_huge_path_integer_is_422_not_500(client):
    resp = await client.get("/items/abc")
    _is_problem(resp, 422)


async def test_body_over_limit_by_content_length_is_413_problem(client):
    resp = await client.post("/echo", content=b"x" * 4096, headers={"content-type": "application/json"})
    _is_problem(resp, 413)


async def test_chunked_body_over_limit_is_413_problem(client):
    async def chunks():
        for _ in range(10):
            yield b"x" * 1024

    resp = await client.post("/echo", content=chunks(), headers={"content-type": "application/json"})
    _is_problem(resp, 413)


def _too_large(detail: str, instance: str, trace_id: str) -> dict[str, object]:
    return {
        "type": PROBLEM_BASE + PayloadTooLarge.slug,
        "title": PayloadTooLarge.title,
        "status": PayloadTooLarge.status,
        "detail": detail,
        "instance": instance,
        "trace_id": trace_id,
    }


async def test_a_body_over_the_limit_is_payload_too_large(client):
    """Said by Content-Length, the middleware answers itself (these exact bytes); found while a
    chunked body arrives, the app's handlers answer: the same problem either way."""

    async def chunks():
        for _ in range(4):
            yield b"x" * 1024

    expected = _too_large("The request body exceeds 2048 bytes.", "/echo", "abc-123")
    headers = {"content-type": "application/json", "x-request-id": "abc-123"}
    at_once = await client.post("/echo", content=b"x" * 4096, headers=headers)
    assert at_once.status_code == 413
    assert at_once.content == json.dumps(expected).encode()
    assert at_once.headers["connection"] == "close"
    chunked = await client.post("/echo", content=chunks(), headers=headers)
    assert chunked.status_code == 413
    assert chunked.json() == expected


async def test_request_id_is_echoed_when_sane_and_replaced_when_not(client):
    resp = await client.get("/missing", headers={"x-request-id": "abc-123"})
    assert resp.headers["x-request-id"] == "abc-123"
    resp = await client.get("/missing", headers={"x-request-id": "bad id\twith spaces"})
    assert resp.headers["x-request-id"] != "bad id\twith spaces"
    assert len(resp.headers["x-request-id"]) == 32


async def test_responses_carry_nosniff(client):
    resp = await client.get("/missing")
    assert resp.headers["x-content-type-options"] == "nosniff"


async def test_a_route_keeps_its_own_cache_control_but_not_its_own_request_id(client):
    resp = await client.get("/cached", headers={"x-request-id": "abc-123"})
    assert resp.headers.get_list("cache-control") == ["max-age=60"]
    assert resp.headers.get_list("x-request-id") == ["abc-123"]
    assert resp.headers.get_list("x-content-type-options") == ["nosniff"]
    resp = await client.get("/missing")
    assert resp.headers.get_list("cache-control") == ["no-store"]
