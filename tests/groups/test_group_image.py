"""A group's image (decision 0036): an image uploaded to media and attached by its id, set and
removed by those who may change the charter (owners, administrators), shown wherever the group
is, and its file served by media to exactly those groups says see the group.

Every test runs the real media service of the in-process suite: uploads go through the
gateway, media's worker makes them ready, and media asks groups who sees what."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from services.groups.models import Group
from services.media.models import Media
from tests.groups.support import GROUPS, join, people, problem, published, same_problem
from tests.helpers import admin, auth, create_group, with_personal
from tests.media import samples
from tests.media.support import upload_ready

VISIBILITY = "http://groups/internal/media/groups"


async def image(suite: Any, token: str, name: str = "group.png") -> str:
    """A ready PNG uploaded by ``token``'s persona; its id."""
    media = await upload_ready(suite, token, samples.png_bytes(), name, "image/png")
    assert media["status"] == "ready", media
    return str(media["id"])


async def set_image(suite: Any, token: str, group_id: str, media_id: str) -> Any:
    return await suite.client.put(
        f"{GROUPS}/{group_id}/image", json={"media_id": media_id}, headers=auth(token)
    )


async def remove_image(suite: Any, token: str, group_id: str) -> Any:
    return await suite.client.delete(f"{GROUPS}/{group_id}/image", headers=auth(token))


async def shown(suite: Any, token: str, group_id: str) -> dict[str, Any]:
    resp = await suite.client.get(f"{GROUPS}/{group_id}", headers=auth(token))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def file_status(suite: Any, token: str, media_id: str) -> int:
    resp = await suite.client.get(f"/api/v1/media/{media_id}/file", headers=auth(token))
    status: int = resp.status_code
    return status


async def attached_to(suite: Any, media_id: str) -> tuple[str | None, uuid.UUID | None] | None:
    """What media has the upload attached to; None once it is deleted."""
    async with suite.media.state.database.sessionmaker() as session:
        media = await session.get(Media, uuid.UUID(media_id))
        return None if media is None else (media.owner_kind, media.owner_id)


async def seen(suite: Any, group_id: str, reader: str, token: str | None = None) -> int:
    token = token or suite.groups.state.settings.internal_token.get_secret_value()
    resp = await suite.client.get(f"{VISIBILITY}/{group_id}", params={"reader": reader}, headers=auth(token))
    status: int = resp.status_code
    return status


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def a_group(suite: Any, visibility: str = "open") -> dict[str, Any]:
    """ada owns the group, with carl as a second owner; bob is a member, eve an outsider."""
    p = await people(suite, "ada", "bob", "carl", "eve")
    ada = p["ada"][0]
    group = await create_group(suite.client, ada, f"g{uuid.uuid4().hex[:8]}", visibility=visibility)
    for name in ("bob", "carl"):
        if visibility == "open":
            assert (await join(suite, group["id"], *p[name])).status_code == 201
        else:
            resp = await suite.client.post(
                f"{GROUPS}/{group['id']}/invitations", json={"persona_id": p[name][1]}, headers=auth(ada)
            )
            assert resp.status_code == 201, resp.text
            resp = await suite.client.post(
                f"{GROUPS}/{group['id']}/invitations/{p[name][1]}/accept", headers=auth(p[name][0])
            )
            assert resp.status_code in (200, 201), resp.text
    resp = await suite.client.patch(
        f"{GROUPS}/{group['id']}/members/{p['carl'][1]}", json={"role": "owner"}, headers=auth(ada)
    )
    assert resp.status_code == 200, resp.text
    await suite.deliver()
    return {"id": group["id"], "handle": group["handle"], "people": p}


