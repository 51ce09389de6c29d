"""Files on posts and comments (decision 0036), with the suite's real media service: uploads go
through the gateway and media's worker makes them ready (``tests.media.support``), feed attaches
them with media's internal call, and media asks feed's internal routes who sees a post or a
comment.

What is held here: a post takes up to four of its author's own ready uploads and a comment
one, each refusal a 422 naming the file and writing nothing; the files are shown wherever the
post or comment is (its answer, every timeline, PostgreSQL's home JSON from the inbox and on
demand, search, the stream); media not answering is a 503 that writes nothing, and a write
that fails after media attached gives the uploads back; feed answers media's question by its
one rule (decision 0028); a description edited at media reaches the posts and comments."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.exc import OperationalError

from services.feed import attachments, commenting, inbox
from services.feed.models import Comment, Post
from services.media.models import Media
from tests.feed.support import follow, make_group, moderate, people, send_events
from tests.helpers import auth, with_personal
from tests.media.samples import pdf_bytes
from tests.media.support import upload, upload_ready

HOME = "/api/v1/timelines/home"
POSTS = "/api/v1/posts"
STREAM = "/api/v1/stream"
FROM_THE_START = f"{'0' * 32}.{'0' * 32}"  # a Last-Event-ID before every post and notification


async def _ready(suite: Any, token: str, count: int = 1) -> list[str]:
    """``count`` small PNGs of the token's persona, ready, described ``picture 0``…"""
    return [(await upload_ready(suite, token, description=f"picture {i}"))["id"] for i in range(count)]


async def _create(suite: Any, token: str, body: str = "With files", **fields: Any) -> httpx.Response:
    resp: httpx.Response = await suite.client.post(POSTS, json={"body": body, **fields}, headers=auth(token))
    return resp


async def _comment(
    suite: Any, token: str, post_id: str, body: str = "A comment", **fields: Any
) -> httpx.Response:
    resp: httpx.Response = await suite.client.post(
        f"{POSTS}/{post_id}/comments", json={"body": body, **fields}, headers=auth(token)
    )
    return resp


