"""A persona's avatar (decision 0036): an image uploaded to media and attached by its id, set
and removed by the persona's owner with that persona's own token only, shown wherever the
persona is, and its file served by media to exactly those identity says see the persona.

Every test runs the real media service of the in-process suite: uploads go through the
gateway, media's worker makes them ready, and media asks identity who sees what."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from services.identity import avatars
from services.identity.models import outbox_tables
from services.media.models import Media
from tests.helpers import admin, auth, person, with_personal
from tests.media import samples
from tests.media.support import upload, upload_ready

PERSONAS = "/api/v1/personas"
VISIBILITY = "http://identity/internal/media/personas"


async def image(suite: Any, token: str, name: str = "me.png") -> str:
    """A ready PNG uploaded by ``token``'s persona; its id."""
    media = await upload_ready(suite, token, samples.png_bytes(), name, "image/png")
    assert media["status"] == "ready", media
    return str(media["id"])


async def document(suite: Any, token: str) -> str:
    """A ready plain-text upload (not an image); its id."""
    media = await upload_ready(suite, token, b"minutes of the meeting\n" * 20, "minutes.txt", "text/plain")
    assert media["status"] == "ready" and media["media_type"] != "image", media
    return str(media["id"])


async def set_avatar(suite: Any, token: str, persona_id: str, media_id: str) -> Any:
    return await suite.client.put(
        f"{PERSONAS}/{persona_id}/avatar", json={"media_id": media_id}, headers=auth(token)
    )


async def profile(suite: Any, token: str, persona_id: str) -> dict[str, Any]:
    resp = await suite.client.get(f"{PERSONAS}/{persona_id}", headers=auth(token))
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


async def persona_events(suite: Any, persona_id: str) -> list[dict[str, Any]]:
    table = outbox_tables.event
    async with suite.identity.state.database.sessionmaker() as session:
        rows = (
            await session.execute(
                select(table.c.data)
                .where(table.c.type == "persona.updated", table.c.subject == persona_id)
                .order_by(table.c.seq)
            )
        ).all()
    return [json.loads(r.data) for r in rows]


def problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["content-type"] == "application/problem+json", resp.headers["content-type"]
    body: dict[str, Any] = resp.json()
    return body


def without_request(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("instance", "trace_id")}


async def seen(suite: Any, persona_id: str, reader: str, token: str | None = None) -> int:
    token = token or suite.identity.state.settings.internal_token.get_secret_value()
    resp = await suite.client.get(
        f"{VISIBILITY}/{persona_id}", params={"reader": reader}, headers=auth(token)
    )
    status: int = resp.status_code
    return status


async def test_an_avatar_is_set_replaced_and_removed_and_its_old_files_deleted(suite):
    ada, ada_id = await person(suite.client, "ada")
    bob, _ = await person(suite.client, "bob")
    await suite.deliver()
    first = await image(suite, ada, "first.png")

    resp = await set_avatar(suite, ada, ada_id, first)
    assert resp.status_code == 200, resp.text
    avatar = resp.json()["avatar"]
    assert avatar["id"] == first and avatar["media_type"] == "image"
    assert avatar["content_type"] == "image/png" and avatar["width"] == 32 and avatar["height"] == 24
    assert resp.json()["avatar_url"] is None  # the link of old is left as it was
    # a profile edit of the persona: its own updated_at, and persona.updated at once
    updated_at = resp.json()["updated_at"]
    assert updated_at is not None
    assert [e["updated_at"] for e in await persona_events(suite, ada_id)][-1] is not None
    # shown wherever the persona is: its profile, the directory, /me
    assert (await profile(suite, bob, ada_id))["avatar"] == avatar
    directory = await suite.client.get(PERSONAS, params={"q": "ada"}, headers=auth(bob))
    assert [p["avatar"] for p in directory.json()["items"] if p["id"] == ada_id] == [avatar]
    found = await suite.client.get("/api/v1/search/people", params={"q": "ada"}, headers=auth(bob))
    assert found.status_code == 200, found.text
    assert [p["avatar"] for p in found.json()["items"] if p["id"] == ada_id] == [avatar]
    me = await suite.client.get("/api/v1/me", headers=auth(ada))
    assert me.json()["professional"]["avatar"] == avatar
    assert await attached_to(suite, first) == ("avatar", uuid.UUID(ada_id))
    assert await file_status(suite, bob, first) == 200  # bob sees ada, so her avatar

    # setting the same one again changes nothing at media
    again = await set_avatar(suite, ada, ada_id, first)
    assert again.status_code == 200 and again.json()["avatar"]["id"] == first
    assert await file_status(suite, ada, first) == 200

    # replaced: the old file is deleted at media, for its uploader too
    second = await image(suite, ada, "second.png")
    resp = await set_avatar(suite, ada, ada_id, second)
    assert resp.status_code == 200, resp.text
    assert resp.json()["avatar"]["id"] == second
    assert await attached_to(suite, first) is None
    assert await file_status(suite, ada, first) == 404
    assert await file_status(suite, ada, second) == 200
    assert (await profile(suite, bob, ada_id))["avatar"]["id"] == second

    # removed: the file goes too, and the profile shows none
    events_before = len(await persona_events(suite, ada_id))
    resp = await suite.client.delete(f"{PERSONAS}/{ada_id}/avatar", headers=auth(ada))
    assert resp.status_code == 204, resp.text
    assert (await profile(suite, bob, ada_id))["avatar"] is None
    assert await attached_to(suite, second) is None
    assert await file_status(suite, ada, second) == 404
    assert len(await persona_events(suite, ada_id)) == events_before + 1
    # removing none again changes nothing
    resp = await suite.client.delete(f"{PERSONAS}/{ada_id}/avatar", headers=auth(ada))
    assert resp.status_code == 204
    assert len(await persona_events(suite, ada_id)) == events_before + 1


