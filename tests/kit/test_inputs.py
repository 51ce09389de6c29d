"""kit.inputs and the cursor's keys: nothing a database cannot store or compare gets past the
edge, and everything it can passes untouched."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Form, Request

from kit.errors import BadRequest, install_error_handlers
from kit.inputs import SERIAL_MAX, refuse_unstorable_input
from kit.pagination import decode_cursor, decode_id_cursor, decode_serial_cursor, encode_cursor
from kit.text import storable


def test_storable_text_is_anything_but_nul_and_unpaired_surrogates():
    for text in ("", "plain", "é", "\U0001f600", "\u202e", "\t\n", "\x01", "\\u0000"):
        assert storable(text), text
    for text in ("\x00", "a\x00b", "\ud800", "x\udfff", "\udc00\ud800"):
        assert not storable(text), text


@pytest.mark.parametrize(
    "key",
    [10**40, -(2**63) - 1, 2**63, "a\x00", "\ud800", True, None, 1.5, [], {}],
)
def test_cursor_keys_no_query_can_take_are_refused(key):
    with pytest.raises(BadRequest):
        decode_cursor("list", encode_cursor("list", [key]), arity=1)


@pytest.mark.parametrize("key", [0, -(2**63), 2**63 - 1, "", "handle", "\U0001f600"])
def test_cursor_keys_within_range_pass(key):
    assert decode_cursor("list", encode_cursor("list", [key]), arity=1) == [key]


def test_id_and_serial_cursors_hold_their_own_type():
    uid = "0190f2c4-7a3b-7c00-8000-000000000001"
    assert str(decode_id_cursor("ids", encode_cursor("ids", [uid]))) == uid
    # 32 decimal digits would read as a UUID's hex if the key were not required to be text
    for bad in (12345678123456781234567812345678, "not-a-uuid"):
        with pytest.raises(BadRequest):
            decode_id_cursor("ids", encode_cursor("ids", [bad]))
    assert decode_serial_cursor("serial", encode_cursor("serial", [SERIAL_MAX])) == SERIAL_MAX
    for bad in (SERIAL_MAX + 1, -1, "7"):
        with pytest.raises(BadRequest):
            decode_serial_cursor("serial", encode_cursor("serial", [bad]))


def _app() -> FastAPI:
    app = FastAPI(dependencies=[Depends(refuse_unstorable_input)])
    install_error_handlers(app)

    @app.post("/items/{name}")
    async def create_item(name: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "body": body}

    @app.post("/form")
    async def take_form(field: str = Form()) -> dict[str, str]:
        return {"field": field}

    @app.post("/raw")
    async def take_raw(request: Request) -> dict[str, int]:
        return {"length": len(await request.body())}

    return app


async def _post(path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post(path, **kwargs)


def _locations(resp: httpx.Response) -> list[str]:
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    return [e["location"] for e in resp.json()["errors"]]


async def test_every_part_of_a_request_is_checked_and_named():
    json_headers = {"content-type": "application/json"}
    assert _locations(await _post("/items/a%00b", json={})) == ["path.name"]
    assert _locations(await _post("/items/x?q=%00", json={})) == ["query.q"]
    assert _locations(await _post("/items/x?%00=1", json={})) == ["query"]
    nested = b'{"a": [{"b": "\\u0000"}], "c": {"\\ud800": 1}}'
    assert sorted(_locations(await _post("/items/x", content=nested, headers=json_headers))) == [
        "body.a.0.b",
        "body.c",
    ]
    assert _locations(await _post("/form", data={"field": "a\x00"})) == ["body.field"]
    assert _locations(await _post("/form", files={"field": (None, "a\x00")})) == ["body.field"]
    # a raw body is checked as JSON whatever its declared type, as routes that parse it do
    assert _locations(await _post("/raw", content=b'"\\u0000"', headers={"content-type": "text/plain"})) == [
        "body"
    ]


async def test_storable_input_passes_untouched():
    body = {"text": "\\u0000 is six characters", "emoji": "\U0001f600", "n": 10**40, "deep": [[["ok"]]]}
    resp = await _post("/items/caf%C3%A9?q=%E2%80%AE", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"name": "café", "body": body}
    raw = await _post("/raw", content=b"\\u not json \x00", headers={"content-type": "text/plain"})
    assert raw.json() == {"length": 13}


async def test_deeply_nested_json_is_the_routes_own_problem_not_a_crash():
    deep = b"[" * 100_000 + b'"\\u0000"' + b"]" * 100_000
    resp = await _post("/raw", content=deep, headers={"content-type": "application/json"})
    assert resp.status_code == 200, resp.text
