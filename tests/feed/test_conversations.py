"""Comments with one level of replies, reactions, and the notifications they cause."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.feed.support import follow, group_data, make_group, people, post, send_events
from tests.helpers import auth

POSTS = "/api/v1/posts"


async def _comment(suite: Any, token: str, post_id: str, body: str, **fields: Any) -> dict[str, Any]:
    resp = await suite.client.post(
        f"{POSTS}/{post_id}/comments", json={"body": body, **fields}, headers=auth(token)
    )
    assert resp.status_code == 201, resp.text
    comment: dict[str, Any] = resp.json()
    return comment


async def test_comments_oldest_first_with_one_level_of_replies(suite):
    (ada, _), (bob, _), (cyd, _) = await people(suite, "ada", "bob", "cyd")
    created = await post(suite.client, ada, "discuss")
    first = await _comment(suite, bob, created["id"], "first")
    second = await _comment(suite, cyd, created["id"], "second")
    reply = await _comment(suite, ada, created["id"], "a reply", parent_id=first["id"])
    assert reply["parent_id"] == first["id"]
    nested = await suite.client.post(
        f"{POSTS}/{created['id']}/comments",
        json={"body": "too deep", "parent_id": reply["id"]},
        headers=auth(bob),
    )
    assert nested.status_code == 422
    page = await suite.client.get(f"{POSTS}/{created['id']}/comments", params={"limit": 1}, headers=auth(cyd))
    assert [c["body"] for c in page.json()["items"]] == ["first"]
    assert page.json()["items"][0]["reply_count"] == 1
    rest = await suite.client.get(
        f"{POSTS}/{created['id']}/comments",
        params={"limit": 1, "cursor": page.json()["next_cursor"]},
        headers=auth(cyd),
    )
    assert [c["body"] for c in rest.json()["items"]] == ["second"]
    replies = await suite.client.get(
        f"{POSTS}/{created['id']}/comments", params={"parent_id": first["id"]}, headers=auth(cyd)
    )
    assert [c["body"] for c in replies.json()["items"]] == ["a reply"]
    got = (await suite.client.get(f"{POSTS}/{created['id']}", headers=auth(cyd))).json()
    assert got["comment_count"] == 3
    other_post = await post(suite.client, ada, "elsewhere")
    wrong_parent = await suite.client.post(
        f"{POSTS}/{other_post['id']}/comments",
        json={"body": "x", "parent_id": second["id"]},
        headers=auth(bob),
    )
    assert wrong_parent.status_code == 404


async def test_comment_edit_and_delete_rules(suite):
    (ada, ada_id), (bob, bob_id), (cyd, cyd_id) = await people(suite, "ada", "bob", "cyd")
    group = await make_group(suite, {ada_id: "member", bob_id: "member", cyd_id: "moderator"})
    created = await post(suite.client, ada, "group talk", audience="group", group_id=group)
    comment = await _comment(suite, bob, created["id"], "bob says")
    reply = await _comment(suite, ada, created["id"], "ada answers", parent_id=comment["id"])
    url = f"{POSTS}/{created['id']}/comments/{comment['id']}"
    assert (await suite.client.patch(url, json={"body": "edited"}, headers=auth(ada))).status_code == 403
    edited = await suite.client.patch(url, json={"body": "edited"}, headers=auth(bob))
    assert edited.status_code == 200 and edited.json()["edited_at"]
    assert (await suite.client.delete(url, headers=auth(ada))).status_code == 403
    assert (await suite.client.delete(url, headers=auth(cyd))).status_code == 204
    listed = await suite.client.get(f"{POSTS}/{created['id']}/comments", headers=auth(ada))
    assert listed.json()["items"] == []
    gone = await suite.client.get(f"{POSTS}/{created['id']}/comments/{reply['id']}", headers=auth(ada))
    assert gone.status_code == 404
    assert (await suite.client.get(f"{POSTS}/{created['id']}", headers=auth(ada))).json()[
        "comment_count"
    ] == 0
    await send_events(suite, ("group.archived", group, group_data(group, archived=True)))
    closed = await suite.client.post(
        f"{POSTS}/{created['id']}/comments", json={"body": "late"}, headers=auth(bob)
    )
    assert closed.status_code == 403


async def test_reactions_count_per_kind_and_show_mine(suite):
    (ada, _), (bob, _), (cyd, _) = await people(suite, "ada", "bob", "cyd")
    created = await post(suite.client, ada, "react")
    url = f"{POSTS}/{created['id']}/reactions"
    first = await suite.client.put(f"{url}/like", headers=auth(bob))
    assert first.status_code == 201
    again = await suite.client.put(f"{url}/like", headers=auth(bob))
    assert again.status_code == 200 and again.json()["reactions"]["counts"]["like"] == 1
    celebrated = (await suite.client.put(f"{url}/celebrate", headers=auth(bob))).json()["reactions"]
    assert celebrated["counts"]["celebrate"] == 1 and sorted(celebrated["mine"]) == ["celebrate", "like"]
    # The answer counts what others added before it, and only the caller's own as "mine".
    by_cyd = (await suite.client.put(f"{url}/like", headers=auth(cyd))).json()["reactions"]
    assert by_cyd["counts"] == {"like": 2, "celebrate": 1, "support": 0, "insightful": 0, "curious": 0}
    assert by_cyd["mine"] == ["like"]
    seen_by_bob = (await suite.client.get(f"{POSTS}/{created['id']}", headers=auth(bob))).json()
    assert seen_by_bob["reactions"]["counts"]["like"] == 2
    assert seen_by_bob["reactions"]["counts"]["celebrate"] == 1
    assert sorted(seen_by_bob["reactions"]["mine"]) == ["celebrate", "like"]
    home = (await suite.client.get("/api/v1/timelines/organisation", headers=auth(cyd))).json()["items"]
    assert home[0]["reactions"]["mine"] == ["like"]
    removed = await suite.client.delete(f"{url}/like", headers=auth(bob))
    assert removed.status_code == 200 and removed.json()["reactions"]["counts"]["like"] == 1
    assert removed.json()["reactions"]["mine"] == ["celebrate"]
    twice = await suite.client.delete(f"{url}/like", headers=auth(bob))
    assert twice.json()["reactions"]["counts"]["like"] == 1
    for kind in ("love", "LIKE", "like%20", "x" * 100):
        assert (await suite.client.put(f"{url}/{kind}", headers=auth(bob))).status_code == 422


async def test_parallel_reactions_count_exactly(suite):
    (ada, _), *others = await people(suite, "ada", "bob", "cyd", "dan", "eve")
    created = await post(suite.client, ada, "popular")
    url = f"{POSTS}/{created['id']}/reactions/support"
    answers = await asyncio.gather(*[suite.client.put(url, headers=auth(t)) for t, _ in others * 2])
    assert all(a.status_code in (200, 201) for a in answers), [a.text for a in answers]
    assert sorted(a.status_code for a in answers) == [200] * 4 + [201] * 4
    # Each answer counts at least the reactions committed before its own, its own included.
    assert all(1 <= a.json()["reactions"]["counts"]["support"] <= 4 for a in answers)
    assert max(a.json()["reactions"]["counts"]["support"] for a in answers) == 4
    final = (await suite.client.get(f"{POSTS}/{created['id']}", headers=auth(ada))).json()
    assert final["reactions"]["counts"]["support"] == 4


async def test_mentions_and_replies_notify_and_mark_read(suite):
    (ada, ada_id), (bob, bob_id), (cyd, _) = await people(suite, "ada", "bob", "cyd")
    created = await post(suite.client, ada, "hello @bob and @ada")
    comment = await _comment(suite, bob, created["id"], "thanks, cc @cyd")
    await _comment(suite, cyd, created["id"], "me too", parent_id=comment["id"])
    notes = (await suite.client.get("/api/v1/notifications", headers=auth(bob))).json()["items"]
    assert [(n["kind"], n["actor"]["handle"]) for n in notes] == [("reply", "cyd"), ("mention", "ada")]
    ada_notes = (await suite.client.get("/api/v1/notifications", headers=auth(ada))).json()["items"]
    assert [(n["kind"], n["actor"]["handle"]) for n in ada_notes] == [("comment", "cyd"), ("comment", "bob")]
    cyd_notes = (await suite.client.get("/api/v1/notifications", headers=auth(cyd))).json()["items"]
    assert [n["kind"] for n in cyd_notes] == ["mention"]
    marked = await suite.client.post(
        "/api/v1/notifications/read", json={"ids": [notes[0]["id"], ada_notes[0]["id"]]}, headers=auth(bob)
    )
    assert marked.json() == {"marked": 1}
    unread = await suite.client.get("/api/v1/notifications", params={"unread": "true"}, headers=auth(bob))
    assert [n["kind"] for n in unread.json()["items"]] == ["mention"]
    nothing = await suite.client.post("/api/v1/notifications/read", json={"all": False}, headers=auth(bob))
    assert nothing.json() == {"marked": 0}
    all_read = await suite.client.post("/api/v1/notifications/read", json={"all": True}, headers=auth(bob))
    assert all_read.json() == {"marked": 1}
    for bad in (
        {},
        {"all": True, "ids": []},
        {"ids": ["x"]},
        {"ids": [bob_id] * 101},
        {"all": 1},
        {"ids": None},
    ):
        resp = await suite.client.post("/api/v1/notifications/read", json=bad, headers=auth(bob))
        assert resp.status_code == 422, bad
    assert ada_id


async def test_mentions_reach_only_those_who_can_see_the_post(suite):
    (ada, ada_id), (bob, bob_id), (cyd, _) = await people(suite, "ada", "bob", "cyd")
    group = await make_group(suite, {ada_id: "owner", bob_id: "member"})
    await post(suite.client, ada, "group only @bob @cyd", audience="group", group_id=group)
    await post(suite.client, ada, "followers only @cyd", audience="followers")
    assert len((await suite.client.get("/api/v1/notifications", headers=auth(bob))).json()["items"]) == 1
    assert (await suite.client.get("/api/v1/notifications", headers=auth(cyd))).json()["items"] == []
    await follow(suite.client, cyd, ada_id)
    await post(suite.client, ada, "followers again @cyd", audience="followers")
    assert len((await suite.client.get("/api/v1/notifications", headers=auth(cyd))).json()["items"]) == 1


async def test_comment_limits_and_idempotent_create(suite):
    ((ada, _),) = await people(suite, "ada")
    created = await post(suite.client, ada, "talk")
    url = f"{POSTS}/{created['id']}/comments"
    for bad in ({"body": "x" * 2001}, {"body": ""}, {"body": "a\u0000b"}, {"body": "x", "extra": 1}):
        assert (await suite.client.post(url, json=bad, headers=auth(ada))).status_code == 422, bad
    headers = {**auth(ada), "Idempotency-Key": "c-1"}
    first = await suite.client.post(url, json={"body": "once"}, headers=headers)
    again = await suite.client.post(url, json={"body": "once"}, headers=headers)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    listed = await suite.client.get(url, headers=auth(ada))
    assert [c["body"] for c in listed.json()["items"]] == ["once"]
    assert (await suite.client.get(url, params={"cursor": "bad"}, headers=auth(ada))).status_code == 400


async def test_archived_group_posts_take_no_edits_or_reactions(suite):
    (ada, ada_id), (bob, bob_id) = await people(suite, "ada", "bob")
    group = await make_group(suite, {ada_id: "owner", bob_id: "member"})
    created = await post(suite.client, ada, "before", audience="group", group_id=group)
    await send_events(suite, ("group.archived", group, group_data(group, archived=True)))
    edit = await suite.client.patch(f"{POSTS}/{created['id']}", json={"body": "after"}, headers=auth(ada))
    assert edit.status_code == 403
    react = await suite.client.put(f"{POSTS}/{created['id']}/reactions/like", headers=auth(bob))
    assert react.status_code == 403
    pin = await suite.client.put(f"{POSTS}/{created['id']}/pin", headers=auth(ada))
    assert pin.status_code == 403
    readable = await suite.client.get(f"{POSTS}/{created['id']}", headers=auth(bob))
    assert readable.status_code == 200 and readable.json()["body"] == "before"


async def test_a_repeated_comment_replays_with_its_location_and_is_per_post(suite):
    ((ada, _),) = await people(suite, "ada")
    one = await post(suite.client, ada, "one")
    two = await post(suite.client, ada, "two")
    headers = {**auth(ada), "Idempotency-Key": "c-1"}
    first = await suite.client.post(f"{POSTS}/{one['id']}/comments", json={"body": "hi"}, headers=headers)
    again = await suite.client.post(f"{POSTS}/{one['id']}/comments", json={"body": "hi"}, headers=headers)
    assert first.headers["location"] == f"{POSTS}/{one['id']}/comments/{first.json()['id']}"
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    # The same key and body on another post is another request.
    other = await suite.client.post(f"{POSTS}/{two['id']}/comments", json={"body": "hi"}, headers=headers)
    assert other.status_code == 422 and other.json()["type"].endswith("idempotency-mismatch")


async def test_concurrent_repeats_of_a_comment_make_one(suite):
    ((ada, _),) = await people(suite, "ada")
    created = await post(suite.client, ada, "talk")
    url = f"{POSTS}/{created['id']}/comments"
    headers = {**auth(ada), "Idempotency-Key": "race"}
    answers = await asyncio.gather(
        *[suite.client.post(url, json={"body": "once"}, headers=headers) for _ in range(5)]
    )
    assert all(a.status_code in (201, 409) for a in answers), [a.text for a in answers]
    assert len({a.json()["id"] for a in answers if a.status_code == 201}) == 1
    listed = (await suite.client.get(url, headers=auth(ada))).json()["items"]
    assert [c["body"] for c in listed] == ["once"]
    assert (await suite.client.get(f"{POSTS}/{created['id']}", headers=auth(ada))).json()[
        "comment_count"
    ] == 1


async def test_a_deleted_comment_leaves_no_stored_answer(suite):
    ((ada, _),) = await people(suite, "ada")
    created = await post(suite.client, ada, "talk")
    url = f"{POSTS}/{created['id']}/comments"
    headers = {**auth(ada), "Idempotency-Key": "gone"}
    first = (await suite.client.post(url, json={"body": "private words"}, headers=headers)).json()
    assert (await suite.client.delete(f"{url}/{first['id']}", headers=auth(ada))).status_code == 204
    # The key's answer went with the comment: the same request now makes a new comment.
    again = await suite.client.post(url, json={"body": "private words"}, headers=headers)
    assert again.status_code == 201 and again.json()["id"] != first["id"]
    assert "idempotent-replayed" not in again.headers
