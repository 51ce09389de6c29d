"""An app's token is held to the scopes granted at consent (decision 0035), by
``current_principal`` in every service: reading (GET, HEAD, and the POSTs that only read) needs
``read`` or ``write``, anything else ``write``; refused with 403 ``insufficient-scope``. The
token names its app (``azp``), which a client's token may not."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from domain.principal import (
    READING_POSTS,
    CurrentPersona,
    Principal,
    principal_from_claims,
    scope_allows,
)
from kit.errors import install_error_handlers
from kit.tokens import TokenVerifier, VerifiedClaims
from services.identity.keys import KeyRing, RingKeySource, SigningKey
from tests.feed.support import post
from tests.helpers import admin, auth, person
from tests.identity.oauth import app_tokens, register_app
from tests.suite import AUDIENCE, ISSUER
from tests.tokens import claims, sign

STREAM_TICKETS = "/api/v1/stream/tickets"
INSUFFICIENT = 'Bearer error="insufficient_scope", scope="write"'


def verified(**values: Any) -> VerifiedClaims:
    now = time.time()
    subject = str(values.setdefault("sub", str(uuid.uuid4())))
    return VerifiedClaims(subject=subject, token_id="j", issued_at=now, expires_at=now + 300, claims=values)


def principal(scope: str = "", *, app_id: str | None = None, client: bool = False) -> Principal:
    return Principal(
        subject="x",
        persona_id=None if client else uuid.uuid4(),
        context=None if client else "professional",
        scopes=frozenset(scope.split()),
        roles=frozenset(),
        token_id="j",
        issued_at=0,
        expires_at=1,
        client_id="cl_x" if client else None,
        app_id=app_id,
    )


def test_a_persona_token_names_its_app_and_a_client_token_may_not():
    app = principal_from_claims(verified(ctx="personal", scope="read", azp="app_1"))
    assert app.app_id == "app_1"
    assert principal_from_claims(verified(ctx="professional")).app_id is None
    for bad in (
        {"client_id": "cl_1", "azp": "app_1"},
        {"ctx": "professional", "azp": ""},
        {"ctx": "professional", "azp": 7},
        {"ctx": "professional", "azp": ["app_1"]},
        {"ctx": "professional", "azp": "a" * 41},
    ):
        with pytest.raises(ValueError, match=r"azp|app"):
            principal_from_claims(verified(**bad))


@pytest.mark.parametrize(
    ("scope", "app_id", "method", "path", "allowed"),
    [
        ("read", "app_1", "GET", "/api/v1/timelines/home", True),
        ("read", "app_1", "HEAD", "/api/v1/timelines/home", True),
        ("read", "app_1", "POST", "/api/v1/posts", False),
        ("read", "app_1", "PATCH", "/api/v1/personas/x", False),
        ("read", "app_1", "PUT", "/api/v1/following/x", False),
        ("read", "app_1", "DELETE", "/api/v1/posts/x", False),
        ("read", "app_1", "POST", STREAM_TICKETS, True),
        ("read", "app_1", "POST", STREAM_TICKETS + "/", False),
        ("write", "app_1", "POST", "/api/v1/posts", True),
        ("write", "app_1", "GET", "/api/v1/posts", True),
        ("read write", "app_1", "DELETE", "/api/v1/posts/x", True),
        # an app's token without either scope reads nothing
        ("", "app_1", "GET", "/api/v1/posts", False),
        # a scope of the app's without its name is held all the same
        ("read", None, "POST", "/api/v1/posts", False),
        # the password grant's tokens carry no app scope and reach what the persona may
        ("", None, "POST", "/api/v1/posts", True),
        ("", None, "DELETE", "/api/v1/posts/x", True),
    ],
)
def test_what_an_apps_scopes_allow(scope, app_id, method, path, allowed):
    assert scope_allows(principal(scope, app_id=app_id), method, path) is allowed


def test_a_clients_scopes_are_its_own_business():
    assert scope_allows(principal("webhooks read", client=True), "POST", "/api/v1/webhooks")


def _probe() -> FastAPI:
    """A service of two routes behind the real ``current_principal``."""
    key = SigningKey.generate()
    app = FastAPI()
    install_error_handlers(app)
    app.state.key = key
    app.state.verifier = TokenVerifier(
        RingKeySource(KeyRing([key])), issuer=ISSUER, audience=AUDIENCE, principal=principal_from_claims
    )

    @app.post(STREAM_TICKETS)
    async def ticket(caller: CurrentPersona) -> dict[str, str]:
        return {"persona": str(caller.persona_id)}

    @app.post("/api/v1/posts")
    async def create(caller: CurrentPersona) -> dict[str, str]:
        return {"persona": str(caller.persona_id)}

    return app


async def test_opening_a_stream_is_a_read_and_posting_is_not():
    app = _probe()
    read = sign(app.state.key, claims(scope="read", azp="app_1"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://probe") as client:
        assert (await client.post(STREAM_TICKETS, headers=auth(read))).status_code == 200
        refused = await client.post("/api/v1/posts", headers=auth(read))
        assert refused.status_code == 403
        assert refused.headers["www-authenticate"] == INSUFFICIENT
        assert refused.json()["type"].endswith("/insufficient-scope")
    assert STREAM_TICKETS in READING_POSTS


async def test_a_read_only_app_reads_but_changes_nothing_in_feed_and_identity(suite):
    root, _ = await admin(suite)
    token, persona_id = await person(suite.client, "ada")
    app = await register_app(suite, root)
    read = (await app_tokens(suite, app["id"], persona_id, scope="read"))["access_token"]
    write = (await app_tokens(suite, app["id"], persona_id, scope="write"))["access_token"]
    await suite.deliver()

    for method, path, body in (
        ("POST", "/api/v1/posts", {"body": "From the app"}),
        ("PATCH", f"/api/v1/personas/{persona_id}", {"job_title": "Analyst"}),
        ("POST", "/api/v1/me/personas", {"handle": "ada_home", "display_name": "Ada"}),
        ("DELETE", f"/api/v1/me/sessions/{uuid.uuid4()}", None),
    ):
        resp = await suite.client.request(method, path, json=body, headers=auth(read))
        assert resp.status_code == 403, (method, path, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert resp.json()["type"].endswith("/insufficient-scope")
        assert resp.headers["www-authenticate"] == INSUFFICIENT

    written = await post(suite.client, write, "Posted by the app")
    assert written["author"]["id"] == persona_id
    assert (await suite.client.get("/api/v1/timelines/home", headers=auth(read))).status_code == 200
    assert (await suite.client.get("/api/v1/me", headers=auth(read))).status_code == 200
    assert (await suite.client.get(f"/api/v1/posts/{written['id']}", headers=auth(read))).status_code == 200
    ticket = await suite.client.post(STREAM_TICKETS, headers=auth(read))  # opening a stream reads
    assert ticket.status_code == 201, ticket.text
    # the persona's own token (the password grant's) is not held to any scope
    await post(suite.client, token, "Posted by Ada herself")


async def test_a_client_token_naming_an_app_is_refused_at_the_gateway(suite):
    forged = sign(suite.keys.active, claims(None, ctx=None, client_id="cl_1", azp="app_1"))
    assert (await suite.client.get("/api/v1/webhooks", headers=auth(forged))).status_code == 401
