"""Group health on scripted histories of the feed's events, each figure worked out by hand
(the reasoning is in the comments; the rules are in docs/groups-health.md)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.groups.support import (
    GROUPS,
    Feed,
    backdate_group,
    event,
    join,
    people,
    problem,
    send,
    set_joined_at,
)
from tests.helpers import admin, auth, create_group, sql_of, with_personal

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
D, H = timedelta(days=1), timedelta(hours=1)


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    monkeypatch.setattr("services.groups.health.now", lambda: NOW)


async def _health(suite, group_id, token):
    resp = await suite.client.get(f"{GROUPS}/{group_id}/health", headers=auth(token))
    assert resp.status_code == 200, resp.text
    return resp.json()


MEMBERS = {  # handle: days since joining
    "ada": 100,
    "bob": 90,
    "cyd": 45,
    "dan": 50,
    "eve": 35,
    "fay": 10,
    "gus": 80,
    "hal": 70,
    "ivy": 65,
    "jon": 5,
}


async def test_health_figures_on_a_scripted_history(suite):
    p = await people(suite, *MEMBERS)
    ids = {h: p[h][1] for h in MEMBERS}
    ada = p["ada"][0]
    review = (NOW - D).date().isoformat()
    group = await create_group(suite.client, ada, "cloud", charter={"review_at": review})
    gid = group["id"]
    for handle, days in MEMBERS.items():
        if handle != "ada":
            assert (await join(suite, gid, *p[handle])).status_code == 201
        await set_joined_at(suite, gid, ids[handle], NOW - days * D)
    feed = Feed(gid)
    p1 = feed.post(ids["ada"], NOW - 50 * D)
    p2 = feed.post(ids["bob"], NOW - 20 * D)
    p3 = feed.post(ids["ada"], NOW - 3 * D)
    p4 = feed.post(ids["jon"], NOW - 1 * D)
    p5 = feed.post(ids["hal"], NOW - 70 * D)
    p7 = feed.post(ids["cyd"], NOW - 6 * D)
    hal_comment = feed.comment(p3, ids["hal"], NOW - 2 * D)
    history = [
        p5,
        feed.comment(p5, ids["ivy"], NOW - 58 * D),
        p1,
        feed.comment(p1, ids["dan"], NOW - 50 * D + 2 * H),
        p2,
        feed.comment(p2, ids["bob"], NOW - 20 * D + 1 * H),
        feed.comment(p2, ids["cyd"], NOW - 20 * D + 3 * H),
        feed.reaction(p2, ids["fay"], NOW - 19 * D),
        p7,
        feed.comment(p7, ids["dan"], NOW - 6 * D + 1 * H),
        feed.delete_post(p7, NOW - 5 * D),
        p3,
        feed.comment(p3, ids["fay"], NOW - 3 * D + 30 * timedelta(minutes=1)),
        feed.reaction(p3, ids["bob"], NOW - 2 * D),
        feed.reaction(p3, ids["gus"], NOW - 2 * D),
        hal_comment,
        feed.delete_comment(hal_comment, NOW - 1 * D),
        feed.unreact(p3, ids["gus"]),
        feed.reaction(p3, ids["eve"], NOW - 36 * H),
        p4,
    ]
    await send(suite, *history)
    # noise that must change nothing: a redelivery, the same post under a new event id, a post
    # outside any group, one claiming the other context, one for an unknown group, garbage
    await send(
        suite,
        history[2],
        {**p4, "id": str(uuid.uuid4())},
        Feed(None).post(ids["ada"], NOW - 1 * H),
        Feed(gid, "personal").post(ids["ada"], NOW - 1 * H),
        Feed(str(uuid.uuid4())).post(ids["ada"], NOW - 1 * H),
        event("post.created", "x", {"id": "not-a-uuid", "group_id": gid}),
    )

    health = await _health(suite, gid, ada)
    assert health["computed_at"] == NOW.isoformat().replace("+00:00", "Z")
    assert health["member_count"] == 10
    # active in 30 days: ada (p3), bob (p2, reaction), cyd (reply on p2), fay (reaction, reply),
    # eve (reaction), jon (p4). Not dan (-50 d), ivy (-58 d), gus (reaction removed), hal
    # (comment deleted), cyd's p7 was deleted but her p2 reply counts.
    assert health["active_members"] == 6
    assert health["active_share"] == 0.6
    # weeks are (start, end], oldest first; week 0 = (-56 d, -49 d]
    assert [(w["posts"], w["comments"]) for w in health["weekly"]] == [
        (1, 1),  # p1 at -50 d and dan's reply at -50 d + 2 h; ivy's comment at -58 d is older
        (0, 0),
        (0, 0),
        (0, 0),
        (0, 0),
        (1, 2),  # p2 at -20 d, bob's own comment and cyd's reply
        (0, 0),
        (2, 1),  # p3 and p4; fay's reply; p7 and its comment were deleted, hal's comment too
    ]
    assert health["weekly"][0]["start"] == (NOW - 56 * D).isoformat().replace("+00:00", "Z")
    assert health["weekly"][-1]["end"] == NOW.isoformat().replace("+00:00", "Z")
    # first replies by someone other than the author: p1 2 h, p2 3 h (bob's own comment at
    # 1 h is no reply), p3 30 min; p4 has none. Median of 7200, 10800, 1800 = 7200.
    assert health["median_first_reply_seconds"] == 7200
    assert health["unanswered_posts"] == 1
    # the 8 weeks' activity by persona: bob 3, ada 2, fay 2, dan 1, cyd 1, eve 1, jon 1 = 11;
    # the top 10 % of 10 members is 1 persona: bob, 3 / 11 = 0.273
    assert health["contributor_concentration"] == 0.273
    # joined 30 to 60 days ago: dan (-50), cyd (-45), eve (-35). dan replied 2 h after joining,
    # cyd 25 days after; eve's only activity came 33.5 days after joining.
    assert (health["newcomers"], health["newcomers_retained"], health["newcomer_retention"]) == (3, 2, 0.667)
    assert health["last_activity_at"] == (NOW - D).isoformat().replace("+00:00", "Z")
    assert health["days_since_last_activity"] == 1
    # 6 active members >= 3, 6 of 10 >= 10 %, 6 posts and comments in 30 days >= 4
    assert health["status"] == "thriving"
    assert health["review_at"] == review and health["review_due"] is True


async def test_health_of_a_group_without_activity(suite):
    p = await people(suite, "ada")
    group = await create_group(suite.client, p["ada"][0], "fresh", charter={"review_at": "2027-01-01"})
    health = await _health(suite, group["id"], p["ada"][0])
    assert health["status"] == "quiet"  # 30 days of grace before a new group counts as dormant
    assert health["active_members"] == 0 and health["active_share"] == 0.0
    assert health["median_first_reply_seconds"] is None and health["unanswered_posts"] == 0
    assert health["contributor_concentration"] is None
    assert health["newcomer_retention"] is None and health["newcomers"] == 0
    assert health["last_activity_at"] is None and health["days_since_last_activity"] is None
    assert health["review_due"] is False
    assert all(w["posts"] == w["comments"] == 0 for w in health["weekly"]) and len(health["weekly"]) == 8


async def test_status_rule_and_the_dormant_list(suite):
    p = await people(suite, "ada", "bob", "cyd")
    ada = p["ada"][0]
    ids = {h: p[h][1] for h in p}

    async def make(handle, created_days_ago, history):
        group = await create_group(suite.client, ada, handle)
        for h in ("bob", "cyd"):
            await join(suite, group["id"], *p[h])
        await backdate_group(suite, group["id"], NOW - created_days_ago * D)
        feed = Feed(group["id"])
        events = []
        for author, days_ago, kind in history:
            if kind == "post" or not events:
                events.append(feed.post(ids[author], NOW - days_ago * D))
            else:
                events.append(feed.comment(events[0], ids[author], NOW - days_ago * D))
        if events:
            await send(suite, *events)
        return group["id"]

    # three active members of three, four posts and comments in 30 days
    thriving = await make(
        "thriving",
        90,
        [("ada", 29, "post"), ("bob", 20, "comment"), ("cyd", 10, "comment"), ("ada", 1, "post")],
    )
    # as lively, but only two people: quiet
    two_people = await make(
        "two_people",
        90,
        [("ada", 5, "post"), ("bob", 4, "comment"), ("ada", 3, "post"), ("bob", 2, "comment")],
    )
    # three people, but three posts and comments: quiet
    too_few = await make("too_few", 90, [("ada", 5, "post"), ("bob", 4, "comment"), ("cyd", 3, "comment")])
    # last activity exactly 30 days ago: dormant
    dormant_old = await make("dormant_old", 90, [("ada", 45, "post"), ("bob", 30, "comment")])
    # created 31 days ago and never used: dormant
    never_used = await make("never_used", 31, [])
    # created 29 days ago and never used: still quiet
    new_group = await make("new_group", 29, [])

    expected = {
        thriving: "thriving",
        two_people: "quiet",
        too_few: "quiet",
        dormant_old: "dormant",
        never_used: "dormant",
        new_group: "quiet",
    }
    for gid, status in expected.items():
        assert (await _health(suite, gid, ada))["status"] == status, gid

    async def listed(status):
        resp = await suite.client.get(GROUPS, params={"status": status}, headers=auth(ada))
        assert resp.status_code == 200, resp.text
        return [g["id"] for g in resp.json()["items"]]

    assert await listed("dormant") == [never_used, dormant_old]
    assert await listed("thriving") == [thriving]
    assert await listed("quiet") == [new_group, too_few, two_people]
    page = (await suite.client.get(GROUPS, params={"status": "quiet", "limit": 2}, headers=auth(ada))).json()
    rest = await suite.client.get(
        GROUPS, params={"status": "quiet", "limit": 2, "cursor": page["next_cursor"]}, headers=auth(ada)
    )
    assert [g["id"] for g in page["items"] + rest.json()["items"]] == [new_group, too_few, two_people]


async def test_active_members_count_members_only(suite):
    p = await people(suite, "ada", "bob", "cyd", "dan")
    ada = p["ada"][0]
    ids = {h: p[h][1] for h in p}
    group = await create_group(suite.client, ada, "cloud")
    gid = group["id"]
    await join(suite, gid, *p["bob"])
    feed = Feed(gid)
    post = feed.post(ids["cyd"], NOW - 2 * D)  # cyd is no member (an open group's post)
    await send(
        suite, post, feed.comment(post, ids["bob"], NOW - 1 * D), feed.reaction(post, ids["dan"], NOW - H)
    )
    health = await _health(suite, gid, ada)
    assert health["active_members"] == 1 and health["active_share"] == 0.5
    # every actor's activity counts towards concentration: 3 actors, 1 each; top 1 (of 2 members) = 1/3
    assert health["contributor_concentration"] == 0.333
    assert health["median_first_reply_seconds"] == 86400


async def test_health_is_for_members_and_administrators(suite):
    root, _ = await admin(suite)
    p = await people(suite, "ada", "bob")
    group = await create_group(suite.client, p["ada"][0], "cloud")
    problem(await suite.client.get(f"{GROUPS}/{group['id']}/health", headers=auth(p["bob"][0])), 403)
    assert (await _health(suite, group["id"], root))["member_count"] == 1
    await join(suite, group["id"], *p["bob"])
    assert (await _health(suite, group["id"], p["bob"][0]))["member_count"] == 2


async def test_personal_group_health_ignores_professional_events(suite):
    ada = await with_personal(suite.client, "ada")
    await suite.deliver()
    group = await create_group(suite.client, ada["personal"], "knitting")
    await send(suite, Feed(group["id"], "professional").post(ada["personal_id"], NOW - H))
    assert (await _health(suite, group["id"], ada["personal"]))["last_activity_at"] is None
    await send(suite, Feed(group["id"], "personal").post(ada["personal_id"], NOW - H))
    assert (await _health(suite, group["id"], ada["personal"]))["days_since_last_activity"] == 0


async def test_event_receiver_needs_the_service_token(suite):
    resp = await suite.client.post(
        "http://groups/internal/events", json={"events": []}, headers=auth("not-the-token")
    )
    problem(resp, 401)


async def test_health_follows_the_real_feed(suite, monkeypatch):
    """End to end: posts, comments and reactions made through the feed reach group health."""
    monkeypatch.setattr("services.groups.health.now", lambda: datetime.now(UTC) + timedelta(seconds=5))
    p = await people(suite, "ada", "bob")
    ada, (bob, bob_id) = p["ada"][0], p["bob"]
    group = await create_group(suite.client, ada, "cloud")
    await join(suite, group["id"], bob, bob_id)
    await suite.deliver()
    post = await suite.client.post(
        "/api/v1/posts",
        json={"body": "Kick-off on Monday", "audience": "group", "group_id": group["id"]},
        headers=auth(ada),
    )
    assert post.status_code == 201, post.text
    post_id = post.json()["id"]
    comment = await suite.client.post(
        f"/api/v1/posts/{post_id}/comments", json={"body": "I'll be there"}, headers=auth(bob)
    )
    assert comment.status_code == 201, comment.text
    await suite.deliver()
    health = await _health(suite, group["id"], ada)
    assert health["active_members"] == 2 and health["weekly"][-1] == {
        **health["weekly"][-1],
        "posts": 1,
        "comments": 1,
    }
    assert health["unanswered_posts"] == 0 and health["median_first_reply_seconds"] is not None
    assert (await suite.client.delete(f"/api/v1/posts/{post_id}", headers=auth(ada))).status_code == 204
    await suite.deliver()
    health = await _health(suite, group["id"], ada)
    assert health["active_members"] == 0 and health["last_activity_at"] is None


async def test_activity_delivered_again_or_at_once_is_kept_once_and_not_claimed(suite):
    """Groups' history rows are keyed by what they record: an event delivered again, or four
    times at once, adds one row, and no processed-event claim is written for it (decision
    0045)."""
    import asyncio

    from sqlalchemy import func, select

    from services.groups.models import Activity

    p = await people(suite, "ada")
    group = await create_group(suite.client, p["ada"][0], "cloud")
    post = Feed(group["id"]).post(p["ada"][1], NOW - H)
    await send(suite, post)
    await asyncio.gather(*(send(suite, post) for _ in range(4)))
    processed = suite.groups.state.outbox.tables.processed
    async with suite.groups.state.database.sessionmaker() as session:
        rows = await session.scalar(
            select(func.count()).select_from(Activity).where(Activity.ref == post["data"]["id"])
        )
        claims = await session.scalar(
            select(func.count()).select_from(processed).where(processed.c.id == uuid.UUID(post["id"]))
        )
    assert rows == 1
    assert claims == 0


async def test_a_delivery_reads_each_group_once_for_all_its_events(suite):
    """The events of one delivery read each group once (decision 0050), and each is still
    judged by its own context: three posts of the group's context are kept, one of the other
    context is not."""
    from sqlalchemy import func, select

    from services.groups.models import Activity

    p = await people(suite, "ada")
    group = await create_group(suite.client, p["ada"][0], "cloud")
    ours, theirs = Feed(group["id"]), Feed(group["id"], "personal")
    events = [ours.post(p["ada"][1], NOW - H) for _ in range(3)] + [theirs.post(p["ada"][1], NOW - H)]
    with sql_of(suite.groups) as seen:
        await send(suite, *events)
    assert len([s for s in seen if 'FROM "group"' in s]) == 1, seen
    async with suite.groups.state.database.sessionmaker() as session:
        kept = await session.scalar(
            select(func.count()).select_from(Activity).where(Activity.group_id == uuid.UUID(group["id"]))
        )
    assert kept == 3
