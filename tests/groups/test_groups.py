"""Purpose groups: creation with a charter, search, visibility, archive and hard delete."""

from __future__ import annotations

import uuid

import pytest

from tests.groups.support import GROUPS, join, people, problem, published, same_problem
from tests.helpers import admin, auth, create_group, with_personal

CHARTER = {
    "objective": "Every service runs in the cloud by 2027.",
    "audience": "Engineers and product owners",
    "success_indicators": ["Monthly demo", "Migration guide"],
    "review_at": "2027-06-30",
}


async def test_create_group_with_charter_makes_the_creator_owner_and_steward(suite):
    p = await people(suite, "ada")
    ada, ada_id = p["ada"]
    resp = await suite.client.post(
        GROUPS,
        json={
            "name": "Cloud move",
            "handle": "Cloud_Move",
            "purpose": "Move the agency's services to the cloud together.",
            "tags": ["Cloud", "cloud", "infra"],
            "visibility": "closed",
            "charter": CHARTER,
        },
        headers=auth(ada),
    )
    assert resp.status_code == 201, resp.text
    group = resp.json()
    assert resp.headers["location"] == f"{GROUPS}/{group['id']}"
    assert group["handle"] == "cloud_move"
    assert group["context"] == "professional"
    assert group["tags"] == ["cloud", "infra"]
    assert group["member_count"] == 1 and group["my_role"] == "owner"
    assert group["charter"] == {**CHARTER, "stewards": [ada_id]}
    got = await suite.client.get(f"{GROUPS}/{group['id']}", headers=auth(ada))
    assert got.json() == group
    events = await published(suite)
    assert [e[0] for e in events] == ["group.created", "internal.records.group", "membership.added"]
    assert events[0][1] == group["id"]
    assert events[0][2] == {
        "id": group["id"],
        "context": "professional",
        "handle": "cloud_move",
        "name": "Cloud move",
        "visibility": "closed",
        "archived": False,
        "moderation": None,
        "updated_at": events[0][2]["updated_at"],
    }
    assert events[2][2]["persona_id"] == ada_id and events[2][2]["role"] == "owner"
    assert set(events[2][2]) == {"group_id", "persona_id", "context", "role", "joined_at", "updated_at"}


@pytest.mark.parametrize(
    ("fields", "location"),
    [
        ({"purpose": None}, "body.purpose"),
        ({"purpose": "          "}, "body.purpose"),
        ({"purpose": "Short"}, "body.purpose"),
        ({"purpose": "Onewordpurposeonly"}, "body.purpose"),
        ({"purpose": "x " * 300}, "body.purpose"),
        ({"purpose": "Has a NUL \u0000 byte in it"}, "body.purpose"),
        ({"name": "a\nb"}, "body.name"),
        ({"name": "n" * 101}, "body.name"),
        ({"handle": "no spaces please"}, "body.handle"),
        ({"visibility": "public"}, "body.visibility"),
        ({"context": "personal"}, "body.context"),
        ({"tags": [f"t{i}" for i in range(21)]}, "body.tags"),
        ({"tags": ["has space"]}, "body.tags.0"),
        ({"charter": {"review_at": "2027-13-45"}}, "body.charter.review_at"),
        ({"charter": {"review_at": 1893456000}}, "body.charter.review_at"),  # not read as Unix time
        ({"charter": {"success_indicators": ["x"] * 21}}, "body.charter.success_indicators"),
        ({"charter": {"stewards": ["not-a-uuid"]}}, "body.charter.stewards.0"),
        ({"charter": {"unknown": 1}}, "body.charter.unknown"),
        ({"member_count": 99}, "body.member_count"),
    ],
)
async def test_bad_group_fields_are_422_problems(suite, fields, location):
    p = await people(suite, "ada")
    body = {"name": "Cloud", "handle": "cloud", "purpose": "Move the services to the cloud.", **fields}
    body = {k: v for k, v in body.items() if v is not None}
    resp = await suite.client.post(GROUPS, json=body, headers=auth(p["ada"][0]))
    errors = problem(resp, 422)["errors"]
    assert location in [e["location"] for e in errors], errors


