"""A persona that is not discoverable cannot be found by mentioning its handle: the mention
stays plain text (no id in the post or comment, no notification) unless the persona follows
the author."""

from __future__ import annotations

from typing import Any

from tests.feed.support import follow, post
from tests.helpers import auth, with_personal

POSTS = "/api/v1/posts"


async def _couple(suite: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ada, whose personal persona is hidden, and Bob, who knows only her handle."""
    ada = await with_personal(suite.client, "ada", discoverable=False)
    bob = await with_personal(suite.client, "bob")
    await suite.deliver()
    return ada, bob


async def _notifications(suite: Any, token: str) -> list[dict[str, Any]]:
    resp = await suite.client.get("/api/v1/notifications", headers=auth(token))
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


async def _comment(suite: Any, token: str, post_id: str, body: str) -> dict[str, Any]:
    resp = await suite.client.post(f"{POSTS}/{post_id}/comments", json={"body": body}, headers=auth(token))
    assert resp.status_code == 201, resp.text
    created: dict[str, Any] = resp.json()
    return created


async def test_mentioning_a_hidden_persona_leaves_plain_text_and_no_notification(suite):
    ada, bob = await _couple(suite)
    created = await post(suite.client, bob["personal"], "coffee, @ada_home?")
    assert created["mentions"] == [] and created["body"] == "coffee, @ada_home?"
    read = await suite.client.get(f"{POSTS}/{created['id']}", headers=auth(bob["personal"]))
    assert ada["personal_id"] not in read.text
    home = await suite.client.get("/api/v1/timelines/home", headers=auth(bob["personal"]))
    assert ada["personal_id"] not in home.text
    assert await _notifications(suite, ada["personal"]) == []


async def test_comments_and_edits_do_not_resolve_a_hidden_persona_either(suite):
    ada, bob = await _couple(suite)
    created = await post(suite.client, bob["personal"], "weekend plans")
    edited = await suite.client.patch(
        f"{POSTS}/{created['id']}",
        json={"body": "weekend plans with @ada_home"},
        headers=auth(bob["personal"]),
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["mentions"] == []
    comment = await _comment(suite, bob["personal"], created["id"], "@ada_home are you in?")
    assert comment["mentions"] == []
    changed = await suite.client.patch(
        f"{POSTS}/{created['id']}/comments/{comment['id']}",
        json={"body": "@ada_home still in?"},
        headers=auth(bob["personal"]),
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["mentions"] == []
    listed = await suite.client.get(f"{POSTS}/{created['id']}/comments", headers=auth(bob["personal"]))
    assert ada["personal_id"] not in listed.text
    assert await _notifications(suite, ada["personal"]) == []


async def test_a_hidden_persona_is_mentioned_by_those_it_follows(suite):
    ada, bob = await _couple(suite)
    await follow(suite.client, ada["personal"], bob["personal_id"])
    created = await post(suite.client, bob["personal"], "coffee, @ada_home?")
    assert created["mentions"] == [{"id": ada["personal_id"], "handle": "ada_home"}]
    comment = await _comment(suite, bob["personal"], created["id"], "@ada_home see above")
    assert comment["mentions"] == [{"id": ada["personal_id"], "handle": "ada_home"}]
    assert [n["kind"] for n in await _notifications(suite, ada["personal"])] == ["mention"] * 2


async def test_a_hidden_persona_mentions_itself(suite):
    ada, _ = await _couple(suite)
    created = await post(suite.client, ada["personal"], "note to self, @ada_home")
    assert created["mentions"] == [{"id": ada["personal_id"], "handle": "ada_home"}]


async def test_the_rule_follows_the_persona_changing_discoverable(suite):
    ada, bob = await _couple(suite)
    url = f"/api/v1/personas/{ada['personal_id']}"
    shown = await suite.client.patch(url, json={"discoverable": True}, headers=auth(ada["personal"]))
    assert shown.status_code == 200, shown.text
    await suite.deliver()
    assert (await post(suite.client, bob["personal"], "hi @ada_home"))["mentions"] == [
        {"id": ada["personal_id"], "handle": "ada_home"}
    ]
    hidden = await suite.client.patch(url, json={"discoverable": False}, headers=auth(ada["personal"]))
    assert hidden.status_code == 200, hidden.text
    await suite.deliver()
    assert (await post(suite.client, bob["personal"], "hi again @ada_home"))["mentions"] == []
