"""The follow graph: same context only, idempotent, paginated both ways."""

from __future__ import annotations

import uuid

from tests.feed.support import people, set_persona_status
from tests.helpers import auth, with_personal


async def test_follow_unfollow_and_list_both_ways(suite):
    (ada, _ada_id), (bob, bob_id), (cyd, cyd_id) = await people(suite, "ada", "bob", "cyd")
    first = await suite.client.put(f"/api/v1/following/{bob_id}", headers=auth(ada))
    assert first.status_code == 201 and first.json()["handle"] == "bob"
    again = await suite.client.put(f"/api/v1/following/{bob_id}", headers=auth(ada))
    assert again.status_code == 200
    await suite.client.put(f"/api/v1/following/{cyd_id}", headers=auth(ada))
    page = await suite.client.get("/api/v1/following", params={"limit": 1}, headers=auth(ada))
    rest = await suite.client.get(
        "/api/v1/following", params={"limit": 1, "cursor": page.json()["next_cursor"]}, headers=auth(ada)
    )
    listed = {p["persona_id"] for p in page.json()["items"] + rest.json()["items"]}
    assert listed == {bob_id, cyd_id}
    followers = await suite.client.get("/api/v1/followers", headers=auth(bob))
    assert [p["handle"] for p in followers.json()["items"]] == ["ada"]
    assert (await suite.client.delete(f"/api/v1/following/{bob_id}", headers=auth(ada))).status_code == 204
    assert (await suite.client.delete(f"/api/v1/following/{bob_id}", headers=auth(ada))).status_code == 204
    assert (await suite.client.get("/api/v1/followers", headers=auth(bob))).json()["items"] == []
    foreign = await suite.client.get("/api/v1/following", params={"limit": 1}, headers=auth(cyd))
    bad = await suite.client.get(
        "/api/v1/followers", params={"cursor": page.json()["next_cursor"]}, headers=auth(ada)
    )
    assert bad.status_code == 400 and foreign.status_code == 200


async def test_follow_refuses_self_unknown_inactive_and_other_context(suite):
    ada = await with_personal(suite.client, "ada")
    ((bob, bob_id),) = await people(suite, "bob")
    assert (
        await suite.client.put(f"/api/v1/following/{ada['pro_id']}", headers=auth(ada["pro"]))
    ).status_code == 422
    for target in (ada["personal_id"], str(uuid.uuid4())):
        assert (await suite.client.put(f"/api/v1/following/{target}", headers=auth(bob))).status_code == 404
    assert (await suite.client.put("/api/v1/following/nope", headers=auth(bob))).status_code == 422
    await set_persona_status(suite, ada["pro_id"], "ada", "deactivated")
    assert (
        await suite.client.put(f"/api/v1/following/{ada['pro_id']}", headers=auth(bob))
    ).status_code == 404
    assert bob_id
