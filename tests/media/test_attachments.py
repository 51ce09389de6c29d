"""Media's internal attach and release calls (decision 0036), as the owner services make them,
and what records hears of them."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from sqlalchemy import select

from services.media.events import MediaRecord
from services.media.models import Media
from tests.helpers import auth
from tests.media.samples import pdf_bytes
from tests.media.support import attach, people, release, status, upload, upload_ready


async def _records(suite: Any, media_id: str) -> list[MediaRecord]:
    """The ``internal.records.media`` events media published about a media, oldest first."""
    table = suite.media.state.outbox.tables.event
    async with suite.media.state.database.sessionmaker() as session:
        rows = (
            await session.execute(
                select(table.c.data)
                .where(table.c.type == "internal.records.media", table.c.subject == str(media_id))
                .order_by(table.c.seq)
            )
        ).all()
    return [MediaRecord.model_validate(json.loads(r.data)) for r in rows]


async def test_attaching_answers_the_attachments_in_the_order_asked_and_is_idempotent(suite):
    ((token, persona),) = await people(suite, "ann")
    first = await upload_ready(suite, token, description="A chart")
    second = await upload_ready(suite, token, pdf_bytes(), "report.pdf", "application/pdf")
    post_id = str(uuid.uuid4())
    group_id = str(uuid.uuid4())

    resp = await attach(suite, "post", post_id, persona, [second["id"], first["id"]], group_id=group_id)

    assert resp.status_code == 200, resp.text
    media = resp.json()["media"]
    assert [m["id"] for m in media] == [second["id"], first["id"]]
    assert media[0] == {
        "id": second["id"],
        "media_type": "document",
        "content_type": "application/pdf",
        "filename": "report.pdf",
        "description": None,
        "size": len(pdf_bytes()),
        "width": None,
        "height": None,
        "preview": False,
    }
    assert media[1]["media_type"] == "image" and media[1]["preview"] is True
    assert media[1]["description"] == "A chart" and media[1]["width"] == 32
    again = await attach(suite, "post", post_id, persona, [second["id"], first["id"]], group_id=group_id)
    assert again.status_code == 200 and again.json() == resp.json()
    # One record each, at the first attach only.
    records = await _records(suite, first["id"])
    assert len(records) == 1
    record = records[0]
    assert (record.owner_kind, str(record.owner_id), str(record.post_id)) == ("post", post_id, post_id)
    assert str(record.group_id) == group_id and str(record.uploader_id) == persona
    assert record.context == "professional" and record.withdrawn_at is None and record.attached_at
    assert record.sha256 and len(record.sha256) == 64 and record.size == media[1]["size"]


async def test_a_comment_s_media_carry_its_post(suite):
    ((token, persona),) = await people(suite, "cat")
    media = await upload_ready(suite, token)
    comment_id, post_id = uuid.uuid4(), uuid.uuid4()

    resp = await attach(suite, "comment", comment_id, persona, [media["id"]], post_id=str(post_id))

    assert resp.status_code == 200, resp.text
    (record,) = await _records(suite, media["id"])
    assert (record.owner_kind, record.owner_id, record.post_id) == ("comment", comment_id, post_id)


async def test_what_cannot_be_attached_is_refused_naming_it_and_nothing_is_attached(suite):
    (token, persona), (other_token, _) = await people(suite, "bea", "bob")
    mine = await upload_ready(suite, token)
    theirs = await upload_ready(suite, other_token)
    elsewhere = await upload_ready(suite, token)
    assert (await attach(suite, "post", uuid.uuid4(), persona, [elsewhere["id"]])).status_code == 200
    unready = await upload(suite, token, pdf_bytes(), "later.pdf", "application/pdf")
    missing = str(uuid.uuid4())
    post_id = uuid.uuid4()

    for bad in (theirs["id"], unready["id"], elsewhere["id"], missing):
        resp = await attach(suite, "post", post_id, persona, [mine["id"], bad])
        assert resp.status_code == 422, resp.text
        problem = resp.json()
        assert problem["type"].endswith("/media-not-attachable")
        assert problem["media_id"] == bad and bad in problem["detail"]
    # The first, attachable, was not attached either: another owner may take it.
    assert (await attach(suite, "post", uuid.uuid4(), persona, [mine["id"]])).status_code == 200
    assert await _records(suite, theirs["id"]) == []


async def test_each_owner_takes_at_most_its_number_of_media(suite):
    ((token, persona),) = await people(suite, "dan")
    media = [(await upload_ready(suite, token))["id"] for _ in range(5)]

    five = await attach(suite, "post", uuid.uuid4(), persona, media)
    assert five.status_code == 422
    for kind in ("comment", "avatar", "group_image"):
        two = await attach(suite, kind, uuid.uuid4(), persona, media[:2], post_id=str(uuid.uuid4()))
        assert two.status_code == 422, kind
    no_post = await attach(suite, "comment", uuid.uuid4(), persona, media[:1])
    assert no_post.status_code == 422
    repeated = await attach(suite, "post", uuid.uuid4(), persona, [media[0], media[0]])
    assert repeated.status_code == 422
    assert (await attach(suite, "post", uuid.uuid4(), persona, [])).status_code == 422
    assert (await attach(suite, "story", uuid.uuid4(), persona, media[:1])).status_code == 422
    assert (await attach(suite, "post", uuid.uuid4(), persona, media[:4])).status_code == 200


async def test_the_internal_calls_need_the_internal_token(suite):
    ((token, persona),) = await people(suite, "eve")
    media = await upload_ready(suite, token)
    body = {
        "owner_kind": "post",
        "owner_id": str(uuid.uuid4()),
        "persona_id": persona,
        "media_ids": [media["id"]],
    }
    async with httpx.AsyncClient(transport=suite.router, base_url="http://media") as client:
        for headers in ({}, auth("not-the-token"), auth(token)):
            resp = await client.post("/internal/media/attachments", json=body, headers=headers)
            assert resp.status_code == 401
            resp = await client.post(
                "/internal/media/attachments/release",
                json={"owner_kind": "post", "owner_id": body["owner_id"]},
                headers=headers,
            )
            assert resp.status_code == 401
            resp = await client.get(f"/internal/records/media/{media['id']}/file", headers=headers)
            assert resp.status_code == 401
    # Nor does the gateway route them.
    resp = await suite.client.post("/internal/media/attachments", json=body, headers=auth(token))
    assert resp.status_code == 404


async def test_releasing_an_avatar_deletes_all_but_the_one_kept(suite):
    ((token, persona),) = await people(suite, "fay")
    old = await upload_ready(suite, token)
    new = await upload_ready(suite, token)
    assert (await attach(suite, "avatar", persona, persona, [old["id"]])).status_code == 200
    assert (await attach(suite, "avatar", persona, persona, [new["id"]])).status_code == 200

    resp = await release(suite, "avatar", persona, keep=[new["id"]])

    assert resp.status_code == 200 and resp.json() == {"released": 1}
    assert await status(suite, old["id"]) is None
    assert await status(suite, new["id"]) == "ready"
    gone = await suite.client.get(f"/api/v1/media/{old['id']}/file", headers=auth(token))
    assert gone.status_code == 404
    kept = await suite.client.get(f"/api/v1/media/{new['id']}/file", headers=auth(token))
    assert kept.status_code == 200
    # Avatars are no records.
    assert await _records(suite, old["id"]) == [] and await _records(suite, new["id"]) == []
    assert (await release(suite, "avatar", persona, keep=[new["id"]])).json() == {"released": 0}


async def test_releasing_without_deleting_gives_the_uploads_back(suite):
    ((token, persona),) = await people(suite, "gus")
    media = await upload_ready(suite, token)
    post_id = str(uuid.uuid4())
    assert (await attach(suite, "post", post_id, persona, [media["id"]])).status_code == 200

    resp = await release(suite, "post", post_id, delete=False)

    assert resp.status_code == 200 and resp.json() == {"released": 1}
    async with suite.media.state.database.sessionmaker() as session:
        row = await session.get(Media, uuid.UUID(media["id"]))
        assert row is not None and row.owner_kind is None and row.owner_id is None
        assert row.attached_at is None and row.withdrawn_at is None
    # Records heard it was attached, then that it was withdrawn from that post.
    attached, withdrawn = await _records(suite, media["id"])
    assert attached.withdrawn_at is None and withdrawn.withdrawn_at is not None
    assert str(withdrawn.owner_id) == post_id
    # The uploader may use it again, or delete it.
    assert (await attach(suite, "post", uuid.uuid4(), persona, [media["id"]])).status_code == 200


async def test_release_refuses_bad_input(suite):
    for body in (
        {"owner_kind": "post"},
        {"owner_kind": "blog", "owner_id": str(uuid.uuid4())},
        {"owner_kind": "post", "owner_id": "nope"},
        {"owner_kind": "post", "owner_id": str(uuid.uuid4()), "keep": ["x"]},
        {"owner_kind": "post", "owner_id": str(uuid.uuid4()), "other": 1},
    ):
        token = suite.media.state.settings.internal_token.get_secret_value()
        async with httpx.AsyncClient(transport=suite.router, base_url="http://media") as client:
            resp = await client.post("/internal/media/attachments/release", json=body, headers=auth(token))
        assert resp.status_code == 422, body
        assert resp.headers["content-type"] == "application/problem+json"


async def test_records_reads_the_stored_file_withdrawn_or_not(suite):
    ((token, persona),) = await people(suite, "hal")
    media = await upload_ready(suite, token, pdf_bytes("kept"), "kept.pdf", "application/pdf")
    post_id = str(uuid.uuid4())
    assert (await attach(suite, "post", post_id, persona, [media["id"]])).status_code == 200
    internal = suite.media.state.settings.internal_token.get_secret_value()

    async with httpx.AsyncClient(transport=suite.router, base_url="http://media") as client:
        resp = await client.get(f"/internal/records/media/{media['id']}/file", headers=auth(internal))
        assert resp.status_code == 200 and resp.content == pdf_bytes("kept")
        assert resp.headers["content-type"] == "application/pdf"
        missing = await client.get(f"/internal/records/media/{uuid.uuid4()}/file", headers=auth(internal))
        assert missing.status_code == 404
