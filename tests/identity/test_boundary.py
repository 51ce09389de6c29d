"""The privacy boundary: nobody but the owner (and an audited administrator) can tell that a
personal persona and a professional persona belong to the same person."""

from __future__ import annotations

import json

from sqlalchemy import select

from services.identity.models import outbox_tables
from tests.helpers import auth, with_personal


async def _walk(suite, token: str, ids: list[str]) -> list[tuple[str, int, str]]:
    """Every identity endpoint a signed-in person can call, aimed at each id."""
    client = suite.client
    seen = []
    calls = [("GET", "/api/v1/me", None), ("GET", "/api/v1/personas", None)]
    for term in ("ada", "home", "Ada"):
        calls.append(("GET", f"/api/v1/personas?q={term}", None))
    for persona_id in ids:
        calls += [
            ("GET", f"/api/v1/personas/{persona_id}", None),
            ("PATCH", f"/api/v1/personas/{persona_id}", {"bio": "changed by someone else"}),
        ]
    for method, path, body in calls:
        resp = await client.request(method, path, headers=auth(token), json=body)
        seen.append((f"{method} {path}", resp.status_code, resp.text))
    return seen


async def test_no_one_else_can_see_the_link_between_a_persons_two_personas(suite, capfd):
    ada = await with_personal(suite.client, "ada", discoverable=True)
    bob = await with_personal(suite.client, "bob")
    me = (await suite.client.get("/api/v1/me", headers=auth(ada["pro"]))).json()
    secrets_of_ada = {me["account_id"], ada["email"]}

    for context, token in (("professional", bob["pro"]), ("personal", bob["personal"])):
        for call, status, text in await _walk(suite, token, [ada["pro_id"], ada["personal_id"]]):
            for secret in secrets_of_ada:
                assert secret not in text, (context, call)
            # one of Ada's personas may show up in this context, never both together
            assert not (ada["pro_id"] in text and ada["personal_id"] in text), (context, call)
            if ada["personal_id"] in call and context == "professional":
                assert status == 404, (call, status)
            if ada["pro_id"] in call and context == "personal":
                assert status == 404, (call, status)
            if call.startswith("PATCH"):
                assert status in (403, 404)

    # the other context answers exactly as for an id that does not exist
    ghost = "01000000-0000-7000-8000-000000000000"
    missing = await suite.client.get(f"/api/v1/personas/{ghost}", headers=auth(bob["pro"]))
    hidden = await suite.client.get(f"/api/v1/personas/{ada['personal_id']}", headers=auth(bob["pro"]))
    assert (missing.status_code, missing.json()["detail"]) == (hidden.status_code, hidden.json()["detail"])

    # the owner sees each persona with that persona's own token
    assert me["professional"]["id"] == ada["pro_id"]
    own = (await suite.client.get("/api/v1/me", headers=auth(ada["personal"]))).json()
    assert own["personal"]["id"] == ada["personal_id"]

    # no event leaving identity carries the account, the email or the twin's id
    await suite.deliver()
    async with suite.identity.state.database.sessionmaker() as session:
        events = (await session.execute(select(outbox_tables.event))).all()
    for event in events:
        payload = json.dumps(event.data) if not isinstance(event.data, str) else event.data
        for secret in secrets_of_ada:
            assert secret not in payload
        assert not (
            ada["pro_id"] in payload + event.subject and ada["personal_id"] in payload + event.subject
        )

    # and no log line names both personas, or a persona with its account
    log = capfd.readouterr().err
    for line in log.splitlines():
        assert not (ada["pro_id"] in line and ada["personal_id"] in line)
        assert not (me["account_id"] in line and ada["personal_id"] in line)


async def test_personal_persona_that_is_not_discoverable_stays_out_of_the_directory(suite):
    ada = await with_personal(suite.client, "ada", discoverable=False)
    bob = await with_personal(suite.client, "bob")
    listed = (
        await suite.client.get("/api/v1/personas", params={"q": "ada"}, headers=auth(bob["personal"]))
    ).json()
    assert listed["items"] == []
    # still reachable by id within the personal context (their posts name them)
    assert (
        await suite.client.get(f"/api/v1/personas/{ada['personal_id']}", headers=auth(bob["personal"]))
    ).status_code == 200


async def test_directory_only_searches_the_callers_context(suite):
    ada = await with_personal(suite.client, "ada")
    bob = await with_personal(suite.client, "bob")
    pro = (await suite.client.get("/api/v1/personas", headers=auth(bob["pro"]))).json()["items"]
    personal = (await suite.client.get("/api/v1/personas", headers=auth(bob["personal"]))).json()["items"]
    assert {p["kind"] for p in pro} == {"professional"}
    assert {p["kind"] for p in personal} == {"personal"}
    assert ada["pro_id"] in {p["id"] for p in pro}
    assert ada["personal_id"] in {p["id"] for p in personal}


