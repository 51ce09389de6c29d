"""A post moderation hides (``moderation.content.hidden``, decision 0032: the real
``moderation`` column, through the event feed applies) is gone for everyone but its author from
every read of feed: the timelines (the home timeline on SQLite and PostgreSQL alike: its
statements state the rule in SQL, ``home_sql._shown``), search, the post itself and its
history, its comments, the notifications about it and the event stream. Its author still finds
it everywhere, marked ``hidden``.

Every GET route of the feed app is either in ``READS``, with how to find posts through it, or
in ``EXEMPT``, with the reason it shows none: a read added later fails here until it is one or
the other."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.feed.support import follow, make_group, moderate, people, post
from tests.helpers import auth

HOME = "/api/v1/timelines/home"
FROM_THE_START = f"{'0' * 32}.{'0' * 32}"  # a Last-Event-ID before every post and notification


@dataclass
class World:
    """Ada writes, Bob (her follower, and a member of her closed group) reads; each post has a
    twin that stays shown, so that every read still finds something once the others are
    hidden."""

    ada: str
    ada_id: str
    bob: str
    group: str
    hidden: set[str] = field(default_factory=set)
    kept: set[str] = field(default_factory=set)
    comments: dict[str, str] = field(default_factory=dict)  # comment id: its post's id
    replies: dict[str, str] = field(default_factory=dict)  # top-level comment id: its post's id
    shapes: list[dict[str, Any]] = field(default_factory=list)  # every post a read showed whole

    @property
    def posts(self) -> set[str]:
        return self.hidden | self.kept


async def _build(suite: Any) -> World:
    (ada, ada_id), (bob, bob_id) = await people(suite, "ada", "bob")
    await follow(suite.client, bob, ada_id)
    group = await make_group(suite, {ada_id: "owner", bob_id: "member"})
    world = World(ada, ada_id, bob, group)
    for which, posts in (("hidden", world.hidden), ("kept", world.kept)):
        text = f"{which} #topic findme"
        said = await post(suite.client, ada, f"{text} to all")
        edited = await suite.client.patch(
            f"/api/v1/posts/{said['id']}", json={"body": f"{text} to all, @bob"}, headers=auth(ada)
        )
        assert edited.status_code == 200, edited.text
        comment = await _comment(suite, bob, said["id"], {"body": "a comment"})
        reply = await _comment(suite, ada, said["id"], {"body": "a reply", "parent_id": comment})
        world.comments |= {comment: said["id"], reply: said["id"]}
        world.replies[comment] = said["id"]
        followers = await post(suite.client, ada, f"{text} to followers", audience="followers")
        grouped = await post(suite.client, ada, f"{text} to the group", audience="group", group_id=group)
        posts |= {said["id"], followers["id"], grouped["id"]}
    pinned = await post(suite.client, ada, "hidden #topic findme pinned", audience="group", group_id=group)
    resp = await suite.client.put(f"/api/v1/posts/{pinned['id']}/pin", headers=auth(ada))
    assert resp.status_code == 200, resp.text
    world.hidden.add(pinned["id"])
    return world


async def _comment(suite: Any, token: str, post_id: str, body: dict[str, Any]) -> str:
    resp = await suite.client.post(f"/api/v1/posts/{post_id}/comments", json=body, headers=auth(token))
    assert resp.status_code == 201, resp.text
    comment_id: str = resp.json()["id"]
    return comment_id


# How each read shows posts: the ids of the posts it shows (of a comment or a notification: its
# post's), read as ``who`` (Bob, who reads Ada's posts, or Ada, their author); each post the
# read shows whole is kept in ``World.shapes``, to check what it says of its moderation.


async def _items(suite: Any, token: str, path: str, **params: Any) -> list[dict[str, Any]]:
    resp = await suite.client.get(path, params=params, headers=auth(token))
    assert resp.status_code == 200, (path, resp.text)
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


async def _ids(suite: Any, world: World, who: str, path: str, **params: Any) -> set[str]:
    posts = await _items(suite, who, path, **params)
    world.shapes += posts
    return {item["id"] for item in posts}


async def _found(suite: Any, world: World, who: str, paths: dict[str, str]) -> set[str]:
    """The post ids (``paths`` values) whose path answers 200 rather than 404."""
    found = set()
    for path, post_id in paths.items():
        resp = await suite.client.get(path, headers=auth(who))
        assert resp.status_code in (200, 404), (path, resp.text)
        if resp.status_code == 200:
            found.add(post_id)
            if path == f"/api/v1/posts/{post_id}":
                world.shapes.append(resp.json())
    return found


async def _home(suite: Any, world: World, who: str) -> set[str]:
    return await _ids(suite, world, who, HOME)


async def _organisation(suite: Any, world: World, who: str) -> set[str]:
    return await _ids(suite, world, who, "/api/v1/timelines/organisation")


async def _persona(suite: Any, world: World, who: str) -> set[str]:
    return await _ids(suite, world, who, f"/api/v1/timelines/personas/{world.ada_id}")


async def _group(suite: Any, world: World, who: str) -> set[str]:
    return await _ids(suite, world, who, f"/api/v1/timelines/groups/{world.group}")


async def _tag(suite: Any, world: World, who: str) -> set[str]:
    return await _ids(suite, world, who, "/api/v1/timelines/tags/topic")


async def _search(suite: Any, world: World, who: str) -> set[str]:
    return await _ids(suite, world, who, "/api/v1/posts", q="findme")


async def _search_posts(suite: Any, world: World, who: str) -> set[str]:
    return await _ids(suite, world, who, "/api/v1/search/posts", q="findme")


async def _search_comments(suite: Any, world: World, who: str) -> set[str]:
    found = await _items(suite, who, "/api/v1/search/comments", q="comment OR reply", limit=100)
    return {c["post_id"] for c in found}


async def _post(suite: Any, world: World, who: str) -> set[str]:
    return await _found(suite, world, who, {f"/api/v1/posts/{p}": p for p in world.posts})


async def _history(suite: Any, world: World, who: str) -> set[str]:
    found = set()
    paths = {f"/api/v1/posts/{p}/history": p for p in world.posts}
    for post_id in await _found(suite, world, who, paths):
        if await _items(suite, who, f"/api/v1/posts/{post_id}/history"):
            found.add(post_id)
    return found


async def _comments(suite: Any, world: World, who: str) -> set[str]:
    found = set()
    listed = await _found(suite, world, who, {f"/api/v1/posts/{p}/comments": p for p in world.posts})
    for post_id in listed:
        found |= {c["post_id"] for c in await _items(suite, who, f"/api/v1/posts/{post_id}/comments")}
    for comment_id, post_id in world.replies.items():
        if post_id in listed:
            path = f"/api/v1/posts/{post_id}/comments"
            found |= {c["post_id"] for c in await _items(suite, who, path, parent_id=comment_id)}
    return found


async def _comment_read(suite: Any, world: World, who: str) -> set[str]:
    return await _found(
        suite, world, who, {f"/api/v1/posts/{p}/comments/{c}": p for c, p in world.comments.items()}
    )


async def _notifications(suite: Any, world: World, who: str) -> set[str]:
    # Ada hears of comments on her posts, Bob of mentions and of replies to his comments
    return {n["post_id"] for n in await _items(suite, who, "/api/v1/notifications")}


async def _stream(suite: Any, world: World, who: str) -> set[str]:
    headers = {**auth(who), "Last-Event-ID": FROM_THE_START}
    resp = await suite.client.get("/api/v1/stream", headers=headers)
    assert resp.status_code == 200, resp.text
    found = set()
    for block in resp.text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
        if fields.get("event") == "post":
            shape = json.loads(fields["data"])
            world.shapes.append(shape)
            found.add(shape["id"])
        elif fields.get("event") == "notification":
            found.add(json.loads(fields["data"])["post_id"])
    return found


Read = Callable[[Any, World, str], Awaitable[set[str]]]
READS: dict[str, Read] = {
    HOME: _home,
    "/api/v1/timelines/organisation": _organisation,
    "/api/v1/timelines/personas/{persona_id}": _persona,
    "/api/v1/timelines/groups/{group_id}": _group,
    "/api/v1/timelines/tags/{tag}": _tag,
    "/api/v1/posts": _search,
    "/api/v1/search/posts": _search_posts,
    "/api/v1/search/comments": _search_comments,
    "/api/v1/posts/{post_id}": _post,
    "/api/v1/posts/{post_id}/history": _history,
    "/api/v1/posts/{post_id}/comments": _comments,
    "/api/v1/posts/{post_id}/comments/{comment_id}": _comment_read,
    "/api/v1/notifications": _notifications,
    "/api/v1/stream": _stream,
}
LOOKUP = "moderation's lookup at filing, behind the internal token (tests/feed/test_moderation.py)"
MEDIA = (
    "media's question before it serves a file: 204 exactly when the post or comment is shown to the "
    "reader, behind the internal token (tests/feed/test_media.py)"
)
EXEMPT = {
    "/internal/media/posts/{post_id}": MEDIA,
    "/internal/media/comments/{comment_id}": MEDIA,
    "/api/v1/following": "lists personas, not posts",
    "/api/v1/followers": "lists personas, not posts",
    "/health/live": "the process's health",
    "/health/ready": "the process's health",
    "/metrics": "the process's counters",
    "/openapi.json": "the API's description",
    "/docs": "the API's description",
    "/docs/oauth2-redirect": "the API's description",
    "/redoc": "the API's description",
    "/internal/moderation/posts/{post_id}": LOOKUP,
    "/internal/moderation/comments/{comment_id}": LOOKUP,
    "/internal/records/notifications": "a persona's own notifications (ids, no text), which records "
    "exports to it, behind the internal token (tests/feed/test_records_disposal.py)",
}


def _get_paths(routes: list[Any]) -> Iterator[str]:
    """The path of every route answering GET, in routers included whole too (FastAPI keeps an
    included router as one route holding it; were that to change unnoticed, the routes of
    ``READS`` would go missing here and the test below would fail, not pass)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _get_paths(included.routes)
        elif "GET" in (getattr(route, "methods", None) or ()):
            yield route.path


