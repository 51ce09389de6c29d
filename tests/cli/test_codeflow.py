"""The pieces of ``socialctl login --app`` that need no server: PKCE, the loopback redirect URI,
the authorization request, and the loopback listener on a real socket."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from socialctl import codeflow
from socialctl.api import ApiError
from socialctl.codeflow import Callback, Listener, Loopback, Pkce

UNRESERVED = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


def test_the_challenge_is_rfc_7636s_s256_example():
    # RFC 7636, appendix B
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert codeflow.challenge_of(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_each_verifier_is_new_and_well_formed():
    made = [Pkce.new() for _ in range(20)]
    assert len({p.verifier for p in made}) == 20
    for pkce in made:
        assert UNRESERVED.match(pkce.verifier)
        assert pkce.challenge == codeflow.challenge_of(pkce.verifier)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("http://127.0.0.1/callback", Loopback("127.0.0.1", 0, "/callback")),
        ("http://127.0.0.1:8765/cb", Loopback("127.0.0.1", 8765, "/cb")),
        ("http://[::1]/callback", Loopback("[::1]", 0, "/callback")),
        ("http://[::1]:9000/", Loopback("[::1]", 9000, "/")),
        ("http://127.0.0.1", Loopback("127.0.0.1", 0, "")),
    ],
)
def test_loopback_redirect_uris(uri, expected):
    loopback = Loopback.parse(uri)
    assert loopback == expected
    assert loopback.uri(4242) == f"http://{expected.host}:4242{expected.path}"


@pytest.mark.parametrize(
    "uri",
    [
        "https://127.0.0.1/callback",  # a loopback listener speaks plain http
        "http://localhost/callback",  # RFC 8252 §8.3: the literal, which nothing can redirect
        "http://10.0.0.1/callback",
        "http://127.0.0.1.example/callback",
        "http://user@127.0.0.1/callback",
        "http://127.0.0.1/callback?x=1",
        "http://127.0.0.1/callback#frag",
        "http://127.0.0.1:99999/callback",
        "gov.agency.app:/callback",
    ],
)
def test_anything_but_a_loopback_literal_is_refused(uri):
    with pytest.raises(ValueError, match="redirect URI"):
        Loopback.parse(uri)


def test_the_authorization_url_carries_the_whole_request():
    url = codeflow.authorization_url(
        "https://social.agency.example/oauth/authorize",
        app_id="app_x",
        redirect_uri="http://127.0.0.1:5000/callback",
        scope="read write",
        state="st",
        challenge="ch",
    )
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "social.agency.example", "/oauth/authorize")
    assert parse_qs(parts.query) == {
        "response_type": ["code"],
        "client_id": ["app_x"],
        "redirect_uri": ["http://127.0.0.1:5000/callback"],
        "scope": ["read write"],
        "state": ["st"],
        "code_challenge": ["ch"],
        "code_challenge_method": ["S256"],
    }
    bare = codeflow.authorization_url(
        "http://g/oauth/authorize?x=1", app_id="a", redirect_uri="r", scope=None, state="s", challenge="c"
    )
    assert "scope" not in parse_qs(urlsplit(bare).query) and "?x=1&response_type=code" in bare


def test_callbacks_are_read_from_their_own_path_only():
    assert codeflow.parse_callback("/callback?code=c&state=s&iss=i", "/callback") == Callback(
        state="s", code="c", iss="i"
    )
    error = codeflow.parse_callback("/cb?error=access_denied&error_description=No+thanks&state=s", "/cb")
    assert error == Callback(state="s", error="access_denied", error_description="No thanks")
    assert codeflow.parse_callback("/?code=c&state=s", "") == Callback(state="s", code="c")
    assert codeflow.parse_callback("/favicon.ico", "/callback") is None
    assert codeflow.parse_callback("/callback/x?code=c&state=s", "/callback") is None
    # a parameter twice is no answer of the authorization server (RFC 6749 §3.1)
    assert codeflow.parse_callback("/callback?code=a&code=b&state=s", "/callback") is None


@pytest.mark.parametrize(
    ("iss", "metadata", "ok"),
    [
        ("http://id", {"issuer": "http://id", "authorization_response_iss_parameter_supported": True}, True),
        (None, {"issuer": "http://id", "authorization_response_iss_parameter_supported": True}, False),
        (
            "http://evil",
            {"issuer": "http://id", "authorization_response_iss_parameter_supported": True},
            False,
        ),
        (None, {"issuer": "http://id"}, True),
        ("http://evil", {"issuer": "http://id"}, False),
    ],
)
def test_the_issuer_is_checked_as_rfc_9207_says(iss, metadata, ok):
    callback = Callback(state="s", code="c", iss=iss)
    if ok:
        codeflow.check_issuer(callback, metadata)
    else:
        with pytest.raises(ApiError, match="Wrong issuer"):
            codeflow.check_issuer(callback, metadata)


async def test_the_listener_waits_for_its_own_state_and_answers_the_browser():
    warnings: list[str] = []
    async with Listener(
        Loopback.parse("http://127.0.0.1/callback"), "our-state", warnings.append
    ) as listener:
        assert listener.port > 0
        assert listener.redirect_uri == f"http://127.0.0.1:{listener.port}/callback"
        base = f"http://127.0.0.1:{listener.port}"
        async with httpx.AsyncClient(base_url=base, timeout=5) as browser:
            assert (await browser.get("/favicon.ico")).status_code == 404
            forged = await browser.get("/callback", params={"code": "stolen", "state": "not-ours"})
            assert forged.status_code == 400 and "does not belong" in forged.text
            assert warnings and "did not start" in warnings[0]
            assert (await browser.get("/callback", params={"code": "c"})).status_code == 400  # no state
            assert (
                await browser.post("/callback", params={"code": "c", "state": "our-state"})
            ).status_code == 404
            waiting = asyncio.create_task(listener.wait(5))
            answer = await browser.get("/callback", params={"code": "c1", "state": "our-state", "iss": "i"})
            assert answer.status_code == 200 and "close this tab" in answer.text
            assert answer.headers["content-security-policy"] == "default-src 'none'"
            assert answer.headers["referrer-policy"] == "no-referrer"
            assert answer.headers["cache-control"] == "no-store"
            assert "<script" not in answer.text
            assert await waiting == Callback(state="our-state", code="c1", iss="i")
        with pytest.raises(httpx.ConnectError):  # closed once answered: no second code
            await httpx.AsyncClient().get(f"{base}/callback", params={"code": "c2", "state": "our-state"})


async def test_an_error_answer_is_shown_to_the_browser_and_returned():
    async with Listener(Loopback.parse("http://127.0.0.1/cb"), "s", lambda _: None) as listener:
        async with httpx.AsyncClient(timeout=5) as browser:
            resp = await browser.get(
                f"{listener.redirect_uri}",
                params={"error": "access_denied", "error_description": "<b>No</b>", "state": "s"},
            )
        assert resp.status_code == 200
        assert "Sign-in not completed" in resp.text and "&lt;b&gt;No&lt;/b&gt;" in resp.text
        assert await listener.wait(1) == Callback(
            state="s", error="access_denied", error_description="<b>No</b>"
        )


async def test_the_listener_drops_oversized_and_silent_requests_and_gives_up_in_time(monkeypatch):
    monkeypatch.setattr(codeflow, "READ_SECONDS", 0.2)
    async with Listener(Loopback.parse("http://127.0.0.1/callback"), "s", lambda _: None) as listener:
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        writer.write(b"GET /callback?state=s&code=" + b"x" * 20_000 + b" HTTP/1.1\r\n\r\n")
        await writer.drain()
        assert await reader.read() == b""  # closed without an answer
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # said nothing: dropped
        writer.close()
        with pytest.raises(ApiError, match="timed out"):
            await listener.wait(0.3)


async def test_a_busy_fixed_port_is_a_clean_error():
    async with Listener(Loopback.parse("http://127.0.0.1/callback"), "s", lambda _: None) as first:
        taken = Loopback.parse(f"http://127.0.0.1:{first.port}/callback")
        with pytest.raises(ApiError, match="Cannot listen"):
            async with Listener(taken, "s", lambda _: None):
                pass