async def test_handle_is_unique_within_a_context_only(suite):
    ada = await with_personal(suite.client, "ada")
    await suite.deliver()
    await create_group(suite.client, ada["pro"], "cloud")
    again = await suite.client.post(
        GROUPS,
        json={
            "name": "Other",
            "handle": "CLOUD",
            "purpose": "Another group with the same handle.",
            "charter": CHARTER,
        },
        headers=auth(ada["pro"]),
    )
    problem(again, 409)
    personal = await create_group(suite.client, ada["personal"], "cloud")
    assert personal["context"] == "personal"


async def test_unknown_or_cross_context_steward_is_404(suite):
    ada = await with_personal(suite.client, "ada")
    p = await people(suite, "bob")
    await suite.deliver()
    body = {"name": "Cloud", "handle": "cloud", "purpose": "Move the services to the cloud."}
    for steward in (str(uuid.uuid4()), ada["personal_id"]):
        resp = await suite.client.post(
            GROUPS, json={**body, "charter": {**CHARTER, "stewards": [steward]}}, headers=auth(ada["pro"])
        )
        problem(resp, 404)
    ok = await suite.client.post(
        GROUPS, json={**body, "charter": {**CHARTER, "stewards": [p["bob"][1]]}}, headers=auth(ada["pro"])
    )
    assert ok.status_code == 201 and ok.json()["charter"]["stewards"] == [p["bob"][1]]


async def test_secret_and_cross_context_groups_answer_like_missing_ones(suite):
    ada = await with_personal(suite.client, "ada")
    p = await people(suite, "bob")
    bob = p["bob"][0]
    secret = await create_group(suite.client, ada["pro"], "secret_club", visibility="secret")
    personal = await create_group(suite.client, ada["personal"], "knitting")
    missing = await suite.client.get(f"{GROUPS}/{uuid.uuid4()}", headers=auth(bob))
    problem(missing, 404)
    for group in (secret, personal):
        for suffix in ("", "/members", "/health", "/join-requests", "/invitations"):
            resp = await suite.client.get(f"{GROUPS}/{group['id']}{suffix}", headers=auth(bob))
            other = await suite.client.get(f"{GROUPS}/{uuid.uuid4()}{suffix}", headers=auth(bob))
            same_problem(resp, other)
        for method, suffix in (("PATCH", ""), ("DELETE", ""), ("PUT", f"/members/{p['bob'][1]}")):
            resp = await suite.client.request(
                method, f"{GROUPS}/{group['id']}{suffix}", json={}, headers=auth(bob)
            )
            problem(resp, 404)
    # the owner's professional token does not see her own personal group either
    resp = await suite.client.get(f"{GROUPS}/{personal['id']}", headers=auth(ada["pro"]))
    problem(resp, 404)
    listed = (await suite.client.get(GROUPS, headers=auth(bob))).json()["items"]
    assert listed == []


async def test_list_searches_by_text_tag_and_membership_newest_first(suite):
    p = await people(suite, "ada", "bob")
    ada, bob = p["ada"][0], p["bob"][0]
    cloud = await create_group(
        suite.client, ada, "cloud", purpose="Move every service to the cloud.", tags=["infra"]
    )
    data = await create_group(suite.client, ada, "data_100", purpose="Share 100% of our open data sets.")
    await create_group(suite.client, ada, "hidden", visibility="secret", tags=["infra"])
    closed = await create_group(suite.client, bob, "bob_closed", visibility="closed")

    async def handles(**params):
        resp = await suite.client.get(GROUPS, params=params, headers=auth(bob))
        assert resp.status_code == 200, resp.text
        return [g["handle"] for g in resp.json()["items"]]

    assert await handles() == ["bob_closed", "data_100", "cloud"]
    assert await handles(q="CLOUD") == ["cloud"]
    assert await handles(q="100%") == ["data_100"]
    assert await handles(q="0_") == []
    assert await handles(tag="infra") == ["cloud"]
    assert await handles(mine="true") == ["bob_closed"]
    assert (await join(suite, cloud["id"], bob, p["bob"][1])).status_code == 201
    assert await handles(mine="true") == ["bob_closed", "cloud"]
    roles = (await suite.client.get(GROUPS, params={"mine": "true"}, headers=auth(bob))).json()["items"]
    assert [g["my_role"] for g in roles] == ["owner", "member"]
    assert data["id"] and closed["id"]


