"""Read-your-writes across services (``services.feed.replicas``): a group just created, or a
member just let in, posts and reads the group's timeline at once, before groups' events reach
feed. The suite's relays run only when a test delivers, so until then feed's replicas certainly
miss the group and the membership, and only the read-through can answer."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from services.feed.models import GroupReplica, MembershipReplica
from tests.feed.support import people
from tests.helpers import auth, create_group, with_personal
from tests.suite import Suite, build_suite

POSTS = "/api/v1/posts"
LOOKUP = "/internal/feed/groups/"


class Counting(httpx.AsyncBaseTransport):
    """Groups' app as the suite reaches it, counting feed's lookups (the real app answers)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.asked: list[httpx.URL] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith(LOOKUP):
            self.asked.append(request.url)
        return await self.inner.handle_async_request(request)


class Hanging(httpx.AsyncBaseTransport):
    """Groups accepting feed's lookup and never answering it."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


@pytest.fixture
async def suite(database_urls: dict[str, str]) -> AsyncIterator[Suite]:
    """The in-process suite, with feed asking groups at its in-process address, and waiting
    long enough that a busy test machine never turns an answer into a timeout."""
    feed = {"groups_url": "http://groups", "groups_timeout_seconds": 5}
    async with build_suite(database_urls, feed=feed) as built:
        yield built


@pytest.fixture
def lookups(suite: Suite) -> Counting:
    counting = Counting(suite.router.apps["groups"])
    suite.router.apps["groups"] = counting  # type: ignore[assignment]
    return counting


async def _group_post(suite: Suite, token: str, group_id: str) -> httpx.Response:
    return await suite.client.post(
        POSTS, json={"body": "first!", "audience": "group", "group_id": group_id}, headers=auth(token)
    )


async def _replicas(suite: Suite, group_id: str, persona_id: str) -> tuple[object, object]:
    async with suite.feed.state.database.sessionmaker() as session:
        group = await session.get(GroupReplica, uuid.UUID(group_id))
        member = await session.get(MembershipReplica, (uuid.UUID(persona_id), uuid.UUID(group_id)))
        return (
            group and (group.context, group.visibility, group.archived, group.updated_at),
            member and (member.role, member.joined_at, member.updated_at),
        )


async def test_a_group_just_created_takes_its_owners_post_at_once(suite, lookups):
    ((ada, ada_id),) = await people(suite, "ada")
    group = await create_group(suite.client, ada, "fresh", visibility="closed")
    created = await _group_post(suite, ada, group["id"])
    assert created.status_code == 201, created.text
    assert len(lookups.asked) == 1
    own = await suite.client.get(f"{POSTS}/{created.json()['id']}", headers=auth(ada))
    assert own.status_code == 200
    learnt = await _replicas(suite, group["id"], ada_id)
    assert learnt[0] is not None and learnt[1] is not None
    await suite.deliver()  # groups' events arrive late, and change nothing
    assert await _replicas(suite, group["id"], ada_id) == learnt
    again = await _group_post(suite, ada, group["id"])
    assert again.status_code == 201, again.text
    assert len(lookups.asked) == 1  # the replicas answer now: no call


async def test_a_member_let_in_posts_at_once(suite, lookups):
    (ada, _), (bob, bob_id), (cyd, cyd_id) = await people(suite, "ada", "bob", "cyd")
    closed = (await create_group(suite.client, ada, "club", visibility="closed"))["id"]
    secret = (await create_group(suite.client, ada, "hush", visibility="secret"))["id"]
    asked = await suite.client.post(f"/api/v1/groups/{closed}/join-requests", json={}, headers=auth(bob))
    assert asked.status_code == 201, asked.text
    invited = await suite.client.post(
        f"/api/v1/groups/{secret}/invitations", json={"persona_id": cyd_id}, headers=auth(ada)
    )
    assert invited.status_code == 201, invited.text
    await suite.deliver()  # feed knows both groups, not the members to come
    approved = await suite.client.post(
        f"/api/v1/groups/{closed}/join-requests/{bob_id}/approve", headers=auth(ada)
    )
    assert approved.status_code == 201, approved.text
    accepted = await suite.client.post(
        f"/api/v1/groups/{secret}/invitations/{cyd_id}/accept", headers=auth(cyd)
    )
    assert accepted.status_code == 201, accepted.text
    assert (await _group_post(suite, bob, closed)).status_code == 201
    assert (await _group_post(suite, cyd, secret)).status_code == 201
    assert len(lookups.asked) == 2
    # and not the other way round: a member of neither still gets the replicas' answer
    assert (await _group_post(suite, bob, secret)).status_code == 404


async def test_a_group_timeline_reads_at_once(suite, lookups):
    (ada, _), (bob, _) = await people(suite, "ada", "bob")
    closed = (await create_group(suite.client, ada, "club", visibility="closed"))["id"]
    opened = (await create_group(suite.client, ada, "agora", visibility="open"))["id"]
    timeline = await suite.client.get(f"/api/v1/timelines/groups/{closed}", headers=auth(ada))
    assert timeline.status_code == 200, timeline.text
    assert timeline.json()["items"] == []
    assert (
        await suite.client.get(f"/api/v1/timelines/groups/{opened}", headers=auth(bob))
    ).status_code == 200
    assert (
        await suite.client.get(f"/api/v1/timelines/groups/{closed}", headers=auth(bob))
    ).status_code == 404
    # the open group needs no membership: known from bob's read, it costs ada no call
    before = len(lookups.asked)
    assert (
        await suite.client.get(f"/api/v1/timelines/groups/{opened}", headers=auth(ada))
    ).status_code == 200
    assert len(lookups.asked) == before


async def test_an_unknown_group_is_404_after_one_call_naming_the_group_and_persona_alone(suite, lookups):
    ((ada, ada_id),) = await people(suite, "ada")
    nowhere = str(uuid.uuid4())
    resp = await _group_post(suite, ada, nowhere)
    assert resp.status_code == 404
    assert resp.json()["detail"] == "No group with this id."
    (url,) = lookups.asked
    assert url.path == f"{LOOKUP}{nowhere}"
    assert dict(url.params) == {"persona": ada_id, "context": "professional"}
    assert await _replicas(suite, nowhere, ada_id) == (None, None)  # a refusal writes nothing


async def test_a_group_of_the_other_context_stays_404(suite, lookups):
    both = await with_personal(suite.client, "ada")
    await suite.deliver()
    home = await create_group(suite.client, both["personal"], "home_club", visibility="open")
    resp = await _group_post(suite, both["pro"], home["id"])
    assert resp.status_code == 404
    assert await _replicas(suite, home["id"], both["pro_id"]) == (None, None)
    assert (await _group_post(suite, both["personal"], home["id"])).status_code == 201


async def test_the_replicas_keep_what_groups_said_over_older_events(suite, lookups):
    ((ada, _),) = await people(suite, "ada")
    group = (await create_group(suite.client, ada, "brief", visibility="closed"))["id"]
    archived = await suite.client.delete(f"/api/v1/groups/{group}", headers=auth(ada))
    assert archived.status_code == 204, archived.text
    refused = await _group_post(suite, ada, group)
    assert refused.status_code == 403
    assert refused.json()["detail"] == "The group is archived and read-only."
    await suite.deliver()  # group.created, older than what groups answered, is left out
    assert (await _group_post(suite, ada, group)).status_code == 403
    assert len(lookups.asked) == 1


async def test_groups_down_gives_todays_answer_never_a_500(suite):
    ((ada, _),) = await people(suite, "ada")
    group = (await create_group(suite.client, ada, "fresh", visibility="closed"))["id"]
    suite.router.down.add("groups")
    resp = await _group_post(suite, ada, group)
    assert resp.status_code == 404
    assert resp.headers["content-type"] == "application/problem+json"
    timeline = await suite.client.get(f"/api/v1/timelines/groups/{group}", headers=auth(ada))
    assert timeline.status_code == 404
    suite.router.down.discard("groups")
    assert (await _group_post(suite, ada, group)).status_code == 201


async def test_groups_not_answering_costs_a_bounded_wait(database_urls):
    async with build_suite(database_urls, feed={"groups_url": "http://groups"}) as suite:
        ((ada, _),) = await people(suite, "ada")
        group = (await create_group(suite.client, ada, "fresh", visibility="closed"))["id"]
        suite.router.apps["groups"] = Hanging()  # type: ignore[assignment]
        started = time.monotonic()
        resp = await _group_post(suite, ada, group)
        waited = time.monotonic() - started
        assert resp.status_code == 404  # not the gateway's 504: feed gave up on groups first
        timeout = suite.feed.state.settings.groups_timeout_seconds  # the default
        assert timeout <= waited < suite.gateway.state.settings.upstream_timeout_seconds
