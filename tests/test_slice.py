"""The vertical slice through the gateway: register, sign in, create a group with a purpose,
join it, post to it, read the post on the home timeline."""

from __future__ import annotations

from tests.helpers import auth, create_group, person


async def test_slice_register_group_join_post_home_timeline(suite):
    client = suite.client
    ada, ada_id = await person(client, "ada")
    bob, bob_id = await person(client, "bob")
    await suite.deliver()

    group = await create_group(
        client, ada, "cloud_move", purpose="Move the agency's services to the cloud together."
    )
    assert group["purpose"].startswith("Move the agency")
    assert group["my_role"] == "owner"

    joined = await client.put(f"/api/v1/groups/{group['id']}/members/{bob_id}", headers=auth(bob))
    assert joined.status_code == 201, joined.text
    await suite.deliver()

    posted = await client.post(
        "/api/v1/posts",
        json={"body": "Kick-off on Monday", "audience": "group", "group_id": group["id"]},
        headers=auth(ada),
    )
    assert posted.status_code == 201, posted.text
    await suite.deliver()

    home = await client.get("/api/v1/timelines/home", headers=auth(bob))
    assert home.status_code == 200, home.text
    items = home.json()["items"]
    assert [p["body"] for p in items] == ["Kick-off on Monday"]
    assert items[0]["author"] == {"id": ada_id, "handle": "ada", "display_name": "Ada"}
    assert items[0]["group_id"] == group["id"]


async def test_gateway_rejects_missing_token_before_forwarding(suite):
    resp = await suite.client.get("/api/v1/timelines/home")
    assert resp.status_code == 401
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.headers["www-authenticate"].startswith("Bearer")
