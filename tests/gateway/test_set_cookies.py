"""Several Set-Cookie headers in one answer reach the client as they were sent, through the
in-process suite's forwarding (httpx, whose headers join a repeated one with commas unless asked
for each); tests/gateway/test_upstream_faults.py shows the same through aiohttp, with real
processes. A Location to an app's own address passes unchanged, while one naming a service is
still made a path on the gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from tests.helpers import auth, person

COOKIES = [
    "gs_session=one; Max-Age=43200; Path=/oauth; HttpOnly; SameSite=lax",
    "gs_csrf=two; Path=/oauth; HttpOnly; SameSite=lax",
    'gs_sso=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/oauth',
]


def _cookie_service() -> FastAPI:
    """Stands in for feed: answers with three cookies, whole or streamed (no length)."""
    app = FastAPI()

    @app.get("/{path:path}")
    async def answer(request: Request, path: str) -> Response:
        if path.endswith("streamed"):

            async def body() -> AsyncIterator[bytes]:
                yield b'{"ok": true}'

            response: Response = StreamingResponse(body(), media_type="application/json")
        else:
            response = Response(b'{"ok": true}', media_type="application/json")
        if path.endswith("away"):
            response.status_code = 303
            response.headers["Location"] = "http://127.0.0.1:51234/callback?code=x&state=y"
            response.headers.append("Link", "<http://feed/api/v1/posts/1>; rel=self")
        for cookie in COOKIES:
            response.headers.append("Set-Cookie", cookie)
        return response

    return app


async def test_every_set_cookie_header_passes_through_on_its_own(suite):
    token, _ = await person(suite.client, "ada")
    suite.router.mount("feed", _cookie_service())
    for path in ("/api/v1/posts/whole", "/api/v1/posts/streamed"):
        resp = await suite.client.get(path, headers=auth(token))
        assert resp.status_code == 200, resp.text
        assert resp.headers.get_list("set-cookie") == COOKIES, path
        assert resp.json() == {"ok": True}


async def test_a_location_to_an_apps_own_address_is_kept_and_a_services_is_made_relative(suite):
    token, _ = await person(suite.client, "ada")
    suite.router.mount("feed", _cookie_service())
    resp = await suite.client.get("/api/v1/posts/away", headers=auth(token))
    assert resp.status_code == 303
    assert resp.headers["location"] == "http://127.0.0.1:51234/callback?code=x&state=y"
    assert resp.headers["link"] == "</api/v1/posts/1>; rel=self"
    assert resp.headers.get_list("set-cookie") == COOKIES
