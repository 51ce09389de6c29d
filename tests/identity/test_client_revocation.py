"""Revoking an integrator client takes effect on its next request, not when its tokens expire,
and stops its webhooks: nothing more is delivered, not even what was already pending."""

from __future__ import annotations

import uuid

from gateway.routing import route_for
from tests.helpers import admin, auth, person
from tests.identity.test_webhooks import HOOKS, Receiver
from tests.suite import build_suite


async def _client(suite, root: str, scopes: list[str]) -> tuple[str, str]:
    """A new client's (id, access token)."""
    created = await suite.client.post(
        "/api/v1/admin/clients", json={"name": "HR sync", "scopes": scopes}, headers=auth(root)
    )
    assert created.status_code == 201, created.text
    body = created.json()
    resp = await suite.client.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": body["client_id"],
            "client_secret": body["client_secret"],
        },
    )
    assert resp.status_code == 200, resp.text
    return body["client_id"], resp.json()["access_token"]


async def _revoke(suite, root: str, client_id: str) -> None:
    resp = await suite.client.delete(f"/api/v1/admin/clients/{client_id}", headers=auth(root))
    assert resp.status_code == 204, resp.text


async def test_a_revoked_clients_token_is_refused_on_its_next_request(suite):
    root, _ = await admin(suite)
    client_id, token = await _client(suite, root, ["scim", "webhooks"])
    assert (await suite.client.get("/scim/v2/Users", headers=auth(token))).status_code == 200
    assert (await suite.client.get("/api/v1/webhooks", headers=auth(token))).status_code == 200

    await _revoke(suite, root, client_id)

    scim = await suite.client.get("/scim/v2/Users", headers=auth(token))
    assert scim.status_code == 401, scim.text
    assert "revoked" in scim.text
    hooks = await suite.client.get("/api/v1/webhooks", headers=auth(token))
    assert hooks.status_code == 401, hooks.text
    assert hooks.headers["content-type"] == "application/problem+json"
    assert hooks.headers["www-authenticate"].startswith("Bearer")
    created = await suite.client.post(
        "/api/v1/webhooks",
        json={"url": "https://hooks.example.org/x", "event_types": ["*"]},
        headers=auth(token),
    )
    assert created.status_code == 401
    listed = (await suite.client.get("/api/v1/admin/clients", headers=auth(root))).json()["items"]
    assert [c["revoked_at"] is not None for c in listed if c["client_id"] == client_id] == [True]


async def test_revoking_a_client_stops_its_webhooks_and_what_they_had_pending(database_urls, tmp_path):
    receiver = Receiver(tmp_path)
    receiver.start()
    try:
        async with build_suite(database_urls, identity=HOOKS) as suite:
            root, _ = await admin(suite)
            client_id, token = await _client(suite, root, ["webhooks"])
            hook = await suite.client.post(
                "/api/v1/webhooks", json={"url": receiver.url, "event_types": ["post.*"]}, headers=auth(token)
            )
            assert hook.status_code == 201, hook.text
            hook_id = hook.json()["id"]
            author, _ = await person(suite.client, "ada")
            await suite.deliver()
            await suite.client.post("/api/v1/posts", json={"body": "before"}, headers=auth(author))
            await suite.deliver()  # the delivery is queued, not yet sent

            await _revoke(suite, root, client_id)
            await suite.client.post("/api/v1/posts", json={"body": "after"}, headers=auth(author))
            await suite.deliver()
            await suite.identity.state.webhook_relay.deliver_once()

            assert receiver.received() == []
            endpoint = (await suite.client.get(f"/api/v1/webhooks/{hook_id}", headers=auth(root))).json()
            assert endpoint["active"] is False
            log = (
                await suite.client.get(f"/api/v1/webhooks/{hook_id}/deliveries", headers=auth(root))
            ).json()["items"]
            assert [(d["status"], d["attempt_count"], d["last_error"]) for d in log] == [
                ("failed", 0, "the client was revoked")
            ]
            again = await suite.client.patch(
                f"/api/v1/webhooks/{hook_id}", json={"active": True}, headers=auth(root)
            )
            assert again.status_code == 409, again.text
            assert again.headers["content-type"] == "application/problem+json"
            # a redelivery an administrator asks for stays unsent as well
            redo = await suite.client.post(
                f"/api/v1/webhooks/{hook_id}/deliveries/{log[0]['id']}/redeliver", headers=auth(root)
            )
            assert redo.status_code == 202
            await suite.identity.state.webhook_relay.deliver_once()
            assert receiver.received() == []
    finally:
        receiver.stop()


async def test_no_feed_or_groups_operation_accepts_a_client_token(suite):
    """Only identity serves integrator clients, and it checks the client on every request; feed
    and groups need a persona's token for every operation, so a client's token (revoked or
    not) is refused there."""
    root, _ = await admin(suite)
    _, token = await _client(suite, root, ["scim", "webhooks"])
    document = (await suite.client.get("/openapi.json")).json()
    checked = 0
    for path, operations in document["paths"].items():
        route = route_for(path)
        if route is None or route.service not in ("feed", "groups"):
            continue
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete") or not operation.get("security"):
                continue
            concrete = path
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    concrete = concrete.replace("{" + parameter["name"] + "}", str(uuid.uuid4()))
            resp = await suite.client.request(method, concrete, json={}, headers=auth(token))
            assert resp.status_code in (401, 403), (method, path, resp.status_code, resp.text)
            checked += 1
    assert checked > 20