async def test_directory_search_matches_literally(suite):
    ada = await with_personal(suite.client, "ada")
    for term in ("%", "_a", "' OR 1=1 --", "\\"):
        resp = await suite.client.get("/api/v1/personas", params={"q": term * 2}, headers=auth(ada["pro"]))
        assert resp.status_code == 200
        assert resp.json()["items"] == []


async def test_owner_edits_each_persona_with_that_personas_token_only(suite):
    ada = await with_personal(suite.client, "ada")
    ok = await suite.client.patch(
        f"/api/v1/personas/{ada['pro_id']}",
        json={"job_title": "Architect", "skills": ["python"]},
        headers=auth(ada["pro"]),
    )
    assert ok.status_code == 200 and ok.json()["job_title"] == "Architect"
    cross = await suite.client.patch(
        f"/api/v1/personas/{ada['pro_id']}", json={"bio": "x"}, headers=auth(ada["personal"])
    )
    assert cross.status_code == 404
    wrong_field = await suite.client.patch(
        f"/api/v1/personas/{ada['personal_id']}", json={"job_title": "Chef"}, headers=auth(ada["personal"])
    )
    assert wrong_field.status_code == 409 and "job_title" in wrong_field.json()["detail"]
    unknown = await suite.client.patch(
        f"/api/v1/personas/{ada['personal_id']}", json={"role": "admin"}, headers=auth(ada["personal"])
    )
    assert unknown.status_code == 422
    bad_url = await suite.client.patch(
        f"/api/v1/personas/{ada['pro_id']}",
        json={"avatar_url": "javascript:alert(1)"},
        headers=auth(ada["pro"]),
    )
    assert bad_url.status_code == 422


async def test_fields_that_cannot_be_empty_refuse_null_and_optional_ones_clear(suite):
    ada = await with_personal(suite.client, "ada")
    pro = f"/api/v1/personas/{ada['pro_id']}"
    for field in ("display_name", "skills"):
        resp = await suite.client.patch(pro, json={field: None}, headers=auth(ada["pro"]))
        assert resp.status_code == 422, resp.text
        assert resp.headers["content-type"] == "application/problem+json"
        assert field in resp.text
    personal = f"/api/v1/personas/{ada['personal_id']}"
    for field in ("display_name", "interests", "discoverable"):
        resp = await suite.client.patch(personal, json={field: None}, headers=auth(ada["personal"]))
        assert resp.status_code == 422, resp.text
    set_ = await suite.client.patch(
        pro,
        json={"job_title": "Architect", "avatar_url": "https://cdn.example/a.png"},
        headers=auth(ada["pro"]),
    )
    assert set_.status_code == 200
    cleared = await suite.client.patch(
        pro, json={"job_title": None, "avatar_url": None, "bio": None}, headers=auth(ada["pro"])
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["job_title"] is None and cleared.json()["avatar_url"] is None
    assert cleared.json()["display_name"] == "Ada"


async def test_the_contract_publishes_what_the_server_enforces(suite):
    """Schema-valid requests must not be refused: the published bounds match the checks."""
    spec = (await suite.client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    password = schemas["AccountCreate"]["properties"]["password"]
    assert (password["minLength"], password["maxLength"]) == (12, 256)
    update = schemas["PersonaUpdate"]["properties"]
    assert "anyOf" not in update["display_name"]  # no null
    avatar = next(s for s in update["avatar_url"]["anyOf"] if s.get("type") == "string")
    assert avatar["pattern"].startswith("^[Hh][Tt][Tt][Pp][Ss]://")
    spaces = await suite.client.post(
        "/api/v1/accounts",
        json={"email": "s@agency.example", "password": " " * 12, "handle": "spaces", "display_name": "S"},
    )
    assert spaces.status_code == 422


async def test_deleting_the_personal_persona_erases_it(suite):
    ada = await with_personal(suite.client, "ada")
    bob = await with_personal(suite.client, "bob")
    assert (
        await suite.client.delete("/api/v1/me/personas/personal", headers=auth(ada["pro"]))
    ).status_code == 204
    assert (
        await suite.client.get(f"/api/v1/personas/{ada['personal_id']}", headers=auth(bob["personal"]))
    ).status_code == 404
    assert (await suite.client.get("/api/v1/me", headers=auth(ada["pro"]))).json()["personal"] is None
    assert (await suite.client.get("/api/v1/me", headers=auth(ada["personal"]))).status_code == 401
    assert (
        await suite.client.delete("/api/v1/me/personas/personal", headers=auth(ada["pro"]))
    ).status_code == 404