async def test_the_personal_persona_has_its_own_avatar_published_at_once(suite):
    ada = await with_personal(suite.client, "ada")
    await suite.deliver()
    picture = await image(suite, ada["personal"])
    resp = await set_avatar(suite, ada["personal"], ada["personal_id"], picture)
    assert resp.status_code == 200, resp.text
    # the owner's own edit in the personal context: announced at once, not delayed
    assert len(await persona_events(suite, ada["personal_id"])) == 1
    own = await suite.client.get("/api/v1/me", headers=auth(ada["personal"]))
    assert own.json()["personal"]["avatar"]["id"] == picture
    # and the professional persona is untouched
    assert (await profile(suite, ada["pro"], ada["pro_id"]))["avatar"] is None
    assert await persona_events(suite, ada["pro_id"]) == []


async def test_only_the_persona_itself_sets_or_removes_its_avatar_the_same_404_for_everyone_else(suite):
    ada = await with_personal(suite.client, "ada")
    bob = await with_personal(suite.client, "bob")
    await suite.deliver()
    mine = await image(suite, ada["pro"])
    assert (await set_avatar(suite, ada["pro"], ada["pro_id"], mine)).status_code == 200

    # ada's personal token on her professional persona, with its own upload
    twin_upload = await image(suite, ada["personal"])
    twin = await set_avatar(suite, ada["personal"], ada["pro_id"], twin_upload)
    # bob, a stranger of the same context, with his own upload and with ada's
    bobs_upload = await image(suite, bob["pro"])
    stranger = await set_avatar(suite, bob["pro"], ada["pro_id"], bobs_upload)
    stranger_with_hers = await set_avatar(suite, bob["pro"], ada["pro_id"], mine)
    # a persona that does not exist
    ghost = await set_avatar(suite, ada["pro"], str(uuid.uuid4()), mine)
    bodies = [without_request(problem(r, 404)) for r in (twin, stranger, stranger_with_hers, ghost)]
    assert all(body == bodies[0] for body in bodies), bodies
    for token in (ada["personal"], bob["pro"], bob["personal"]):
        resp = await suite.client.delete(f"{PERSONAS}/{ada['pro_id']}/avatar", headers=auth(token))
        assert without_request(problem(resp, 404)) == bodies[0]

    # nothing changed, and nothing was attached on the way
    assert (await profile(suite, ada["pro"], ada["pro_id"]))["avatar"]["id"] == mine
    assert await attached_to(suite, mine) == ("avatar", uuid.UUID(ada["pro_id"]))
    assert await attached_to(suite, twin_upload) == (None, None)
    assert await attached_to(suite, bobs_upload) == (None, None)
    # the personal upload is still free for the personal persona itself
    assert (await set_avatar(suite, ada["personal"], ada["personal_id"], twin_upload)).status_code == 200


