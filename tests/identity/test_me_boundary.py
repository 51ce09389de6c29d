"""GET /api/v1/me answers with the token's own persona only: whoever holds a personal persona's
token (an app, a script) learns nothing of the account or of the professional persona, and a
professional persona's token learns nothing of the personal one."""

from __future__ import annotations

from tests.helpers import auth, make_role, with_personal

ME = "/api/v1/me"


async def test_a_personal_token_shows_the_personal_persona_alone(suite):
    ada = await with_personal(suite.client, "ada")
    await make_role(suite, ada["email"], "communications")
    account_id = (await suite.client.get(ME, headers=auth(ada["pro"]))).json()["account_id"]
    resp = await suite.client.get(ME, headers=auth(ada["personal"]))
    assert resp.status_code == 200, resp.text
    me = resp.json()
    assert me["context"] == "personal"
    assert me["personal"]["id"] == ada["personal_id"] and me["personal"]["handle"] == "ada_home"
    for field in ("account_id", "email", "status", "roles", "created_at", "professional"):
        assert me[field] is None, field
    for secret in (account_id, ada["email"], ada["pro_id"], "communications"):
        assert secret not in resp.text


async def test_a_professional_token_shows_the_account_and_the_professional_persona_only(suite):
    ada = await with_personal(suite.client, "ada")
    resp = await suite.client.get(ME, headers=auth(ada["pro"]))
    assert resp.status_code == 200, resp.text
    me = resp.json()
    assert me["context"] == "professional"
    assert me["email"] == ada["email"] and me["status"] == "active" and me["roles"] == []
    assert me["account_id"] and me["created_at"]
    assert me["professional"]["id"] == ada["pro_id"]
    assert me["personal"] is None
    assert ada["personal_id"] not in resp.text and "ada_home" not in resp.text


async def test_a_professional_me_does_not_tell_whether_a_personal_persona_exists(suite):
    ada = await with_personal(suite.client, "ada")
    bob = await with_personal(suite.client, "bob")
    assert (
        await suite.client.delete("/api/v1/me/personas/personal", headers=auth(bob["pro"]))
    ).status_code == 204
    with_one = (await suite.client.get(ME, headers=auth(ada["pro"]))).json()
    without = (await suite.client.get(ME, headers=auth(bob["pro"]))).json()
    assert with_one.keys() == without.keys()
    assert with_one["personal"] is None and without["personal"] is None
