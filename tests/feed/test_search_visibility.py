"""A search finds what the reader may see and nothing else (decision 0028's one rule): the
reader's context only, no group they cannot read, nothing moderation hid, held or removed (but
their own hidden and held posts), nothing of an author deactivated or erased; and the index
follows every change in the writing transaction: edits, deletions, erasure, moderation,
disposal. On SQLite the FTS5 rows are checked directly too, on PostgreSQL the generated
document."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text

from tests.feed.support import (
    follow,
    group_data,
    make_group,
    membership,
    moderate,
    people,
    post,
    send_events,
    set_persona_status,
)
from tests.helpers import auth, with_personal

POSTS = "/api/v1/search/posts"
COMMENTS = "/api/v1/search/comments"


async def _found(suite: Any, token: str, q: str, path: str = POSTS) -> set[str]:
    resp = await suite.client.get(path, params={"q": q, "limit": 100}, headers=auth(token))
    assert resp.status_code == 200, resp.text
    return {item["id"] for item in resp.json()["items"]}


async def _comment(suite: Any, token: str, post_id: str, body: str) -> str:
    resp = await suite.client.post(
        f"/api/v1/posts/{post_id}/comments", json={"body": body}, headers=auth(token)
    )
    assert resp.status_code == 201, resp.text
    made: str = resp.json()["id"]
    return made


async def _indexed(suite: Any, table: str, item_id: str, word: str) -> bool:
    """Whether feed's index holds ``word`` (as written) for the row ``item_id`` of ``table``
    (``post`` or ``comment``: the statements are made of these names only)."""
    fts = f"{table}_search"
    async with suite.feed.state.database.sessionmaker() as session:
        if session.get_bind().dialect.name == "sqlite":
            statement = text(
                f"SELECT count(*) FROM {fts} JOIN {table} ON {table}.rowid = {fts}.rowid "  # noqa: S608
                f"WHERE {fts} MATCH :match AND {table}.id = :id"
            )
            params: dict[str, Any] = {"match": f'words : "{word}"', "id": uuid.UUID(item_id).hex}
        else:
            statement = text(
                f"SELECT count(*) FROM {table} WHERE search @@ plainto_tsquery('search_simple', :word) "  # noqa: S608
                "AND id = :id"
            )
            params = {"word": word, "id": uuid.UUID(item_id)}
        return bool((await session.execute(statement, params)).scalar())


async def _fts_rows(suite: Any, table: str) -> int | None:
    """How many rows the FTS5 table of ``table`` holds (SQLite); None on PostgreSQL."""
    async with suite.feed.state.database.sessionmaker() as session:
        if session.get_bind().dialect.name != "sqlite":
            return None
        statement = text(f"SELECT count(*) FROM {table}_search")  # noqa: S608
        return int((await session.execute(statement)).scalar() or 0)


async def test_a_search_never_crosses_contexts(suite):
    ada = await with_personal(suite.client, "ada")
    bob = await with_personal(suite.client, "bob")
    await suite.deliver()
    work = await post(suite.client, ada["pro"], "quarterly budget plans")
    home = await post(suite.client, ada["personal"], "holiday budget plans")
    work_comment = await _comment(suite, ada["pro"], work["id"], "budget remark at work")
    home_comment = await _comment(suite, ada["personal"], home["id"], "budget remark at home")
    for token, mine, other, comment, other_comment in (
        (bob["pro"], work, home, work_comment, home_comment),
        (bob["personal"], home, work, home_comment, work_comment),
        (ada["pro"], work, home, work_comment, home_comment),
        (ada["personal"], home, work, home_comment, work_comment),
    ):
        assert await _found(suite, token, "budget") == {mine["id"]}
        assert await _found(suite, token, "budget OR nothing plans -nothing") == {mine["id"]}
        assert await _found(suite, token, "budget", COMMENTS) == {comment}
        assert other["id"] not in await _found(suite, token, "holiday OR quarterly")
        assert other_comment not in await _found(suite, token, "home OR work", COMMENTS)


async def test_groups_a_reader_cannot_read_stay_out_even_named(suite):
    (ada, ada_id), (bob, bob_id) = await people(suite, "ada", "bob")
    groups = {
        visibility: await make_group(suite, {ada_id: "owner"}, visibility=visibility)
        for visibility in ("secret", "closed", "open")
    }
    made = {
        visibility: await post(
            suite.client, ada, f"roadmap in {visibility}", audience="group", group_id=group
        )
        for visibility, group in groups.items()
    }
    comments = {v: await _comment(suite, ada, p["id"], f"roadmap note {v}") for v, p in made.items()}
    assert await _found(suite, bob, "roadmap") == {made["open"]["id"]}
    assert await _found(suite, bob, "roadmap", COMMENTS) == {comments["open"]}
    for visibility, group in groups.items():
        named = await _found(suite, bob, f"roadmap group:g{group[:8]}")
        assert named == ({made["open"]["id"]} if visibility == "open" else set()), visibility
    assert await _found(suite, ada, "roadmap") == {p["id"] for p in made.values()}
    await send_events(suite, ("membership.added", groups["secret"], membership(groups["secret"], bob_id)))
    assert await _found(suite, bob, "roadmap") == {made["open"]["id"], made["secret"]["id"]}
    assert await _found(suite, bob, f"roadmap group:g{groups['secret'][:8]}") == {made["secret"]["id"]}
    await send_events(
        suite,
        ("group.updated", groups["open"], group_data(groups["open"], visibility="open", moderation="hidden")),
    )
    assert made["open"]["id"] not in await _found(suite, bob, "roadmap")
    assert comments["open"] not in await _found(suite, bob, "roadmap", COMMENTS)


async def test_followers_posts_reach_followers_only(suite):
    (ada, ada_id), (bob, _), (cyd, _) = await people(suite, "ada", "bob", "cyd")
    await follow(suite.client, bob, ada_id)
    said = await post(suite.client, ada, "for my followers: agenda", audience="followers")
    assert await _found(suite, bob, "agenda") == {said["id"]}
    assert await _found(suite, cyd, "agenda") == set()
    assert await _found(suite, ada, "agenda") == {said["id"]}


async def test_moderation_hides_from_others_keeps_for_the_author_and_a_restore_brings_back(suite):
    (ada, ada_id), (bob, _) = await people(suite, "ada", "bob")
    hidden = await post(suite.client, ada, "forecast hidden")
    removed = await post(suite.client, ada, "forecast removed")
    kept = await post(suite.client, ada, "forecast kept")
    note = await _comment(suite, bob, kept["id"], "forecast comment")
    await moderate(suite, "moderation.content.hidden", "post", hidden["id"], subject_id=ada_id)
    await moderate(suite, "moderation.content.removed", "post", removed["id"], subject_id=ada_id)
    await moderate(suite, "moderation.content.hidden", "comment", note)
    assert await _found(suite, bob, "forecast") == {kept["id"]}
    assert await _found(suite, ada, "forecast") == {kept["id"], hidden["id"]}  # her own hidden post
    assert await _found(suite, ada, "forecast", COMMENTS) == set()
    assert await _found(suite, bob, "forecast", COMMENTS) == {note}  # his own hidden comment
    assert await _indexed(suite, "post", removed["id"], "removed")  # kept for a restore
    await moderate(
        suite, "moderation.content.restored", "post", removed["id"], hidden["id"], subject_id=ada_id
    )
    await moderate(suite, "moderation.content.restored", "comment", note)
    assert await _found(suite, bob, "forecast") == {kept["id"], hidden["id"], removed["id"]}
    assert await _found(suite, ada, "forecast", COMMENTS) == {note}


async def test_a_held_post_is_its_authors_alone_until_released(suite):
    (ada, ada_id), (bob, _) = await people(suite, "ada", "bob")
    await send_events(
        suite,
        (
            "internal.moderation.terms",
            "professional",
            {
                "context": "professional",
                "version": 1,
                "terms": [{"id": str(uuid.uuid4()), "term": "forbidden", "match": "word"}],
            },
        ),
        source="moderation",
    )
    held = await post(suite.client, ada, "a forbidden memo")
    assert held["moderation"] == "held"
    assert await _found(suite, bob, "memo") == set()
    assert await _found(suite, ada, "memo") == {held["id"]}
    await moderate(suite, "moderation.content.released", "post", held["id"], subject_id=ada_id)
    assert await _found(suite, bob, "memo") == {held["id"]}


async def test_authors_deactivated_or_erased_are_not_found(suite):
    (ada, ada_id), (bob, _) = await people(suite, "ada", "bob")
    said = await post(suite.client, ada, "milestone reached")
    note = await _comment(suite, ada, said["id"], "milestone comment")
    await set_persona_status(suite, ada_id, "ada", "deactivated")
    assert await _found(suite, bob, "milestone") == set()
    assert await _found(suite, bob, "milestone", COMMENTS) == set()
    await set_persona_status(suite, ada_id, "ada", "active")
    assert await _found(suite, bob, "milestone") == {said["id"]}
    assert await _found(suite, bob, "milestone", COMMENTS) == {note}

    cyd = await with_personal(suite.client, "cyd")
    await suite.deliver()
    private = await post(suite.client, cyd["personal"], "milestone at home")
    reply = await _comment(suite, cyd["personal"], private["id"], "milestone at home, reply")
    resp = await suite.client.delete("/api/v1/me/personas/personal", headers=auth(cyd["pro"]))
    assert resp.status_code == 204
    await suite.deliver()
    assert not await _indexed(suite, "post", private["id"], "milestone")
    assert not await _indexed(suite, "comment", reply, "milestone")


async def test_an_edit_is_found_by_its_new_words_only(suite):
    ((ada, _),) = await people(suite, "ada")
    said = await post(suite.client, ada, "alpha draft")
    note = await _comment(suite, ada, said["id"], "gamma remark")
    resp = await suite.client.patch(
        f"/api/v1/posts/{said['id']}", json={"body": "beta version"}, headers=auth(ada)
    )
    assert resp.status_code == 200
    assert await _found(suite, ada, "alpha") == set()
    assert await _found(suite, ada, "beta") == {said["id"]}
    assert not await _indexed(suite, "post", said["id"], "alpha")
    resp = await suite.client.patch(
        f"/api/v1/posts/{said['id']}/comments/{note}", json={"body": "delta remark"}, headers=auth(ada)
    )
    assert resp.status_code == 200
    assert await _found(suite, ada, "gamma", COMMENTS) == set()
    assert await _found(suite, ada, "delta", COMMENTS) == {note}
    history = await suite.client.get(f"/api/v1/posts/{said['id']}/history", headers=auth(ada))
    assert [r["body"] for r in history.json()["items"]] == ["alpha draft"]  # not searched


async def test_deleted_posts_and_comments_and_the_comments_of_a_deleted_post_are_gone(suite):
    (ada, _), (bob, _) = await people(suite, "ada", "bob")
    first = await post(suite.client, ada, "orchard one")
    second = await post(suite.client, ada, "orchard two")
    on_first = await _comment(suite, bob, first["id"], "orchard comment on one")
    on_second = await _comment(suite, bob, second["id"], "orchard comment on two")
    assert (await suite.client.delete(f"/api/v1/posts/{first['id']}", headers=auth(ada))).status_code == 204
    path = f"/api/v1/posts/{second['id']}/comments/{on_second}"
    assert (await suite.client.delete(path, headers=auth(bob))).status_code == 204
    for token in (ada, bob):
        assert await _found(suite, token, "orchard") == {second["id"]}
        assert await _found(suite, token, "orchard", COMMENTS) == set()
    assert not await _indexed(suite, "post", first["id"], "orchard")
    assert not await _indexed(suite, "comment", on_second, "orchard")
    assert await _indexed(suite, "comment", on_first, "orchard")  # its post's deletion hides it


async def test_disposal_takes_the_rows_and_their_index(suite):
    (ada, _), (bob, _) = await people(suite, "ada", "bob")
    gone = await post(suite.client, ada, "ledger gone")
    stays = await post(suite.client, ada, "ledger stays")
    note = await _comment(suite, bob, stays["id"], "ledger note")
    other = await _comment(suite, bob, gone["id"], "ledger other")
    before = {table: await _fts_rows(suite, table) for table in ("post", "comment")}
    for kind, ids in (("post", [gone["id"]]), ("comment", [note])):
        await send_events(
            suite,
            ("internal.records.dispose", str(uuid.uuid4()), {"kind": kind, "ids": ids}),
            source="records",
        )
    assert await _found(suite, ada, "ledger") == {stays["id"]}
    assert await _found(suite, ada, "ledger", COMMENTS) == set()
    assert not await _indexed(suite, "post", gone["id"], "ledger")
    assert not await _indexed(suite, "comment", note, "ledger")
    assert not await _indexed(suite, "comment", other, "ledger")  # the post's comments went with it
    posts, comments = before["post"], before["comment"]
    if posts is not None and comments is not None:
        assert await _fts_rows(suite, "post") == posts - 1
        assert await _fts_rows(suite, "comment") == comments - 2


async def test_a_limited_authors_posts_to_everyone_reach_their_followers_only(suite):
    (ada, ada_id), (bob, _), (cyd, _) = await people(suite, "ada", "bob", "cyd")
    await follow(suite.client, bob, ada_id)
    said = await post(suite.client, ada, "announcement draft")
    await moderate(suite, "moderation.persona.limited", "persona", ada_id, subject_id=ada_id)
    assert await _found(suite, bob, "announcement") == {said["id"]}
    assert await _found(suite, cyd, "announcement") == set()


async def test_a_deleted_group_takes_its_posts_out_of_the_index(suite):
    (ada, ada_id), (bob, bob_id) = await people(suite, "ada", "bob")
    group = await make_group(suite, {ada_id: "owner", bob_id: "member"}, visibility="open")
    said = await post(suite.client, ada, "charter text", audience="group", group_id=group)
    assert await _found(suite, bob, "charter") == {said["id"]}
    await send_events(suite, ("group.deleted", group, {"id": group}))
    assert await _found(suite, bob, "charter") == set()
    assert not await _indexed(suite, "post", said["id"], "charter")