async def test_an_avatar_is_an_image_of_the_callers_own_ready_and_free_upload(suite):
    ada, ada_id = await person(suite.client, "ada")
    bob, bob_id = await person(suite.client, "bob")
    await suite.deliver()
    current = await image(suite, ada, "current.png")
    assert (await set_avatar(suite, ada, ada_id, current)).status_code == 200

    # not an image: refused, given back to its uploader, the avatar left as it was
    text = await document(suite, ada)
    body = problem(await set_avatar(suite, ada, ada_id, text), 422)
    assert body["type"].endswith("/media-not-image"), body
    assert await attached_to(suite, text) == (None, None)
    assert await attached_to(suite, current) == ("avatar", uuid.UUID(ada_id))
    assert (await profile(suite, bob, ada_id))["avatar"]["id"] == current
    assert await file_status(suite, ada, current) == 200

    # someone else's upload, one attached elsewhere, one not ready, one that does not exist:
    # the same refusal, which does not tell them apart
    bobs = await image(suite, bob)
    bobs_avatar = await image(suite, bob)
    assert (await set_avatar(suite, bob, bob_id, bobs_avatar)).status_code == 200
    pending = await upload(suite, ada, samples.png_bytes(), "later.png", "image/png")
    assert pending["status"] == "processing"
    refusals = []
    for media_id in (bobs, bobs_avatar, str(pending["id"]), str(uuid.uuid4())):
        body = problem(await set_avatar(suite, ada, ada_id, media_id), 422)
        assert body["type"].endswith("/media-not-attachable"), body
        assert body["errors"] == [
            {"location": "body.media_id", "message": media_id, "code": "media-not-attachable"}
        ]
        refusals.append(body["detail"].replace(media_id, "<id>"))
    assert len(set(refusals)) == 1, refusals
    assert (await profile(suite, bob, ada_id))["avatar"]["id"] == current
    assert await attached_to(suite, bobs) == (None, None)
    assert await attached_to(suite, bobs_avatar) == ("avatar", uuid.UUID(bob_id))

    # a body of anything but one media id is refused before anything is asked
    for payload in (
        {},
        {"media_id": "not-a-uuid"},
        {"media_id": current, "avatar_url": "https://x.example/a.png"},
    ):
        resp = await suite.client.put(f"{PERSONAS}/{ada_id}/avatar", json=payload, headers=auth(ada))
        problem(resp, 422)
    assert (await profile(suite, bob, ada_id))["avatar"]["id"] == current


async def test_media_down_is_a_503_and_nothing_changes(suite):
    ada, ada_id = await person(suite.client, "ada")
    await suite.deliver()
    current = await image(suite, ada, "current.png")
    assert (await set_avatar(suite, ada, ada_id, current)).status_code == 200
    following = await image(suite, ada, "next.png")
    before = await profile(suite, ada, ada_id)
    events = len(await persona_events(suite, ada_id))

    suite.router.down.add("media")
    try:
        put = await set_avatar(suite, ada, ada_id, following)
        body = problem(put, 503)
        assert body["type"].endswith("/media-unavailable") and int(put.headers["Retry-After"]) >= 1
        delete = await suite.client.delete(f"{PERSONAS}/{ada_id}/avatar", headers=auth(ada))
        assert problem(delete, 503)["type"].endswith("/media-unavailable")
        assert int(delete.headers["Retry-After"]) >= 1
    finally:
        suite.router.down.discard("media")

    assert await profile(suite, ada, ada_id) == before
    assert len(await persona_events(suite, ada_id)) == events
    assert await attached_to(suite, current) == ("avatar", uuid.UUID(ada_id))
    assert await attached_to(suite, following) == (None, None)
    # and once media is back, the same request goes through
    assert (await set_avatar(suite, ada, ada_id, following)).status_code == 200


async def test_media_asks_identity_who_sees_a_persona(suite):
    ada = await with_personal(suite.client, "ada")
    bob = await with_personal(suite.client, "bob")
    await suite.deliver()
    pro, personal = ada["pro_id"], ada["personal_id"]

    assert await seen(suite, pro, pro) == 204  # itself
    assert await seen(suite, pro, bob["pro_id"]) == 204  # a reader of its context
    assert await seen(suite, personal, bob["personal_id"]) == 204
    assert await seen(suite, pro, bob["personal_id"]) == 404  # the other context
    assert await seen(suite, personal, bob["pro_id"]) == 404
    assert await seen(suite, personal, pro) == 404  # its own twin is of the other context too
    assert await seen(suite, pro, str(uuid.uuid4())) == 404  # a reader identity does not know
    assert await seen(suite, str(uuid.uuid4()), bob["pro_id"]) == 404  # a persona that does not exist
    assert await seen(suite, pro, bob["pro_id"], token="not-the-token") == 401
    resp = await suite.client.get(f"{VISIBILITY}/{pro}", params={"reader": "nobody"}, headers=auth("x"))
    assert resp.status_code in (401, 422)

    # end to end: media serves the avatar to whoever identity says sees the persona
    picture = await image(suite, ada["pro"])
    assert (await set_avatar(suite, ada["pro"], pro, picture)).status_code == 200
    assert await file_status(suite, bob["pro"], picture) == 200
    assert await file_status(suite, bob["personal"], picture) == 404
    assert await file_status(suite, ada["personal"], picture) == 404

    # a deactivated persona is seen by no one, and a deactivated reader sees no one
    root, _ = await admin(suite)
    account_id = (await suite.client.get("/api/v1/me", headers=auth(bob["pro"]))).json()["account_id"]
    resp = await suite.client.patch(
        f"/api/v1/admin/accounts/{account_id}",
        json={"status": "deactivated", "reason": "Left the agency for good."},
        headers=auth(root),
    )
    assert resp.status_code == 200, resp.text
    assert await seen(suite, bob["pro_id"], ada["pro_id"]) == 404
    assert await seen(suite, pro, bob["pro_id"]) == 404

    # an erased persona is seen by no one either
    personal_picture = await image(suite, ada["personal"])
    assert (await set_avatar(suite, ada["personal"], personal, personal_picture)).status_code == 200
    carol = await with_personal(suite.client, "carol")
    await suite.deliver()
    assert await seen(suite, personal, carol["personal_id"]) == 204
    resp = await suite.client.delete("/api/v1/me/personas/personal", headers=auth(ada["pro"]))
    assert resp.status_code == 204, resp.text
    assert await seen(suite, personal, carol["personal_id"]) == 404
    assert await file_status(suite, carol["personal"], personal_picture) == 404