async def test_list_pages_with_cursor_and_link_header(suite):
    p = await people(suite, "ada")
    ada = p["ada"][0]
    for i in range(5):
        await create_group(suite.client, ada, f"group_{i}")
    seen: list[str] = []
    params: dict[str, object] = {"limit": 2}
    pages = 0
    while True:
        resp = await suite.client.get(GROUPS, params=params, headers=auth(ada))
        body = resp.json()
        seen += [g["handle"] for g in body["items"]]
        pages += 1
        if not body["next_cursor"]:
            assert "link" not in resp.headers
            break
        assert resp.headers["link"].endswith('rel="next"') and body["next_cursor"] in resp.headers["link"]
        params = {"limit": 2, "cursor": body["next_cursor"]}
    assert seen == [f"group_{i}" for i in range(4, -1, -1)] and pages == 3


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": "abc"},
        {"q": "a"},
        {"q": "x" * 101},
        {"status": "alive"},
        {"mine": "perhaps"},
    ],
)
async def test_bad_list_parameters_are_422(suite, params):
    p = await people(suite, "ada")
    problem(await suite.client.get(GROUPS, params=params, headers=auth(p["ada"][0])), 422)


@pytest.mark.parametrize("cursor", ["garbage!!", "eyJzIjoib3RoZXIiLCJrIjpbIngiXX0", "x" * 600])
async def test_bad_cursor_is_a_4xx_problem(suite, cursor):
    p = await people(suite, "ada")
    resp = await suite.client.get(GROUPS, params={"cursor": cursor}, headers=auth(p["ada"][0]))
    assert resp.status_code in (400, 422), resp.text
    problem(resp, resp.status_code)


async def test_members_cursor_is_refused_on_another_list(suite):
    p = await people(suite, "ada", "bob", "cyd")
    ada = p["ada"][0]
    group = await create_group(suite.client, ada, "cloud")
    for h in ("bob", "cyd"):
        await join(suite, group["id"], *p[h])
    page = (
        await suite.client.get(f"{GROUPS}/{group['id']}/members", params={"limit": 1}, headers=auth(ada))
    ).json()
    assert page["next_cursor"]
    resp = await suite.client.get(GROUPS, params={"cursor": page["next_cursor"]}, headers=auth(ada))
    problem(resp, 400)


@pytest.mark.parametrize("group_id", ["1", "9223372036854775808", "..%2F..", "١٢٣"])
async def test_malformed_group_ids_are_4xx_problems(suite, group_id):
    p = await people(suite, "ada")
    resp = await suite.client.get(f"{GROUPS}/{group_id}", headers=auth(p["ada"][0]))
    assert resp.status_code in (404, 422), resp.text
    problem(resp, resp.status_code)