async def test_owners_set_replace_and_remove_the_image_and_its_old_files_are_deleted(suite):
    world = await a_group(suite)
    gid, p = world["id"], world["people"]
    (ada, _), (bob, _), (carl, _), (eve, _) = (p[n] for n in ("ada", "bob", "carl", "eve"))
    before = await shown(suite, eve, gid)
    assert before["image"] is None
    first = await image(suite, ada, "first.png")

    resp = await set_image(suite, ada, gid, first)
    assert resp.status_code == 200, resp.text
    picture = resp.json()["image"]
    assert picture["id"] == first and picture["media_type"] == "image" and picture["preview"] in (True, False)
    assert resp.json()["my_role"] == "owner"
    etag = resp.headers["ETag"]
    # a change of the group as a charter change is: updated_at, ETag, group.updated
    assert resp.json()["updated_at"] > before["updated_at"]
    assert (
        await suite.client.get(f"{GROUPS}/{gid}", headers={**auth(eve), "If-None-Match": etag})
    ).status_code == 304
    events = [e for e in await published(suite, "group.updated") if e[1] == gid]
    assert events and at(events[-1][2]["updated_at"]) == at(resp.json()["updated_at"])
    # shown wherever the group is: its page, the directory, search
    assert (await shown(suite, eve, gid))["image"] == picture
    listed = await suite.client.get(GROUPS, headers=auth(eve))
    assert [g["image"] for g in listed.json()["items"] if g["id"] == gid] == [picture]
    found = await suite.client.get("/api/v1/search/groups", params={"q": world["handle"]}, headers=auth(bob))
    assert found.status_code == 200, found.text
    assert [g["image"] for g in found.json()["items"] if g["id"] == gid] == [picture]
    # media serves it to whoever sees the group (an open one: everyone of its context)
    assert await attached_to(suite, first) == ("group_image", uuid.UUID(gid))
    assert await file_status(suite, bob, first) == 200
    assert await file_status(suite, eve, first) == 200

    # another owner replaces it with an upload of its own: the old file is deleted
    second = await image(suite, carl, "second.png")
    resp = await set_image(suite, carl, gid, second)
    assert resp.status_code == 200, resp.text
    assert resp.json()["image"]["id"] == second and resp.headers["ETag"] != etag
    assert await attached_to(suite, first) is None
    assert await file_status(suite, ada, first) == 404
    assert await file_status(suite, eve, second) == 200

    # removed: the file goes too
    updates = len(await published(suite, "group.updated"))
    resp = await remove_image(suite, ada, gid)
    assert resp.status_code == 204, resp.text
    assert (await shown(suite, eve, gid))["image"] is None
    assert await attached_to(suite, second) is None
    assert await file_status(suite, carl, second) == 404
    assert len(await published(suite, "group.updated")) == updates + 1
    # removing none changes nothing
    assert (await remove_image(suite, ada, gid)).status_code == 204
    assert len(await published(suite, "group.updated")) == updates + 1


async def test_members_and_outsiders_are_refused_as_for_a_charter_change(suite):
    world = await a_group(suite)
    gid, p = world["id"], world["people"]
    (ada, _), (bob, _), (eve, _) = (p[n] for n in ("ada", "bob", "eve"))
    current = await image(suite, ada)
    assert (await set_image(suite, ada, gid, current)).status_code == 200

    for token in (bob, eve):
        own = await image(suite, token)
        charter = await suite.client.patch(
            f"{GROUPS}/{gid}",
            json={"charter": {"objective": "Something else entirely."}},
            headers=auth(token),
        )
        put = await set_image(suite, token, gid, own)
        delete = await remove_image(suite, token, gid)
        assert problem(charter, 403)["type"] == problem(put, 403)["type"] == problem(delete, 403)["type"]
        assert await attached_to(suite, own) == (None, None)
    assert (await shown(suite, bob, gid))["image"]["id"] == current
    assert await attached_to(suite, current) == ("group_image", uuid.UUID(gid))

    # a secret group is missing for an outsider, as any other id
    secret = await create_group(suite.client, ada, f"s{uuid.uuid4().hex[:8]}", visibility="secret")
    own = await image(suite, eve)
    missing = await set_image(suite, eve, str(uuid.uuid4()), own)
    same_problem(await set_image(suite, eve, secret["id"], own), missing)
    same_problem(
        await remove_image(suite, eve, secret["id"]), await remove_image(suite, eve, str(uuid.uuid4()))
    )
    problem(missing, 404)

    # an administrator may, as for the charter
    root, _ = await admin(suite)
    await suite.deliver()
    theirs = await image(suite, root)
    resp = await set_image(suite, root, gid, theirs)
    assert resp.status_code == 200, resp.text
    assert resp.json()["image"]["id"] == theirs


