"""``/api/v1/me/sessions`` (decision 0035): which sign-ins a token sees (the persona boundary
applied to sessions and grants), their days, and ending one."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from kit.timeutil import utcnow
from services.identity.models import Persona, RefreshToken, SignInSession
from services.identity.tokens import digest
from tests.helpers import admin, auth, login, with_personal
from tests.identity.oauth import app_tokens, refresh, register_app

SESSIONS = "/api/v1/me/sessions"


async def _browser(suite, persona_id: str, **fields) -> str:
    """A browser signed in at the sign-in page, as that page records it."""
    async with suite.identity.state.database.sessionmaker() as session:
        persona = await session.get(Persona, uuid.UUID(persona_id))
        row = SignInSession(
            digest=digest(secrets.token_urlsafe(16)),
            account_id=persona.account_id,
            user_agent="Firefox",
            **{"expires_at": utcnow() + timedelta(hours=12), **fields},
        )
        session.add(row)
        await session.commit()
        return str(row.id)


async def _list(suite, token: str, **params) -> list[dict]:
    resp = await suite.client.get(SESSIONS, params=params, headers=auth(token))
    assert resp.status_code == 200, resp.text
    items: list[dict] = resp.json()["items"]
    return items


async def _family(suite, refresh_token: str) -> str:
    async with suite.identity.state.database.sessionmaker() as session:
        row = await session.scalar(select(RefreshToken).where(RefreshToken.digest == digest(refresh_token)))
        return str(row.family_id)


async def _world(suite):
    """Ada with both personas, signed in with her password as each (with_personal), in a browser,
    and through one app as each persona; Bob, signed in his own ways."""
    ada = await with_personal(suite.client, "ada")
    bob = await with_personal(suite.client, "bob")
    root, _ = await admin(suite)
    app = await register_app(suite, root, name="Intranet mobile")
    ada["app"] = app
    ada["pro_app"] = await app_tokens(suite, app["id"], ada["pro_id"], scope="read")
    ada["personal_app"] = await app_tokens(suite, app["id"], ada["personal_id"])
    ada["browser"] = await _browser(suite, ada["pro_id"])
    bob["browser"] = await _browser(suite, bob["pro_id"])
    bob["personal_app"] = await app_tokens(suite, app["id"], bob["personal_id"])
    return ada, bob


async def test_a_professional_token_sees_the_accounts_browsers_passwords_and_its_own_apps(suite):
    ada, bob = await _world(suite)
    items = await _list(suite, ada["pro"])
    by_kind: dict[str, list[dict]] = {}
    for item in items:
        by_kind.setdefault(item["kind"], []).append(item)
    assert [i["id"] for i in by_kind["browser"]] == [ada["browser"]]
    assert len(by_kind["password"]) == 2  # signed in as each persona with the password
    [app] = by_kind["app"]
    assert app["id"] == await _family(suite, ada["pro_app"]["refresh_token"])
    assert app["app"] == {"id": ada["app"]["id"], "name": "Intranet mobile"}
    assert app["scope"] == "read"
    ids = {i["id"] for i in items}
    assert await _family(suite, ada["personal_app"]["refresh_token"]) not in ids
    assert bob["browser"] not in ids
    assert items == sorted(items, key=lambda i: uuid.UUID(i["id"]))
    today = datetime.now(UTC).date()
    for item in items:
        assert item["since"] == today.isoformat()  # a day, never a moment
        assert "T" not in item["expires_on"] and item["expires_on"] >= item["since"]
        if item["kind"] != "browser":
            assert item["expires_on"] > item["since"]


async def test_a_personal_token_sees_only_the_apps_granted_the_personal_persona(suite):
    ada, _ = await _world(suite)
    items = await _list(suite, ada["personal"])
    assert [(i["kind"], i["id"]) for i in items] == [
        ("app", await _family(suite, ada["personal_app"]["refresh_token"]))
    ]
    assert items[0]["scope"] == "read write"
    # nor does an app holding it see more
    assert await _list(suite, ada["personal_app"]["access_token"]) == items


async def test_sessions_are_listed_a_page_at_a_time(suite):
    ada, _ = await _world(suite)
    await _browser(suite, ada["pro_id"])
    every = await _list(suite, ada["pro"], limit=100)
    assert len(every) == 5
    seen: list[dict] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await suite.client.get(SESSIONS, params=params, headers=auth(ada["pro"]))).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == every
    bad = await suite.client.get(SESSIONS, params={"cursor": "x"}, headers=auth(ada["pro"]))
    assert bad.status_code == 400


async def test_ended_expired_and_used_up_sign_ins_are_not_listed(suite):
    ada, _ = await _world(suite)
    await _browser(suite, ada["pro_id"], revoked_at=utcnow())
    await _browser(suite, ada["pro_id"], expires_at=utcnow() - timedelta(seconds=1))
    before = await _list(suite, ada["pro"])
    assert [i["kind"] for i in before].count("browser") == 1
    # a refresh rotates the grant: still one entry, with the same id
    resp = await refresh(suite, ada["pro_app"]["refresh_token"], ada["app"]["id"])
    assert resp.status_code == 200
    after = await _list(suite, ada["pro"])
    assert {i["id"] for i in after} == {i["id"] for i in before}
    # a password sign-out ends its entry
    await suite.client.post("/api/v1/auth/revoke", data={"token": ada["refresh"]})
    assert len(await _list(suite, ada["pro"])) == len(before) - 1


async def test_ending_a_browser_session_signs_it_out(suite):
    ada, bob = await _world(suite)
    for token, session_id in ((ada["personal"], ada["browser"]), (bob["pro"], ada["browser"])):
        resp = await suite.client.delete(f"{SESSIONS}/{session_id}", headers=auth(token))
        assert resp.status_code == 404, resp.text
    resp = await suite.client.delete(f"{SESSIONS}/{ada['browser']}", headers=auth(ada["pro"]))
    assert resp.status_code == 204
    assert ada["browser"] not in {i["id"] for i in await _list(suite, ada["pro"])}
    async with suite.identity.state.database.sessionmaker() as session:
        row = await session.get(SignInSession, uuid.UUID(ada["browser"]))
        assert row.revoked_at is not None
    again = await suite.client.delete(f"{SESSIONS}/{ada['browser']}", headers=auth(ada["pro"]))
    assert again.status_code == 404


async def test_ending_a_grant_revokes_its_family_within_the_tokens_own_context(suite):
    ada, bob = await _world(suite)
    personal_grant = await _family(suite, ada["personal_app"]["refresh_token"])
    # the professional token, and anyone else, cannot see it: the same 404 as a missing one
    missing = await suite.client.delete(f"{SESSIONS}/{uuid.uuid4()}", headers=auth(ada["pro"]))
    for token in (ada["pro"], bob["personal"]):
        resp = await suite.client.delete(f"{SESSIONS}/{personal_grant}", headers=auth(token))
        assert resp.status_code == 404
        assert resp.json() | {"instance": None, "trace_id": None} == missing.json() | {
            "instance": None,
            "trace_id": None,
        }
    resp = await suite.client.delete(f"{SESSIONS}/{personal_grant}", headers=auth(ada["personal"]))
    assert resp.status_code == 204
    refused = await refresh(suite, ada["personal_app"]["refresh_token"], ada["app"]["id"])
    assert refused.status_code == 400
    assert await _list(suite, ada["personal"]) == []
    # the professional grant of the same app is untouched
    assert (await refresh(suite, ada["pro_app"]["refresh_token"], ada["app"]["id"])).status_code == 200


async def test_a_password_sign_in_is_ended_from_the_professional_side_only(suite):
    ada, _ = await _world(suite)
    family = await _family(suite, ada["refresh"])  # signed in as the personal persona
    resp = await suite.client.delete(f"{SESSIONS}/{family}", headers=auth(ada["personal"]))
    assert resp.status_code == 404
    resp = await suite.client.delete(f"{SESSIONS}/{family}", headers=auth(ada["pro"]))
    assert resp.status_code == 204
    refused = await suite.client.post(
        "/api/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": ada["refresh"]}
    )
    assert refused.status_code == 400


async def test_bad_session_ids_and_missing_tokens(suite):
    ada, _ = await _world(suite)
    resp = await suite.client.delete(f"{SESSIONS}/not-a-uuid", headers=auth(ada["pro"]))
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert (await suite.client.get(SESSIONS)).status_code == 401


async def test_new_password_sign_ins_have_random_family_ids(suite):
    ada, _ = await _world(suite)
    tokens = await login(suite.client, ada["email"])
    assert uuid.UUID(await _family(suite, tokens["refresh_token"])).version == 4