async def test_owner_updates_settings_and_charter_others_get_403(suite):
    p = await people(suite, "ada", "bob", "cyd")
    ada, bob = p["ada"][0], p["bob"][0]
    group = await create_group(suite.client, ada, "cloud", charter=CHARTER)
    await join(suite, group["id"], *p["bob"][::1])
    resp = await suite.client.patch(f"{GROUPS}/{group['id']}", json={"name": "Mine now"}, headers=auth(bob))
    problem(resp, 403)
    resp = await suite.client.patch(
        f"{GROUPS}/{group['id']}",
        json={
            "purpose": "Move the last services to the cloud.",
            "visibility": "closed",
            "charter": {"review_at": "2028-01-31", "stewards": [p["ada"][1], p["cyd"][1]]},
        },
        headers=auth(ada),
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["purpose"] == "Move the last services to the cloud." and body["visibility"] == "closed"
    assert body["charter"]["review_at"] == "2028-01-31"
    assert body["charter"]["objective"] == CHARTER["objective"]
    assert body["charter"]["stewards"] == [p["ada"][1], p["cyd"][1]]
    assert body["updated_at"] > group["updated_at"]
    for bad in (
        {"purpose": None},
        {"charter": {"stewards": []}},
        {"charter": {"review_at": None}},
        {"context": "personal"},
        {"handle": "x_y_z"},
    ):
        problem(await suite.client.patch(f"{GROUPS}/{group['id']}", json=bad, headers=auth(ada)), 422)
    updated = await published(suite, "group.updated")
    assert len(updated) == 1 and updated[0][2]["visibility"] == "closed"


async def test_archived_group_is_read_only_until_an_owner_restores_it(suite):
    p = await people(suite, "ada", "bob", "cyd")
    ada, bob = p["ada"][0], p["bob"][0]
    group = await create_group(suite.client, ada, "cloud")
    gid = group["id"]
    await join(suite, gid, *p["bob"])
    problem(await suite.client.delete(f"{GROUPS}/{gid}", headers=auth(bob)), 403)
    assert (await suite.client.delete(f"{GROUPS}/{gid}", headers=auth(ada))).status_code == 204
    assert (await suite.client.delete(f"{GROUPS}/{gid}", headers=auth(ada))).status_code == 204
    got = (await suite.client.get(f"{GROUPS}/{gid}", headers=auth(bob))).json()
    assert got["archived_at"] is not None
    assert problem(await suite.client.patch(f"{GROUPS}/{gid}", json={"name": "X"}, headers=auth(ada)), 409)[
        "type"
    ].endswith("group-archived")
    problem(await join(suite, gid, *p["cyd"]), 409)
    problem(await suite.client.delete(f"{GROUPS}/{gid}/members/{p['bob'][1]}", headers=auth(bob)), 409)
    problem(
        await suite.client.patch(
            f"{GROUPS}/{gid}/members/{p['bob'][1]}", json={"role": "moderator"}, headers=auth(ada)
        ),
        409,
    )
    listed = (await suite.client.get(GROUPS, headers=auth(ada))).json()["items"]
    assert listed == []
    archived = (await suite.client.get(GROUPS, params={"archived": "true"}, headers=auth(ada))).json()[
        "items"
    ]
    assert [g["id"] for g in archived] == [gid]
    problem(await suite.client.post(f"{GROUPS}/{gid}/restore", headers=auth(bob)), 403)
    restored = await suite.client.post(f"{GROUPS}/{gid}/restore", headers=auth(ada))
    assert restored.status_code == 200 and restored.json()["archived_at"] is None
    assert (await join(suite, gid, *p["cyd"])).status_code == 201
    types = [e[0] for e in await published(suite, "group.archived", "group.restored")]
    assert types == ["group.archived", "group.restored"]
    archived_event = (await published(suite, "group.archived"))[0][2]
    assert archived_event["archived"] is True


async def test_hard_delete_is_for_administrators_only(suite):
    root, _ = await admin(suite)
    p = await people(suite, "ada")
    ada = p["ada"][0]
    group = await create_group(suite.client, ada, "cloud")
    secret = await create_group(suite.client, ada, "hush", visibility="secret")
    problem(
        await suite.client.delete(f"{GROUPS}/{group['id']}", params={"hard": "true"}, headers=auth(ada)), 403
    )
    for g in (group, secret):
        resp = await suite.client.delete(f"{GROUPS}/{g['id']}", params={"hard": "true"}, headers=auth(root))
        assert resp.status_code == 204, resp.text
        problem(await suite.client.get(f"{GROUPS}/{g['id']}", headers=auth(ada)), 404)
    deleted = await published(suite, "group.deleted")
    assert [(s, set(d)) for _, s, d in deleted] == [
        (group["id"], {"id", "context", "updated_at"}),
        (secret["id"], {"id", "context", "updated_at"}),
    ]


async def test_administrators_see_secret_groups_of_their_context(suite):
    root, _ = await admin(suite)
    p = await people(suite, "ada")
    secret = await create_group(suite.client, p["ada"][0], "hush", visibility="secret")
    assert (await suite.client.get(f"{GROUPS}/{secret['id']}", headers=auth(root))).status_code == 200
    listed = (await suite.client.get(GROUPS, headers=auth(root))).json()["items"]
    assert [g["handle"] for g in listed] == ["hush"]


async def test_group_routes_need_a_token(suite):
    p = await people(suite, "ada")
    group = await create_group(suite.client, p["ada"][0], "cloud")
    for method, path in (("GET", GROUPS), ("GET", f"{GROUPS}/{group['id']}"), ("POST", GROUPS)):
        resp = await suite.client.request(method, path)
        assert resp.status_code == 401, resp.text


async def test_idempotency_key_replays_the_first_create(suite):
    p = await people(suite, "ada", "bob")
    ada = p["ada"][0]
    body = {
        "name": "Cloud",
        "handle": "cloud",
        "purpose": "Move the services to the cloud.",
        "charter": CHARTER,
    }
    headers = {**auth(ada), "Idempotency-Key": "create-cloud-1"}
    first = await suite.client.post(GROUPS, json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = await suite.client.post(GROUPS, json=body, headers=headers)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    other = await suite.client.post(GROUPS, json={**body, "name": "Other"}, headers=headers)
    assert problem(other, 422)["type"].endswith("idempotency-mismatch")
    # the same key from another persona is another key
    bobs = await suite.client.post(
        GROUPS,
        json={**body, "handle": "cloud_b"},
        headers={**auth(p["bob"][0]), "Idempotency-Key": "create-cloud-1"},
    )
    assert bobs.status_code == 201 and bobs.json()["id"] != first.json()["id"]
    problem(
        await suite.client.post(GROUPS, json=body, headers={**auth(ada), "Idempotency-Key": "bad key"}), 422
    )
    assert len(await published(suite, "group.created")) == 2


@pytest.mark.parametrize("params", [{"q": "a\x00b"}, {"q": "ab\n"}, {"tag": "a\x00"}, {"tag": "%"}])
async def test_control_characters_in_search_are_422(suite, params):
    p = await people(suite, "ada")
    problem(await suite.client.get(GROUPS, params=params, headers=auth(p["ada"][0])), 422)


async def test_group_paths_are_in_the_merged_openapi_document(suite):
    resp = await suite.client.get("/openapi.json")
    assert resp.status_code == 200, resp.text
    paths = resp.json()["paths"]
    for path in (
        "/api/v1/groups",
        "/api/v1/groups/{group_id}",
        "/api/v1/groups/{group_id}/members/{persona_id}",
        "/api/v1/groups/{group_id}/join-requests/{persona_id}/approve",
        "/api/v1/groups/{group_id}/invitations/{persona_id}/accept",
        "/api/v1/groups/{group_id}/health",
        "/api/v1/groups/memberships",
    ):
        assert path in paths, path


async def test_etag_guards_against_lost_updates(suite):
    p = await people(suite, "ada")
    ada = p["ada"][0]
    group = await create_group(suite.client, ada, "cloud")
    url = f"{GROUPS}/{group['id']}"
    read = await suite.client.get(url, headers=auth(ada))
    tag = read.headers["etag"]
    cached = await suite.client.get(url, headers={**auth(ada), "If-None-Match": tag})
    assert cached.status_code == 304 and cached.headers["etag"] == tag and not cached.content
    changed = await suite.client.patch(url, json={"name": "First"}, headers={**auth(ada), "If-Match": tag})
    assert changed.status_code == 200 and changed.headers["etag"] != tag
    stale = await suite.client.patch(url, json={"name": "Second"}, headers={**auth(ada), "If-Match": tag})
    problem(stale, 412)
    assert (await suite.client.get(url, headers=auth(ada))).json()["name"] == "First"
    fresh = await suite.client.patch(
        url, json={"name": "Second"}, headers={**auth(ada), "If-Match": changed.headers["etag"]}
    )
    assert fresh.status_code == 200 and fresh.json()["name"] == "Second"
    assert (await suite.client.get(url, headers={**auth(ada), "If-None-Match": tag})).status_code == 200