async def test_the_image_is_the_owners_own_ready_free_image_and_the_group_writable(suite):
    world = await a_group(suite)
    gid, p = world["id"], world["people"]
    (ada, _), (bob, _) = p["ada"], p["bob"]
    current = await image(suite, ada)
    assert (await set_image(suite, ada, gid, current)).status_code == 200

    text = await upload_ready(suite, ada, b"the charter, in words\n" * 10, "charter.txt", "text/plain")
    assert text["status"] == "ready" and text["media_type"] != "image"
    body = problem(await set_image(suite, ada, gid, str(text["id"])), 422)
    assert body["type"].endswith("/media-not-image")
    assert await attached_to(suite, str(text["id"])) == (None, None)

    bobs = await image(suite, bob)
    for media_id in (bobs, str(uuid.uuid4())):
        body = problem(await set_image(suite, ada, gid, media_id), 422)
        assert body["type"].endswith("/media-not-attachable")
        assert body["errors"][0]["location"] == "body.media_id"
    assert await attached_to(suite, bobs) == (None, None)
    for payload in ({}, {"media_id": "nope"}, {"media_id": current, "name": "Renamed"}):
        problem(await suite.client.put(f"{GROUPS}/{gid}/image", json=payload, headers=auth(ada)), 422)
    assert (await shown(suite, bob, gid))["image"]["id"] == current

    # an archived group is read-only, its image too
    assert (await suite.client.delete(f"{GROUPS}/{gid}", headers=auth(ada))).status_code == 204
    fresh = await image(suite, ada)
    assert problem(await set_image(suite, ada, gid, fresh), 409)["type"].endswith("/group-archived")
    assert problem(await remove_image(suite, ada, gid), 409)["type"].endswith("/group-archived")
    assert await attached_to(suite, fresh) == (None, None)
    assert (await shown(suite, bob, gid))["image"]["id"] == current
    # and archived, it is still seen by whoever sees the group
    assert await file_status(suite, bob, current) == 200


async def test_media_down_is_a_503_and_nothing_changes(suite):
    world = await a_group(suite)
    gid, ada = world["id"], world["people"]["ada"][0]
    current = await image(suite, ada)
    assert (await set_image(suite, ada, gid, current)).status_code == 200
    following = await image(suite, ada)
    before = await shown(suite, ada, gid)
    updates = len(await published(suite, "group.updated"))

    suite.router.down.add("media")
    try:
        put = await set_image(suite, ada, gid, following)
        assert (
            problem(put, 503)["type"].endswith("/media-unavailable") and int(put.headers["Retry-After"]) >= 1
        )
        delete = await remove_image(suite, ada, gid)
        assert problem(delete, 503)["type"].endswith("/media-unavailable")
    finally:
        suite.router.down.discard("media")

    assert await shown(suite, ada, gid) == before
    assert len(await published(suite, "group.updated")) == updates
    assert await attached_to(suite, current) == ("group_image", uuid.UUID(gid))
    assert await attached_to(suite, following) == (None, None)
    assert (await set_image(suite, ada, gid, following)).status_code == 200