def _created(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def _seen(suite: Any, kind: str, item_id: str, reader: str) -> int:
    """Feed's answer to media's question: does ``reader`` see the post or comment?"""
    token = suite.feed.state.settings.internal_token.get_secret_value()
    async with httpx.AsyncClient(transport=suite.router, base_url="http://feed") as client:
        resp = await client.get(
            f"/internal/media/{kind}/{item_id}", params={"reader": reader}, headers=auth(token)
        )
    assert resp.status_code in (204, 404), resp.text
    assert resp.content == b"" or resp.status_code == 404
    return resp.status_code


async def _owner(suite: Any, media_id: str) -> Media:
    async with suite.media.state.database.sessionmaker() as session:
        media: Media | None = await session.get(Media, uuid.UUID(media_id))
        assert media is not None
        return media


async def _own_posts(suite: Any, token: str, persona_id: str) -> list[dict[str, Any]]:
    resp = await suite.client.get(f"/api/v1/timelines/personas/{persona_id}", headers=auth(token))
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


async def _items(suite: Any, token: str, path: str, **params: Any) -> list[dict[str, Any]]:
    resp = await suite.client.get(path, params=params, headers=auth(token))
    assert resp.status_code == 200, (path, resp.text)
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


async def _streamed(suite: Any, token: str) -> dict[str, dict[str, Any]]:
    """Every post the event stream sends from the start, by id."""
    resp = await suite.client.get(STREAM, headers={**auth(token), "Last-Event-ID": FROM_THE_START})
    assert resp.status_code == 200, resp.text
    posts = {}
    for block in resp.text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
        if fields.get("event") == "post":
            data = json.loads(fields["data"])
            posts[data["id"]] = data
    return posts


async def _as_single(suite: Any, token: str, items: list[dict[str, Any]]) -> None:
    """Each item of a read is the post as ``GET /api/v1/posts/{id}`` answers it (a search's
    excerpt aside)."""
    for item in items:
        single = await suite.client.get(f"{POSTS}/{item['id']}", headers=auth(token))
        assert single.status_code == 200, single.text
        assert {k: v for k, v in item.items() if k != "highlight"} == single.json(), item["id"]


# Attaching ---------------------------------------------------------------------------------------


async def test_a_post_shows_its_files_wherever_it_is_shown(suite):
    settings = suite.feed.state.settings
    settings.stream_max_seconds, settings.stream_poll_seconds = 0.5, 0.05
    (ada, ada_id), (bob, bob_id) = await people(suite, "ada", "bob")
    await follow(suite.client, bob, ada_id)
    group = await make_group(suite, {ada_id: "owner", bob_id: "member"})
    pictures = await _ready(suite, ada, 3)
    document = (await upload_ready(suite, ada, pdf_bytes(), "report.pdf", "application/pdf"))["id"]
    ids = [pictures[1], document, pictures[0], pictures[2]]  # shown in the order given
    created = _created(await _create(suite, ada, "Site visit #findme", media_ids=ids))
    assert [item["id"] for item in created["media"]] == ids
    assert created["media"][0] == {
        "id": pictures[1],
        "media_type": "image",
        "content_type": "image/png",
        "filename": "picture.png",
        "description": "picture 1",
        "size": created["media"][0]["size"],
        "width": 32,
        "height": 24,
        "preview": True,
    }
    assert created["media"][0]["size"] > 0
    pdf = created["media"][1]
    assert (pdf["media_type"], pdf["content_type"], pdf["filename"]) == (
        "document",
        "application/pdf",
        "report.pdf",
    )
    assert (pdf["width"], pdf["height"], pdf["preview"]) == (None, None, False)
    (grouped_file,) = await _ready(suite, ada)
    grouped = _created(
        await _create(
            suite, ada, "In the group #findme", audience="group", group_id=group, media_ids=[grouped_file]
        )
    )
    plain = _created(await _create(suite, ada, "No files #findme"))
    assert plain["media"] == []
    single = await suite.client.get(f"{POSTS}/{created['id']}", headers=auth(bob))
    assert single.json()["media"] == created["media"]

    reads = {
        HOME: {},
        "/api/v1/timelines/organisation": {},
        f"/api/v1/timelines/personas/{ada_id}": {},
        f"/api/v1/timelines/groups/{group}": {},
        "/api/v1/timelines/tags/findme": {},
        POSTS: {"q": "findme"},
        "/api/v1/search/posts": {"q": "findme"},
    }
    for path, params in reads.items():
        items = await _items(suite, bob, path, **params)
        shown = {item["id"]: item["media"] for item in items}
        if path != "/api/v1/timelines/organisation":  # the group's post is not to the organisation
            assert shown[grouped["id"]] == grouped["media"], path
        if path != f"/api/v1/timelines/groups/{group}":
            assert shown[created["id"]] == created["media"], path
            assert shown[plain["id"]] == [], path
        await _as_single(suite, bob, items)
    streamed = await _streamed(suite, bob)
    assert streamed[created["id"]]["media"] == created["media"]
    await _as_single(suite, bob, list(streamed.values()))

    # Media asked feed, which says Bob sees the post: he reads the file's description there.
    resp = await suite.client.get(f"/api/v1/media/{document}", headers=auth(bob))
    assert resp.status_code == 200, resp.text
    assert resp.json()["filename"] == "report.pdf"
    media = await _owner(suite, document)
    assert (media.owner_kind, str(media.owner_id), media.group_id) == ("post", created["id"], None)
    media = await _owner(suite, grouped_file)
    assert (media.owner_kind, str(media.owner_id), str(media.group_id)) == ("post", grouped["id"], group)


@pytest.mark.postgres
async def test_postgresql_writes_the_files_in_the_home_json_from_the_inbox_and_on_demand(suite, monkeypatch):
    """PostgreSQL writes each home item's JSON itself (decision 0011), the files included: from
    the reader's inbox and from its statements on demand, each item is the post's own answer."""
    (ada, ada_id), (bob, bob_id) = await people(suite, "ada", "bob")
    await follow(suite.client, bob, ada_id)
    tricky = 'A "quoted" \\ description é 漢 🎉 \u2028 </script>'
    files = [(await upload_ready(suite, ada, description=tricky))["id"], *(await _ready(suite, ada, 1))]
    first = _created(await _create(suite, ada, "Two files", media_ids=files))
    _created(await _create(suite, ada, "", media_ids=await _ready(suite, ada, 1)))
    _created(await _create(suite, ada, "None"))
    assert first["media"][0]["description"] == tricky
    items = await _items(suite, bob, HOME)  # builds Bob's inbox
    assert [len(item["media"]) for item in items] == [0, 1, 2]
    await _as_single(suite, bob, items)
    assert await _items(suite, bob, HOME) == items  # read from the inbox

    async def no_inbox(*args: Any, **kwargs: Any) -> bool:
        return False

    monkeypatch.setattr(inbox, "build", no_inbox)
    async with suite.feed.state.database.sessionmaker() as session, session.begin():
        await inbox.drop(session, uuid.UUID(bob_id))
    assert await _items(suite, bob, HOME) == items  # read on demand


async def test_five_files_a_repeated_one_or_no_text_without_files_are_refused(suite):
    (ada, ada_id), _ = await people(suite, "ada", "bob")
    five = [str(uuid.uuid4()) for _ in range(5)]
    for body, media_ids in (("Five", five), ("Twice", [five[0], five[0]]), ("", [])):
        resp = await _create(suite, ada, body, media_ids=media_ids)
        assert resp.status_code == 422, resp.text
        assert resp.headers["content-type"] == "application/problem+json"
    assert (await _create(suite, ada, "  ", media_ids=await _ready(suite, ada))).status_code == 422
    assert await _own_posts(suite, ada, ada_id) == []
    files = await _ready(suite, ada, 4)
    alone = _created(await _create(suite, ada, "", media_ids=files))
    assert alone["body"] == "" and len(alone["media"]) == 4
    resp = await suite.client.post(POSTS, json={"media_ids": await _ready(suite, ada)}, headers=auth(ada))
    assert (_created(resp))["body"] == ""  # the body may be left out with files


async def test_a_file_media_will_not_attach_is_a_422_naming_it_and_nothing_is_written(suite):
    (ada, ada_id), (bob, _) = await people(suite, "ada", "bob")
    (mine,) = await _ready(suite, ada)
    (bobs,) = await _ready(suite, bob)
    unready = (await upload(suite, ada, pdf_bytes(), "later.pdf", "application/pdf"))["id"]
    missing = str(uuid.uuid4())
    for refused in (bobs, unready, missing):
        resp = await _create(suite, ada, media_ids=[mine, refused])
        assert resp.status_code == 422, resp.text
        problem = resp.json()
        assert problem["type"].endswith("/media-not-attachable"), problem
        assert refused in problem["detail"]
        assert problem["errors"][0]["location"] == "body.media_ids[1]"
        assert mine not in problem["detail"]
    assert await _own_posts(suite, ada, ada_id) == []
    assert (await _owner(suite, mine)).owner_kind is None  # media attached none of them
    elsewhere = _created(await _create(suite, ada, "First", media_ids=[mine]))
    resp = await _create(suite, ada, "Second", media_ids=[mine])
    assert resp.status_code == 422 and mine in resp.json()["detail"], resp.text
    resp = await _comment(suite, ada, elsewhere["id"], media_ids=[mine])
    assert resp.status_code == 422 and mine in resp.json()["detail"], resp.text
    assert [item["id"] for item in await _own_posts(suite, ada, ada_id)] == [elsewhere["id"]]
    comments = await _items(suite, ada, f"{POSTS}/{elsewhere['id']}/comments")
    assert comments == []


async def test_a_comment_carries_one_file(suite):
    (ada, ada_id), (bob, bob_id) = await people(suite, "ada", "bob")
    group = await make_group(suite, {ada_id: "owner", bob_id: "member"}, visibility="open")
    said = _created(await _create(suite, ada, "Look", audience="group", group_id=group))
    two = await _ready(suite, bob, 2)
    resp = await _comment(suite, bob, said["id"], media_ids=two)
    assert resp.status_code == 422, resp.text
    made = _created(await _comment(suite, bob, said["id"], "Here it is, findme", media_ids=two[:1]))
    assert [item["id"] for item in made["media"]] == two[:1]
    assert made["media"][0]["description"] == "picture 0"
    reply = _created(
        await _comment(suite, ada, said["id"], "", parent_id=made["id"], media_ids=await _ready(suite, ada))
    )
    assert reply["body"] == "" and len(reply["media"]) == 1
    listed = await _items(suite, ada, f"{POSTS}/{said['id']}/comments")
    assert [item["media"] for item in listed] == [made["media"]]
    replies = await _items(suite, ada, f"{POSTS}/{said['id']}/comments", parent_id=made["id"])
    assert [item["media"] for item in replies] == [reply["media"]]
    one = await suite.client.get(f"{POSTS}/{said['id']}/comments/{made['id']}", headers=auth(ada))
    assert one.json() == made | {"reply_count": 1}
    found = await _items(suite, ada, "/api/v1/search/comments", q="findme")
    assert [item["media"] for item in found] == [made["media"]]
    media = await _owner(suite, two[0])
    assert (media.owner_kind, str(media.owner_id)) == ("comment", made["id"])
    assert (str(media.post_id), str(media.group_id)) == (said["id"], group)
    assert (await _comment(suite, bob, said["id"], "")).status_code == 422  # no text, no file


async def test_an_idempotent_replay_attaches_nothing_again(suite, monkeypatch):
    (ada, ada_id), _ = await people(suite, "ada", "bob")
    files = await _ready(suite, ada, 2)
    calls: list[Any] = []
    attach = attachments.MediaCalls.attach

    async def counted(self: Any, body: Any, media_ids: Any) -> Any:
        calls.append(body)
        return await attach(self, body, media_ids)

    monkeypatch.setattr(attachments.MediaCalls, "attach", counted)
    headers = {**auth(ada), "Idempotency-Key": "files-once"}
    first = await suite.client.post(POSTS, json={"body": "Once", "media_ids": files}, headers=headers)
    again = await suite.client.post(POSTS, json={"body": "Once", "media_ids": files}, headers=headers)
    assert first.status_code == again.status_code == 201, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json() and len(calls) == 1
    assert [item["id"] for item in await _own_posts(suite, ada, ada_id)] == [first.json()["id"]]


# When media or feed's own write fails ------------------------------------------------------------


async def test_media_down_is_a_503_and_nothing_is_written(suite):
    (ada, ada_id), _ = await people(suite, "ada", "bob")
    files = await _ready(suite, ada, 2)
    said = _created(await _create(suite, ada, "Before"))
    suite.router.down.add("media")
    try:
        resp = await _create(suite, ada, media_ids=files)
        assert resp.status_code == 503, resp.text
        assert resp.headers["Retry-After"] and resp.json()["type"].endswith("/media-unavailable")
        resp = await _comment(suite, ada, said["id"], media_ids=files[:1])
        assert resp.status_code == 503, resp.text
        without = _created(await _create(suite, ada, "No files, no call"))
    finally:
        suite.router.down.discard("media")
    assert [item["id"] for item in await _own_posts(suite, ada, ada_id)] == [without["id"], said["id"]]
    assert await _items(suite, ada, f"{POSTS}/{said['id']}/comments") == []
    again = _created(await _create(suite, ada, media_ids=files))  # nothing was attached
    assert [item["id"] for item in again["media"]] == files


async def test_a_call_that_timed_out_after_media_attached_gives_the_files_back(suite, monkeypatch):
    (ada, ada_id), _ = await people(suite, "ada", "bob")
    files = await _ready(suite, ada, 2)
    post = attachments.MediaCalls._post

    async def answer_lost(self: Any, path: str, body: dict[str, Any]) -> httpx.Response:
        resp = await post(self, path, body)
        if path == attachments.ATTACH_PATH:
            assert resp.status_code == 200, resp.text  # media attached them...
            raise httpx.ReadTimeout("the answer never came")  # ...and feed never heard
        return resp

    monkeypatch.setattr(attachments.MediaCalls, "_post", answer_lost)
    resp = await _create(suite, ada, media_ids=files)
    assert resp.status_code == 503, resp.text
    assert await _own_posts(suite, ada, ada_id) == []
    assert [(await _owner(suite, file)).owner_kind for file in files] == [None, None]
    monkeypatch.undo()
    assert len((_created(await _create(suite, ada, media_ids=files)))["media"]) == 2


async def test_a_write_that_fails_after_media_attached_gives_the_files_back(suite, monkeypatch):
    (ada, ada_id), _ = await people(suite, "ada", "bob")
    files = await _ready(suite, ada, 2)
    said = _created(await _create(suite, ada, "Before"))

    async def database_gone(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("INSERT …", {}, ConnectionError("the database went away"))

    def fan_out_gone(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("INSERT …", {}, ConnectionError("the database went away"))

    monkeypatch.setattr(inbox, "fanning_out", fan_out_gone)  # the post's last statement
    monkeypatch.setattr(commenting, "notify", database_gone)
    resp = await _create(suite, ada, media_ids=files)
    assert resp.status_code == 503, resp.text
    resp = await _comment(suite, ada, said["id"], media_ids=files[:1])
    assert resp.status_code == 503, resp.text
    assert [(await _owner(suite, file)).owner_kind for file in files] == [None, None]
    monkeypatch.undo()
    assert [item["id"] for item in await _own_posts(suite, ada, ada_id)] == [said["id"]]
    assert await _items(suite, ada, f"{POSTS}/{said['id']}/comments") == []
    made = _created(await _comment(suite, ada, said["id"], media_ids=files[:1]))
    assert len(made["media"]) == 1
    assert len((_created(await _create(suite, ada, media_ids=files[1:])))["media"]) == 1


# Who sees a file: media asks feed -----------------------------------------------------------------


async def test_media_is_told_who_sees_a_post_by_feeds_one_rule(suite):
    ada = await with_personal(suite.client, "ada")
    (bob, bob_id), (_carol, carol_id), (_erin, erin_id) = await people(suite, "bob", "carol", "erin")
    dan = await with_personal(suite.client, "dan")
    await suite.deliver()
    ada_pro, ada_id = ada["pro"], ada["pro_id"]
    await follow(suite.client, bob, ada_id)
    closed = await make_group(suite, {ada_id: "owner", erin_id: "member"})
    public = _created(await _create(suite, ada_pro, "To all", media_ids=await _ready(suite, ada_pro)))
    followers = _created(await _create(suite, ada_pro, "To followers", audience="followers"))
    grouped = _created(await _create(suite, ada_pro, "To the group", audience="group", group_id=closed))
    expected = {
        public["id"]: {ada_id: 204, bob_id: 204, carol_id: 204, erin_id: 204},
        followers["id"]: {ada_id: 204, bob_id: 204, carol_id: 404, erin_id: 404},
        grouped["id"]: {ada_id: 204, erin_id: 204, bob_id: 404, carol_id: 404},
    }
    for post_id, readers in expected.items():
        # the other context sees nothing, not even its own twin's posts
        readers = {**readers, ada["personal_id"]: 404, dan["personal_id"]: 404, str(uuid.uuid4()): 404}
        for reader, status in readers.items():
            assert await _seen(suite, "posts", post_id, reader) == status, (post_id, reader)
    assert await _seen(suite, "posts", str(uuid.uuid4()), ada_id) == 404

    # The same answer reaches media's readers: Bob reads the file, Dan's personal persona not.
    (file,) = [item["id"] for item in public["media"]]
    assert (await suite.client.get(f"/api/v1/media/{file}", headers=auth(bob))).status_code == 200
    assert (await suite.client.get(f"/api/v1/media/{file}", headers=auth(dan["personal"]))).status_code == 404

    await moderate(suite, "moderation.content.hidden", "post", public["id"])
    assert await _seen(suite, "posts", public["id"], bob_id) == 404
    assert await _seen(suite, "posts", public["id"], ada_id) == 204  # its author still sees it
    assert (await suite.client.get(f"/api/v1/media/{file}", headers=auth(bob))).status_code == 404
    await moderate(suite, "moderation.content.restored", "post", public["id"])
    assert await _seen(suite, "posts", public["id"], bob_id) == 204

    resp = await suite.client.delete(f"{POSTS}/{followers['id']}", headers=auth(ada_pro))
    assert resp.status_code == 204, resp.text
    assert await _seen(suite, "posts", followers["id"], ada_id) == 404
    assert await _seen(suite, "posts", followers["id"], bob_id) == 404


async def test_media_is_told_who_sees_a_comment(suite):
    (ada, ada_id), (bob, bob_id), (_carol, carol_id) = await people(suite, "ada", "bob", "carol")
    dan = await with_personal(suite.client, "dan")
    await suite.deliver()
    closed = await make_group(suite, {ada_id: "owner", bob_id: "member"})
    said = _created(await _create(suite, ada, "To all"))
    inside = _created(await _create(suite, ada, "Inside", audience="group", group_id=closed))
    comment = _created(await _comment(suite, bob, said["id"], media_ids=await _ready(suite, bob)))
    hidden = _created(await _comment(suite, bob, said["id"], "To hide"))
    grouped = _created(await _comment(suite, bob, inside["id"], "Inside too"))
    for reader, status in ((ada_id, 204), (bob_id, 204), (carol_id, 204), (dan["personal_id"], 404)):
        assert await _seen(suite, "comments", comment["id"], reader) == status, reader
    assert await _seen(suite, "comments", grouped["id"], bob_id) == 204
    assert await _seen(suite, "comments", grouped["id"], carol_id) == 404
    assert await _seen(suite, "comments", str(uuid.uuid4()), ada_id) == 404
    await moderate(suite, "moderation.content.hidden", "comment", hidden["id"], post_id=said["id"])
    assert await _seen(suite, "comments", hidden["id"], carol_id) == 404
    assert await _seen(suite, "comments", hidden["id"], bob_id) == 204
    await moderate(suite, "moderation.content.hidden", "post", said["id"])  # the post hides its comments
    assert await _seen(suite, "comments", comment["id"], carol_id) == 404
    assert await _seen(suite, "comments", comment["id"], ada_id) == 204  # who sees the post
    await moderate(suite, "moderation.content.restored", "post", said["id"])
    resp = await suite.client.delete(f"{POSTS}/{said['id']}/comments/{comment['id']}", headers=auth(bob))
    assert resp.status_code == 204, resp.text
    assert await _seen(suite, "comments", comment["id"], bob_id) == 404


async def test_the_visibility_routes_take_the_internal_token_and_a_reader(suite):
    (ada, ada_id), _ = await people(suite, "ada", "bob")
    said = _created(await _create(suite, ada, "To all"))
    async with httpx.AsyncClient(transport=suite.router, base_url="http://feed") as client:
        for kind, item in (("posts", said["id"]), ("comments", str(uuid.uuid4()))):
            path = f"/internal/media/{kind}/{item}"
            assert (await client.get(path, params={"reader": ada_id})).status_code == 401
            wrong = await client.get(path, params={"reader": ada_id}, headers=auth(ada))
            assert wrong.status_code == 401
            token = suite.feed.state.settings.internal_token.get_secret_value()
            for params in ({}, {"reader": "nobody"}):
                resp = await client.get(path, params=params, headers=auth(token))
                assert resp.status_code == 422, resp.text
                assert resp.headers["content-type"] == "application/problem+json"
    assert "/internal/media/posts/{post_id}" not in json.dumps(suite.feed.openapi())


# What media tells feed, and what deletion takes ------------------------------------------------------


async def test_a_description_edited_at_media_reaches_the_post_and_the_comment(suite):
    (ada, ada_id), (bob, _) = await people(suite, "ada", "bob")
    await follow(suite.client, bob, ada_id)
    files = await _ready(suite, ada, 2)
    said = _created(await _create(suite, ada, "Described", media_ids=files))
    (commented,) = await _ready(suite, bob)
    made = _created(await _comment(suite, bob, said["id"], media_ids=[commented]))
    for media_id, token in ((files[1], ada), (commented, bob)):
        resp = await suite.client.patch(
            f"/api/v1/media/{media_id}", json={"description": 'A better "description"'}, headers=auth(token)
        )
        assert resp.status_code == 200, resp.text
    await suite.deliver()
    shown = (await suite.client.get(f"{POSTS}/{said['id']}", headers=auth(bob))).json()["media"]
    assert [item["description"] for item in shown] == ["picture 0", 'A better "description"']
    assert shown[1] == said["media"][1] | {"description": 'A better "description"'}
    (item,) = await _items(suite, bob, HOME)
    assert item["media"] == shown
    (comment,) = await _items(suite, ada, f"{POSTS}/{said['id']}/comments")
    assert comment["media"] == [made["media"][0] | {"description": 'A better "description"'}]

    # Another owner's file, or one no post lists any longer, changes nothing here.
    other = said["media"][0] | {"description": "not this post's"}
    await send_events(
        suite,
        ("internal.media.updated", files[0], {"owner_kind": "avatar", "owner_id": ada_id, "media": other}),
        ("internal.media.updated", files[0], {"owner_kind": "post", "owner_id": made["id"], "media": other}),
        (
            "internal.media.updated",
            files[0],
            {"owner_kind": "comment", "owner_id": made["id"], "media": other},
        ),
        source="media",
    )
    assert (await suite.client.get(f"{POSTS}/{said['id']}", headers=auth(bob))).json()["media"] == shown


async def test_a_deleted_post_or_comment_keeps_no_files(suite):
    (ada, _), (bob, _) = await people(suite, "ada", "bob")
    files = await _ready(suite, ada, 1)
    said = _created(await _create(suite, ada, "Soon gone", media_ids=files))
    made = _created(await _comment(suite, ada, said["id"], media_ids=await _ready(suite, ada)))
    resp = await suite.client.delete(f"{POSTS}/{said['id']}/comments/{made['id']}", headers=auth(ada))
    assert resp.status_code == 204, resp.text
    resp = await suite.client.delete(f"{POSTS}/{said['id']}", headers=auth(ada))
    assert resp.status_code == 204, resp.text
    async with suite.feed.state.database.sessionmaker() as session:
        post = await session.get(Post, uuid.UUID(said["id"]))
        comment = await session.get(Comment, uuid.UUID(made["id"]))
        assert post is not None and comment is not None
        assert post.media == [] and comment.media == []
    await suite.deliver()  # media hears of it, and withdraws them
    assert (await suite.client.get(f"/api/v1/media/{files[0]}", headers=auth(bob))).status_code == 404
