"""Who reads a media besides its uploader (decision 0036): whoever its owner says sees the
owner, asked of the owner service itself (feed for posts and comments, identity for avatars,
groups for group images) through the real suite. Anything else, in either context, is the
404 of a missing id; so is an owner that cannot answer."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.feed.support import moderate
from tests.helpers import auth, create_group, unique, with_personal
from tests.media.samples import pdf_bytes
from tests.media.support import people, upload_ready


def signed(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


async def reads(suite: Any, token: str, media_id: str) -> tuple[int, int]:
    """(status of the media, status of its file) for a reader."""
    meta = await suite.client.get(f"/api/v1/media/{media_id}", headers=auth(token))
    file = await suite.client.get(f"/api/v1/media/{media_id}/file", headers=auth(token))
    return meta.status_code, file.status_code


async def post_with(suite: Any, token: str, media_ids: list[str], **fields: Any) -> dict[str, Any]:
    resp = await suite.client.post(
        "/api/v1/posts", json={"body": "With files", "media_ids": media_ids, **fields}, headers=auth(token)
    )
    assert resp.status_code == 201, resp.text
    post: dict[str, Any] = resp.json()
    return post


async def test_a_post_s_media_are_read_by_those_who_see_the_post(suite):
    author = await with_personal(suite.client, unique("ann"))
    reader = await with_personal(suite.client, unique("bo"))
    await suite.deliver()
    image = await upload_ready(suite, author["pro"])
    document = await upload_ready(suite, author["pro"], pdf_bytes(), "plan.pdf", "application/pdf")
    post = await post_with(suite, author["pro"], [image["id"], document["id"]])
    await suite.deliver()

    assert await reads(suite, reader["pro"], image["id"]) == (200, 200)
    resp = await suite.client.get(f"/api/v1/media/{document['id']}/file", headers=auth(reader["pro"]))
    assert resp.content == pdf_bytes()
    seen = (await suite.client.get(f"/api/v1/media/{image['id']}", headers=auth(reader["pro"]))).json()
    assert seen["sha256"] is None and seen["created_at"] is None and seen["url"]  # the uploader's alone
    # The other context sees nothing, the author's own other persona included.
    assert await reads(suite, reader["personal"], image["id"]) == (404, 404)
    assert await reads(suite, author["personal"], image["id"]) == (404, 404)

    # Hidden by moderation: its author still reads it, nobody else does.
    await moderate(suite, "moderation.content.hidden", "post", post["id"])
    assert await reads(suite, reader["pro"], image["id"]) == (404, 404)
    assert await reads(suite, author["pro"], image["id"]) == (200, 200)
    await moderate(suite, "moderation.content.restored", "post", post["id"])
    assert await reads(suite, reader["pro"], image["id"]) == (200, 200)

    # Deleted: withdrawn, for every bearer and every signed link.
    path, query = signed(seen["url"])
    assert (await suite.client.get(path, params=query)).status_code == 200
    assert (
        await suite.client.delete(f"/api/v1/posts/{post['id']}", headers=auth(author["pro"]))
    ).status_code in (
        200,
        204,
    )
    await suite.deliver()
    assert await reads(suite, reader["pro"], image["id"]) == (404, 404)
    assert (await suite.client.get(path, params=query)).status_code == 404
    assert (
        await suite.client.get(f"/api/v1/media/{image['id']}/file", headers=auth(author["pro"]))
    ).status_code == 404


async def test_a_closed_group_s_post_media_are_not_read_by_outsiders(suite):
    (owner, _), (outsider, _) = await people(suite, "cy", "di")
    group = await create_group(suite.client, owner, unique("grp"), visibility="closed")
    await suite.deliver()
    image = await upload_ready(suite, owner)
    await post_with(suite, owner, [image["id"]], audience="group", group_id=group["id"])
    await suite.deliver()

    assert await reads(suite, outsider, image["id"]) == (404, 404)
    assert await reads(suite, owner, image["id"]) == (200, 200)


async def test_an_owner_that_cannot_answer_hides_its_media(suite):
    (author, _), (reader, _) = await people(suite, "ed", "fi")
    image = await upload_ready(suite, author)
    await post_with(suite, author, [image["id"]])
    await suite.deliver()
    assert await reads(suite, reader, image["id"]) == (200, 200)

    suite.router.down.add("feed")
    try:
        assert await reads(suite, reader, image["id"]) == (404, 404)
        assert await reads(suite, author, image["id"]) == (200, 200)  # the uploader needs no one
    finally:
        suite.router.down.discard("feed")


async def test_an_avatar_is_read_by_those_who_see_the_persona(suite):
    owner = await with_personal(suite.client, unique("gi"))
    reader = await with_personal(suite.client, unique("hu"))
    await suite.deliver()
    image = await upload_ready(suite, owner["pro"])
    resp = await suite.client.put(
        f"/api/v1/personas/{owner['pro_id']}/avatar",
        json={"media_id": image["id"]},
        headers=auth(owner["pro"]),
    )
    assert resp.status_code == 200, resp.text
    await suite.deliver()

    assert await reads(suite, reader["pro"], image["id"]) == (200, 200)
    assert await reads(suite, reader["personal"], image["id"]) == (404, 404)
    assert await reads(suite, owner["personal"], image["id"]) == (404, 404)


async def test_a_group_image_is_read_by_those_who_see_the_group(suite):
    (owner, _), (outsider, _) = await people(suite, "iv", "jo")
    secret = await create_group(suite.client, owner, unique("sec"), visibility="secret")
    open_group = await create_group(suite.client, owner, unique("opn"), visibility="open")
    await suite.deliver()
    hidden = await upload_ready(suite, owner)
    shown = await upload_ready(suite, owner)
    for group, image in ((secret, hidden), (open_group, shown)):
        resp = await suite.client.put(
            f"/api/v1/groups/{group['id']}/image", json={"media_id": image["id"]}, headers=auth(owner)
        )
        assert resp.status_code == 200, resp.text
    await suite.deliver()

    assert await reads(suite, outsider, hidden["id"]) == (404, 404)
    assert await reads(suite, outsider, shown["id"]) == (200, 200)
    missing = await suite.client.get(f"/api/v1/media/{uuid.uuid4()}", headers=auth(outsider))
    hidden_answer = await suite.client.get(f"/api/v1/media/{hidden['id']}", headers=auth(outsider))
    assert hidden_answer.json()["detail"] == missing.json()["detail"]