async def test_media_asks_groups_who_sees_a_group(suite):
    secret = await a_group(suite, "secret")
    gid, p = secret["id"], secret["people"]
    (ada, ada_id), (bob, bob_id), (eve, eve_id) = p["ada"], p["bob"], p["eve"]
    picture = await image(suite, ada)
    assert (await set_image(suite, ada, gid, picture)).status_code == 200

    assert await seen(suite, gid, ada_id) == 204
    assert await seen(suite, gid, bob_id) == 204  # a member
    assert await seen(suite, gid, eve_id) == 404  # a secret group's outsider
    assert await seen(suite, gid, str(uuid.uuid4())) == 404  # a reader groups does not know
    assert await seen(suite, str(uuid.uuid4()), ada_id) == 404
    assert await seen(suite, gid, ada_id, token="not-the-token") == 401
    assert await file_status(suite, bob, picture) == 200
    assert await file_status(suite, eve, picture) == 404
    # invited, the outsider sees it
    resp = await suite.client.post(
        f"{GROUPS}/{gid}/invitations", json={"persona_id": eve_id}, headers=auth(ada)
    )
    assert resp.status_code == 201, resp.text
    assert await seen(suite, gid, eve_id) == 204

    # a closed group is seen by its outsiders, as its page is; never from the other context
    closed = await create_group(suite.client, ada, f"c{uuid.uuid4().hex[:8]}", visibility="closed")
    other = await with_personal(suite.client, "zoe")
    await suite.deliver()
    assert await seen(suite, closed["id"], bob_id) == 204
    assert await seen(suite, closed["id"], other["personal_id"]) == 404
    assert await seen(suite, closed["id"], other["pro_id"]) == 204

    # hidden by moderation: its owners only
    hidden = {
        "id": str(uuid.uuid4()),
        "type": "moderation.group.hidden",
        "source": "moderation",
        "subject": gid,
        "time": datetime.now(UTC).isoformat(),
        "data": {
            "context": "professional",
            "report_id": str(uuid.uuid4()),
            "action_id": str(uuid.uuid4()),
            "target_type": "group",
            "target_id": gid,
        },
    }
    token = suite.groups.state.settings.internal_token.get_secret_value()
    resp = await suite.client.post(
        "http://groups/internal/events", json={"events": [hidden]}, headers=auth(token)
    )
    assert resp.status_code == 200, resp.text
    assert await seen(suite, gid, bob_id) == 404
    assert await seen(suite, gid, ada_id) == 204
    assert await file_status(suite, bob, picture) == 404

    # deleted for good: no one
    root, _ = await admin(suite)
    await suite.deliver()
    resp = await suite.client.delete(f"{GROUPS}/{closed['id']}", params={"hard": "true"}, headers=auth(root))
    assert resp.status_code == 204, resp.text
    assert await seen(suite, closed["id"], bob_id) == 404
    assert await seen(suite, closed["id"], ada_id) == 404


async def test_a_deleted_groups_image_is_served_to_no_one(suite):
    world = await a_group(suite)
    gid, p = world["id"], world["people"]
    (ada, _), (bob, _) = p["ada"], p["bob"]
    picture = await image(suite, ada)
    assert (await set_image(suite, ada, gid, picture)).status_code == 200
    assert await file_status(suite, bob, picture) == 200
    root, _ = await admin(suite)
    await suite.deliver()
    resp = await suite.client.delete(f"{GROUPS}/{gid}", params={"hard": "true"}, headers=auth(root))
    assert resp.status_code == 204, resp.text
    assert await file_status(suite, bob, picture) == 404  # groups says no one sees it
    await suite.deliver()  # and media withdraws it on group.deleted
    assert await file_status(suite, bob, picture) == 404


async def test_a_description_edited_at_media_shows_on_the_group(suite):
    world = await a_group(suite)
    gid, ada = world["id"], world["people"]["ada"][0]
    picture = await image(suite, ada)
    resp = await set_image(suite, ada, gid, picture)
    etag = resp.headers["ETag"]

    resp = await suite.client.patch(
        f"/api/v1/media/{picture}", json={"description": "The team at the kick-off"}, headers=auth(ada)
    )
    assert resp.status_code == 200, resp.text
    await suite.deliver()
    group = await suite.client.get(f"{GROUPS}/{gid}", headers=auth(ada))
    assert group.json()["image"]["description"] == "The team at the kick-off"
    assert group.headers["ETag"] != etag  # a copy cached by its ETag is stale

    async with suite.groups.state.database.sessionmaker() as session:
        row = await session.get(Group, uuid.UUID(gid))
        assert row is not None and row.image is not None
        assert row.image["description"] == "The team at the kick-off"