async def test_a_description_edited_at_media_shows_on_the_avatar(suite):
    ada, ada_id = await person(suite.client, "ada")
    await suite.deliver()
    picture = await image(suite, ada)
    assert (await set_avatar(suite, ada, ada_id, picture)).status_code == 200
    updated_at = (await profile(suite, ada, ada_id))["updated_at"]

    resp = await suite.client.patch(
        f"/api/v1/media/{picture}", json={"description": "Ada at her desk"}, headers=auth(ada)
    )
    assert resp.status_code == 200, resp.text
    await suite.deliver()
    shown = await profile(suite, ada, ada_id)
    assert shown["avatar"]["description"] == "Ada at her desk"
    assert shown["updated_at"] == updated_at  # the file changed, not the profile


async def test_media_updates_of_other_files_and_owners_change_nothing(suite):
    ada, ada_id = await person(suite.client, "ada")
    await suite.deliver()
    picture = await image(suite, ada)
    resp = await set_avatar(suite, ada, ada_id, picture)
    avatar = resp.json()["avatar"]

    def updated(owner_kind: str, owner_id: str, media_id: str) -> dict[str, Any]:
        return {
            "id": str(uuid.uuid4()),
            "type": "internal.media.updated",
            "source": "media",
            "subject": media_id,
            "time": datetime.now(UTC).isoformat(),
            "data": {
                "owner_kind": owner_kind,
                "owner_id": owner_id,
                "media": {**avatar, "id": media_id, "description": "changed"},
            },
        }

    token = suite.identity.state.settings.internal_token.get_secret_value()
    events = [
        updated("avatar", ada_id, str(uuid.uuid4())),  # a file that is not the avatar (any more)
        updated("post", ada_id, picture),  # another owner kind
        updated("avatar", str(uuid.uuid4()), picture),  # another persona
    ]
    resp = await suite.client.post(
        "http://identity/internal/events", json={"events": events}, headers=auth(token)
    )
    assert resp.status_code == 200, resp.text
    assert (await profile(suite, ada, ada_id))["avatar"] == avatar
    async with suite.identity.state.database.sessionmaker() as session:
        dead = await session.scalar(select(func.count()).select_from(outbox_tables.dead_letter))
    assert dead == 0


async def test_a_write_that_fails_after_the_attach_gives_the_upload_back(suite, monkeypatch):
    ada, ada_id = await person(suite.client, "ada")
    await suite.deliver()
    current = await image(suite, ada, "current.png")
    assert (await set_avatar(suite, ada, ada_id, current)).status_code == 200
    following = await image(suite, ada, "next.png")

    async def failing(*args: Any) -> None:
        raise OperationalError("INSERT INTO outbox_event", {}, Exception("the database went away"))

    monkeypatch.setattr(avatars, "_announce", failing)
    resp = await set_avatar(suite, ada, ada_id, following)
    assert problem(resp, 503)
    monkeypatch.undo()

    assert (await profile(suite, ada, ada_id))["avatar"]["id"] == current
    assert await attached_to(suite, current) == ("avatar", uuid.UUID(ada_id))
    assert await attached_to(suite, following) == (None, None)  # its uploader's again
    assert (await set_avatar(suite, ada, ada_id, following)).status_code == 200
