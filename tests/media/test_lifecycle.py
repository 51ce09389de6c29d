"""A media's life after its upload (decision 0036): its description, its deletion, what its
owner's events do to it (withdrawn, back, deleted), a persona's erasure, records' disposal,
and the sweeper."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlmodel import col

from kit.timeutil import utcnow
from services.media import sweeping
from services.media.events import MediaRecord, MediaUpdated
from services.media.models import Blob, Media
from tests.helpers import auth
from tests.media.samples import pdf_bytes, png_bytes
from tests.media.support import attach, people, ready, send_events, status, upload, upload_ready


async def published(suite: Any, event_type: str, media_id: str | None = None) -> list[tuple[str, Any]]:
    table = suite.media.state.outbox.tables.event
    query = select(table.c.subject, table.c.data).where(table.c.type == event_type).order_by(table.c.seq)
    if media_id is not None:
        query = query.where(table.c.subject == str(media_id))
    async with suite.media.state.database.sessionmaker() as session:
        return [(r.subject, json.loads(r.data)) for r in (await session.execute(query)).all()]


async def stored_keys(suite: Any) -> set[str]:
    return {k async for k in suite.media.state.storage.keys("")}


async def age(suite: Any, media_id: str, **delta: float) -> None:
    async with suite.media.state.database.sessionmaker() as session, session.begin():
        await session.execute(
            update(Media)
            .where(col(Media.id) == uuid.UUID(str(media_id)))
            .values(created_at=utcnow() - timedelta(**delta))
        )


async def test_the_uploader_edits_the_description_and_the_owner_hears_of_it(suite):
    (token, persona), (other, _) = await people(suite, "ann", "bo")
    media = await upload_ready(suite, token, description="Before")
    path = f"/api/v1/media/{media['id']}"

    unattached = await suite.client.patch(path, json={"description": "Not yet shown"}, headers=auth(token))
    assert unattached.status_code == 200 and unattached.json()["description"] == "Not yet shown"
    assert await published(suite, "internal.media.updated") == []

    post_id = str(uuid.uuid4())
    assert (await attach(suite, "post", post_id, persona, [media["id"]])).status_code == 200
    resp = await suite.client.patch(path, json={"description": "A red square"}, headers=auth(token))

    assert resp.status_code == 200 and resp.json()["description"] == "A red square"
    ((subject, data),) = await published(suite, "internal.media.updated")
    event = MediaUpdated.model_validate(data)
    assert subject == media["id"] and event.owner_kind == "post" and str(event.owner_id) == post_id
    assert event.media.description == "A red square" and str(event.media.id) == media["id"]
    records = [MediaRecord.model_validate(d) for _, d in await published(suite, "internal.records.media")]
    assert [r.description for r in records] == ["Not yet shown", "A red square"]
    cleared = await suite.client.patch(path, json={"description": None}, headers=auth(token))
    assert cleared.status_code == 200 and cleared.json()["description"] is None

    for body in ({"filename": "x.png"}, {"description": "ok", "status": "ready"}, {}, {"description": " "}):
        assert (await suite.client.patch(path, json=body, headers=auth(token))).status_code == 422, body
    assert (
        await suite.client.patch(path, json={"description": "mine?"}, headers=auth(other))
    ).status_code == 404


async def test_the_uploader_deletes_an_upload_unless_it_is_attached(suite):
    (token, persona), (other, _) = await people(suite, "cy", "di")
    loose = await upload_ready(suite, token, pdf_bytes(), "loose.pdf", "application/pdf")
    unprocessed = await upload(suite, token, pdf_bytes("new"), "new.pdf", "application/pdf")
    used = await upload_ready(suite, token)
    assert (
        await attach(suite, "comment", uuid.uuid4(), persona, [used["id"]], post_id=str(uuid.uuid4()))
    ).status_code == 200
    avatar = await upload_ready(suite, token, png_bytes(8, 8))
    assert (await attach(suite, "avatar", persona, persona, [avatar["id"]])).status_code == 200

    assert (await suite.client.delete(f"/api/v1/media/{loose['id']}", headers=auth(other))).status_code == 404
    for attached in (used, avatar):
        resp = await suite.client.delete(f"/api/v1/media/{attached['id']}", headers=auth(token))
        assert resp.status_code == 409 and resp.json()["type"].endswith("/media-attached")
    assert (await suite.client.delete(f"/api/v1/media/{loose['id']}", headers=auth(token))).status_code == 204
    assert (
        await suite.client.delete(f"/api/v1/media/{unprocessed['id']}", headers=auth(token))
    ).status_code == 204

    assert await status(suite, loose["id"]) is None and await status(suite, unprocessed["id"]) is None
    assert f"incoming/{unprocessed['id']}" not in await stored_keys(suite)  # at once
    assert (await suite.client.get(f"/api/v1/media/{loose['id']}", headers=auth(token))).status_code == 404
    assert (await suite.client.delete(f"/api/v1/media/{loose['id']}", headers=auth(token))).status_code == 404


async def test_a_comment_s_media_follow_the_comment_and_its_post(suite):
    ((token, persona),) = await people(suite, "ed")
    media = await upload_ready(suite, token)
    post_id, comment_id = str(uuid.uuid4()), str(uuid.uuid4())
    resp = await attach(suite, "comment", comment_id, persona, [media["id"]], post_id=post_id)
    assert resp.status_code == 200
    file = f"/api/v1/media/{media['id']}/file"

    async def served() -> bool:
        resp: httpx.Response = await suite.client.get(file, headers=auth(token))
        return resp.status_code == 200

    comment = {"id": comment_id, "post_id": post_id}
    await send_events(suite, ("comment.deleted", post_id, comment), source="feed")
    assert not await served()
    await send_events(suite, ("post.deleted", post_id, {"id": post_id}), source="feed")
    await send_events(suite, ("post.restored", post_id, {"id": post_id}), source="feed")
    assert not await served()  # deleted on its own: still withdrawn
    await send_events(suite, ("comment.restored", post_id, comment), source="feed")
    assert await served()
    await send_events(suite, ("post.deleted", post_id, {"id": post_id}), source="feed")
    assert not await served()  # its post deleted
    await send_events(suite, ("post.restored", post_id, {"id": post_id}), source="feed")
    assert await served()
    withdrawn = [
        MediaRecord.model_validate(d).withdrawn_at
        for _, d in await published(suite, "internal.records.media")
    ]
    assert [w is None for w in withdrawn] == [True, False, True, False, True]


async def test_a_deleted_group_takes_its_image(suite):
    ((token, persona),) = await people(suite, "fi")
    image = await upload_ready(suite, token)
    group_id = str(uuid.uuid4())
    assert (await attach(suite, "group_image", group_id, persona, [image["id"]])).status_code == 200

    await send_events(suite, ("group.deleted", group_id, {"id": group_id}), source="groups")

    assert await status(suite, image["id"]) is None


async def test_an_erased_persona_s_uploads_are_deleted_but_what_records_keeps(suite):
    (token, persona), (other, _) = await people(suite, "gi", "hu")
    loose = await upload_ready(suite, token)
    avatar = await upload_ready(suite, token)
    posted = await upload_ready(suite, token, pdf_bytes("kept"), "kept.pdf", "application/pdf")
    theirs = await upload_ready(suite, other)
    assert (await attach(suite, "avatar", persona, persona, [avatar["id"]])).status_code == 200
    post_id = str(uuid.uuid4())
    assert (await attach(suite, "post", post_id, persona, [posted["id"]])).status_code == 200

    await send_events(suite, ("persona.erased", persona, {"context": "professional"}), source="identity")

    assert await status(suite, loose["id"]) is None and await status(suite, avatar["id"]) is None
    assert await status(suite, theirs["id"]) == "ready"
    kept = await status(suite, posted["id"])
    assert kept == "ready"
    async with suite.media.state.database.sessionmaker() as session:
        row = await session.get(Media, uuid.UUID(posted["id"]))
        assert row.withdrawn_at is not None  # never served again
    records = [
        MediaRecord.model_validate(d)
        for _, d in await published(suite, "internal.records.media", posted["id"])
    ]
    assert records[-1].withdrawn_at is not None


async def test_records_disposes_of_media_for_good(suite):
    ((token, persona),) = await people(suite, "iv")
    first = await upload_ready(suite, token)
    second = await upload_ready(suite, token, pdf_bytes(), "b.pdf", "application/pdf")
    kept = await upload_ready(suite, token, pdf_bytes("kept"), "c.pdf", "application/pdf")
    post_id = str(uuid.uuid4())
    resp = await attach(suite, "post", post_id, persona, [first["id"], second["id"], kept["id"]])
    assert resp.status_code == 200
    run = str(uuid.uuid4())

    await send_events(
        suite,
        ("internal.records.dispose", run, {"kind": "media", "ids": [first["id"], second["id"]]}),
        ("internal.records.dispose", run, {"kind": "post", "ids": [post_id]}),
        ("internal.records.dispose", run, {"class": "notifications", "before": utcnow().isoformat()}),
        source="records",
    )

    assert await status(suite, first["id"]) is None and await status(suite, second["id"]) is None
    assert await status(suite, kept["id"]) == "ready"
    dead = suite.media.state.outbox.tables.dead_letter
    async with suite.media.state.database.sessionmaker() as session:
        assert (await session.execute(select(dead.c.id))).all() == []


async def test_the_sweeper(suite):
    ((token, persona),) = await people(suite, "jo")
    forgotten = await upload_ready(suite, token, pdf_bytes("old"), "old.pdf", "application/pdf")
    fresh = await upload_ready(suite, token, pdf_bytes("fresh"), "fresh.pdf", "application/pdf")
    attached = await upload_ready(suite, token, pdf_bytes("used"), "used.pdf", "application/pdf")
    assert (await attach(suite, "post", uuid.uuid4(), persona, [attached["id"]])).status_code == 200
    rejected = await upload(suite, token, b"<html><body>x</body></html>", "x.html", "text/html")
    await ready(suite, rejected["id"], expect="rejected")
    stuck = await upload(suite, token, b"never processed", "stuck.txt", "text/plain")
    await age(suite, forgotten["id"], hours=25)
    await age(suite, attached["id"], hours=25)
    await age(suite, rejected["id"], hours=25)
    await age(suite, stuck["id"], hours=25)
    async with suite.media.state.database.sessionmaker() as session:
        old_key = (await session.get(Media, uuid.UUID(forgotten["id"]))).file_key

    swept = await sweeping.sweep(suite.media)

    assert swept["media"] == 3
    assert await status(suite, forgotten["id"]) is None
    assert await status(suite, rejected["id"]) is None and await status(suite, stuck["id"]) is None
    assert await status(suite, fresh["id"]) == "ready" and await status(suite, attached["id"]) == "ready"
    # Their bytes are no one's now, but were touched within the hour: kept for now.
    assert old_key in await stored_keys(suite)
    assert f"incoming/{stuck['id']}" in await stored_keys(suite)
    async with suite.media.state.database.sessionmaker() as session, session.begin():
        await session.execute(update(Blob).values(touched_at=utcnow() - timedelta(hours=2)))

    swept = await sweeping.sweep(suite.media)

    assert swept == {"media": 0, "stored_keys": 2}
    keys = await stored_keys(suite)
    assert old_key not in keys and f"incoming/{stuck['id']}" not in keys
    async with suite.media.state.database.sessionmaker() as session:
        named = set((await session.scalars(select(col(Media.file_key)))).all()) | set(
            (await session.scalars(select(col(Media.preview_key)))).all()
        )
        blobs = set((await session.scalars(select(col(Blob.key)))).all())
    assert blobs == named - {None} and blobs <= keys
    assert (
        await suite.client.get(f"/api/v1/media/{fresh['id']}/file", headers=auth(token))
    ).status_code == 200


async def test_a_stored_file_two_media_share_stays_while_one_names_it(suite):
    ((token, _),) = await people(suite, "ka")
    first = await upload_ready(suite, token, pdf_bytes("same"), "one.pdf", "application/pdf")
    second = await upload_ready(suite, token, pdf_bytes("same"), "two.pdf", "application/pdf")
    assert (await suite.client.delete(f"/api/v1/media/{first['id']}", headers=auth(token))).status_code == 204
    async with suite.media.state.database.sessionmaker() as session, session.begin():
        await session.execute(update(Blob).values(touched_at=utcnow() - timedelta(hours=2)))

    assert (await sweeping.sweep(suite.media))["stored_keys"] == 0

    resp = await suite.client.get(f"/api/v1/media/{second['id']}/file", headers=auth(token))
    assert resp.status_code == 200 and resp.content == pdf_bytes("same")