async def test_every_read_is_checked_or_exempt(suite):
    gets = set(_get_paths(suite.feed.routes))
    assert gets - READS.keys() - EXEMPT.keys() == set(), "a read of feed that this test does not check"
    assert READS.keys() - gets == set() and EXEMPT.keys() - gets == set(), "a read that is gone"
    assert READS.keys() & EXEMPT.keys() == set()


async def test_a_hidden_post_is_gone_from_every_read_but_its_authors(suite):
    settings = suite.feed.state.settings
    settings.stream_max_seconds, settings.stream_poll_seconds = 0.5, 0.05
    world = await _build(suite)
    readers = {"bob": world.bob, "ada": world.ada}
    before = {
        (name, path): await read(suite, world, who)
        for path, read in READS.items()
        for name, who in readers.items()
    }
    for (name, path), seen in before.items():
        assert seen & world.hidden and seen & world.kept, (name, path, seen)
        assert all(shape["moderation"] is None for shape in world.shapes)
    world.shapes.clear()
    await moderate(suite, "moderation.content.hidden", "post", *world.hidden)
    for path, read in READS.items():
        assert await read(suite, world, world.bob) == before["bob", path] - world.hidden, path
    assert {shape["id"] for shape in world.shapes} <= world.kept
    world.shapes.clear()
    for path, read in READS.items():
        assert await read(suite, world, world.ada) == before["ada", path], path
    assert {shape["id"] for shape in world.shapes} == world.posts
    for shape in world.shapes:
        assert shape["moderation"] == ("hidden" if shape["id"] in world.hidden else None), shape["id"]
