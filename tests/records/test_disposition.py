"""Disposition: what each class's policy destroys in the records copy and tells the owners,
what a hold keeps (until it is released), edit history and operational classes, the
certificate and its digest, batches, and runs that must not overlap."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from kit.timeutil import utcnow
from services.records import disposition, holding
from services.records.classes import reaction_id
from services.records.models import (
    AuditEntry,
    Disposition,
    Hold,
    HoldPersona,
    Item,
    ItemVersion,
    Matter,
    RunLock,
)
from tests.helpers import auth, person, unique
from tests.records.support import (
    DISPOSITIONS,
    account_of,
    comment_data,
    dispose,
    hold,
    matter,
    officer,
    post_data,
    problem,
    published,
    put_policies,
    reaction_data,
    record_post,
    release,
    rows,
    run_disposition,
    send,
)

DAY = timedelta(days=1)


def ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def digest(*ids: Any) -> str:
    return hashlib.sha256("\n".join(sorted(str(i) for i in ids)).encode()).hexdigest()


async def dispose_events(suite: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(subject, data) for _, subject, data in await published(suite, "internal.records.dispose")]


async def ids_of(suite: Any) -> set[uuid.UUID]:
    return {i.id for i in await rows(suite, Item)}


async def comment(
    suite: Any, post_id: uuid.UUID, author: uuid.UUID, at: datetime, **fields: Any
) -> uuid.UUID:
    comment_id = uuid.uuid4()
    data = comment_data(comment_id, post_id, author, "created", at, body="A comment on it", **fields)
    await send(suite, "internal.records.comment", str(comment_id), data)
    return comment_id


async def react(suite: Any, post_id: uuid.UUID, persona: uuid.UUID, at: datetime, **fields: Any) -> uuid.UUID:
    await send(
        suite,
        "internal.records.reaction",
        str(post_id),
        reaction_data(post_id, persona, "added", at, **fields),
    )
    return reaction_id(post_id, persona, fields.get("kind", "like"))


async def test_a_post_past_its_cutoff_goes_with_its_comments_and_reactions(suite):
    token, officer_id = await officer(suite)
    author, reader = uuid.uuid4(), uuid.uuid4()
    old = await record_post(suite, author, ago(3))
    old_comment = await comment(suite, old, reader, ago(2))
    old_reaction = await react(suite, old, reader, ago(2))
    fresh = await record_post(suite, author, ago(0.5))
    followers = await record_post(suite, author, ago(3), audience="followers")
    assert (await put_policies(suite, token, dispose("organisation_posts", 1))).status_code == 200

    certificate = await run_disposition(suite, token)
    assert await ids_of(suite) == {fresh, followers}
    assert {v.item_id for v in await rows(suite, ItemVersion)} == {fresh, followers}
    assert await dispose_events(suite) == [(certificate["id"], {"kind": "post", "ids": [str(old)]})]
    assert certificate["status"] == "finished" and certificate["started_by"] == officer_id
    assert certificate["counts"] == {"organisation_posts": 1, "comments": 1, "reactions": 1}
    assert certificate["digest"] == digest(old, old_comment, old_reaction)
    assert set(certificate["cutoffs"]) == {"organisation_posts"}
    cutoff = datetime.fromisoformat(certificate["cutoffs"]["organisation_posts"])
    assert ago(1) - timedelta(minutes=1) < cutoff < ago(1) + timedelta(minutes=1)
    assert certificate["policies"]["organisation_posts"]["keep_days"] == 1
    assert (
        certificate["policies"]["comments"]["then"] == "keep_forever"
        and certificate["policies"]["version"] == 1
    )
    (entry,) = await rows(suite, AuditEntry, action="disposition.run")
    assert entry.officer_id == uuid.UUID(officer_id) and entry.details["disposition_id"] == certificate["id"]

    listed = await suite.client.get(DISPOSITIONS, headers=auth(token))
    assert [d["id"] for d in listed.json()["items"]] == [certificate["id"]]
    got = await suite.client.get(f"{DISPOSITIONS}/{certificate['id']}", headers=auth(token))
    assert got.json() == certificate
    problem(await suite.client.get(f"{DISPOSITIONS}/{uuid.uuid4()}", headers=auth(token)), 404)

    # a second run finds nothing more
    again = await run_disposition(suite, token)
    assert again["counts"] == {} and again["digest"] == digest()
    assert len(await dispose_events(suite)) == 1


async def test_comments_reactions_and_personal_content_have_their_own_policies(suite):
    token, _ = await officer(suite)
    author, reader = uuid.uuid4(), uuid.uuid4()
    post = await record_post(suite, author, ago(10))
    old_comment = await comment(suite, post, reader, ago(5))
    new_comment = await comment(suite, post, reader, ago(0.1))
    old_reaction = await react(suite, post, reader, ago(5), kind="insightful")
    personal = await record_post(suite, author, ago(5), context="personal", audience="followers")
    personal_comment = await comment(suite, post, reader, ago(5), context="personal")
    changed = await put_policies(
        suite, token, dispose("comments", 2), dispose("reactions", 2), dispose("personal_content", 2)
    )
    assert changed.status_code == 200, changed.text

    certificate = await run_disposition(suite, token)
    assert await ids_of(suite) == {post, new_comment}
    assert certificate["counts"] == {"comments": 1, "reactions": 1, "personal_content": 2}
    assert certificate["digest"] == digest(old_comment, old_reaction, personal, personal_comment)
    run = certificate["id"]
    assert await dispose_events(suite) == [
        (run, {"kind": "post", "ids": [str(personal)]}),
        (run, {"kind": "comment", "ids": [str(old_comment)]}),
        (
            run,
            {
                "kind": "reaction",
                "reactions": [{"post_id": str(post), "persona_id": str(reader), "kind": "insightful"}],
            },
        ),
        (run, {"kind": "comment", "ids": [str(personal_comment)]}),
    ]


async def test_posts_may_be_aged_by_their_last_activity_and_groups_by_their_own_rule(suite):
    token, _ = await officer(suite)
    author = uuid.uuid4()
    quiet = await record_post(suite, author, ago(10))
    busy = await record_post(suite, author, ago(10))
    await comment(suite, busy, author, ago(1))
    kept_group, short_group, other_group = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    in_kept = await record_post(suite, author, ago(10), group_id=kept_group)
    in_short = await record_post(suite, author, ago(3), group_id=short_group)
    in_other = await record_post(suite, author, ago(10), group_id=other_group)
    young_other = await record_post(suite, author, ago(3), group_id=other_group)
    changed = await put_policies(
        suite,
        token,
        dispose("organisation_posts", 5, counted_from="last_activity"),
        dispose(
            "group_posts",
            5,
            overrides={
                str(kept_group): {"then": "keep_forever"},
                str(short_group): {"keep_days": 2, "then": "dispose"},
            },
        ),
    )
    assert changed.status_code == 200, changed.text
    certificate = await run_disposition(suite, token)
    remaining = await ids_of(suite)
    assert quiet not in remaining and busy in remaining
    assert in_kept in remaining and young_other in remaining
    assert in_short not in remaining and in_other not in remaining
    assert certificate["counts"] == {"organisation_posts": 1, "group_posts": 2}
    assert set(certificate["cutoffs"]) == {"organisation_posts", "group_posts", f"group_posts:{short_group}"}


async def test_a_held_item_stays_until_its_hold_is_released(suite):
    token, _ = await officer(suite)
    _, custodian_id = await person(suite.client, unique("cas"))
    await suite.deliver()
    custodian, bystander, reader = uuid.UUID(custodian_id), uuid.uuid4(), uuid.uuid4()
    held_post = await record_post(suite, custodian, ago(30))
    comment_on_held = await comment(suite, held_post, reader, ago(29))
    free_post = await record_post(suite, bystander, ago(30))
    # a custodian's comment on someone else's post keeps that post, whose disposal would take it
    hosting = await record_post(suite, bystander, ago(30))
    custodian_comment = await comment(suite, hosting, custodian, ago(29))
    before_range = await record_post(suite, custodian, ago(200))
    case = await matter(suite, token)
    placed = await hold(
        suite,
        token,
        case["id"],
        custodians=[await account_of(suite, custodian_id)],
        date_from=ago(100).isoformat(),
    )
    problem(await put_policies(suite, token, dispose("organisation_posts", 1)), 409, "policy-within-hold")
    assert (
        await put_policies(suite, token, dispose("organisation_posts", 1), acknowledge=True)
    ).status_code == 200

    certificate = await run_disposition(suite, token)
    assert await ids_of(suite) == {held_post, comment_on_held, hosting, custodian_comment}
    assert certificate["digest"] == digest(free_post, before_range)

    assert (await release(suite, token, case["id"], placed["id"])).status_code == 200
    certificate = await run_disposition(suite, token)
    assert await ids_of(suite) == set()
    assert certificate["counts"] == {"organisation_posts": 2, "comments": 2}
    assert certificate["digest"] == digest(held_post, comment_on_held, hosting, custodian_comment)


async def test_a_hold_with_terms_keeps_only_what_says_them_in_some_version(suite):
    token, _ = await officer(suite)
    group_id, author = uuid.uuid4(), uuid.uuid4()
    said = await record_post(suite, author, ago(30), body="About the BUDGET of 50%", group_id=group_id)
    edited = await record_post(suite, author, ago(30), body="A budget line", group_id=group_id)
    data = post_data(
        edited, author, "edited", ago(29), created_at=ago(30), body="Nothing to see", group_id=group_id
    )
    await send(suite, "internal.records.post", str(edited), data)
    silent = await record_post(suite, author, ago(30), body="Lunch menu", group_id=group_id)
    wildcard = await record_post(suite, author, ago(30), body="50 percent", group_id=group_id)
    case = await matter(suite, token)
    await hold(
        suite,
        token,
        case["id"],
        group_ids=[str(group_id)],
        terms=["budget", "50%"],
        date_from=ago(60).isoformat(),
    )
    assert (await put_policies(suite, token, dispose("group_posts", 1), acknowledge=True)).status_code == 200
    await run_disposition(suite, token)
    assert await ids_of(suite) == {said, edited}
    assert silent not in await ids_of(suite) and wildcard not in await ids_of(suite)


async def test_edit_history_goes_while_the_post_and_its_current_text_stay(suite):
    token, _ = await officer(suite)
    author = uuid.uuid4()
    post = await record_post(suite, author, ago(10), body="First")
    for days, body in [(9, "Second"), (1, "Third")]:
        data = post_data(post, author, "edited", ago(days), created_at=ago(10), body=body)
        await send(suite, "internal.records.post", str(post), data)
    deleted = await record_post(suite, author, ago(10), body="Only text")
    data = post_data(deleted, author, "edited", ago(9), created_at=ago(10), body="Last text")
    await send(suite, "internal.records.post", str(deleted), data)
    data = post_data(deleted, author, "deleted", ago(8), created_at=ago(10), deleted_at=ago(8))
    await send(suite, "internal.records.post", str(deleted), data)
    personal = await record_post(suite, author, ago(10), body="Mine", context="personal")
    data = post_data(
        personal, author, "edited", ago(9), created_at=ago(10), body="Mine too", context="personal"
    )
    await send(suite, "internal.records.post", str(personal), data)
    before = {v.id: v for v in await rows(suite, ItemVersion)}
    assert (await put_policies(suite, token, dispose("edit_history", 5))).status_code == 200

    certificate = await run_disposition(suite, token)
    left = {(v.item_id, v.version, v.body) for v in await rows(suite, ItemVersion)}
    assert left == {
        (post, 3, "Third"),
        (deleted, 2, "Last text"),
        (deleted, 3, None),
        (personal, 1, "Mine"),
        (personal, 2, "Mine too"),
    }
    gone = [i for i, v in before.items() if (v.item_id, v.version, v.body) not in left]
    assert certificate["counts"] == {"edit_history": 3} and certificate["digest"] == digest(*gone)
    assert await ids_of(suite) == {post, deleted, personal}
    ((_, data),) = await dispose_events(suite)
    assert data == {
        "kind": "revisions",
        "post_ids": sorted([str(post), str(deleted)]),
        "before": certificate["cutoffs"]["edit_history"],
    }
    # a new version goes on numbering after the gaps
    data = post_data(post, author, "edited", ago(0), created_at=ago(10), body="Fourth")
    await send(suite, "internal.records.post", str(post), data)
    assert max(v.version for v in await rows(suite, ItemVersion, item_id=post)) == 4


async def test_operational_classes_are_asked_of_their_owners_unless_a_hold_reaches_back(suite):
    token, officer_id = await officer(suite)
    old_entry = AuditEntry(officer_id=uuid.UUID(officer_id), action="policies.read", at=ago(40))
    async with suite.records.state.database.sessionmaker() as session:
        session.add(old_entry)
        await session.commit()
    changed = await put_policies(
        suite,
        token,
        dispose("notifications", 30),
        dispose("webhook_deliveries", 10),
        dispose("audit_log", 30),
    )
    assert changed.status_code == 200, changed.text
    case = await matter(suite, token)
    await hold(suite, token, case["id"], group_ids=[str(uuid.uuid4())], date_from=ago(20).isoformat())

    certificate = await run_disposition(suite, token)
    events = [data for _, data in await dispose_events(suite)]
    assert events == [
        {"class": "notifications", "before": certificate["cutoffs"]["notifications"]},
        {"class": "audit_log", "before": certificate["cutoffs"]["audit_log"]},
    ]
    assert certificate["held"] == ["webhook_deliveries"]
    assert certificate["counts"] == {"audit_log": 1}
    assert not await rows(suite, AuditEntry, id=old_entry.id)
    assert await rows(suite, AuditEntry, action="matter.created")


async def test_batches_each_tell_the_owners_what_they_destroyed(suite):
    token, _ = await officer(suite)
    author = uuid.uuid4()
    posts = sorted([await record_post(suite, author, ago(3)) for _ in range(5)])
    assert (await put_policies(suite, token, dispose("organisation_posts", 1))).status_code == 200
    app = suite.records
    settings = app.state.settings.model_copy(update={"disposition_batch": 2})
    certificate = await disposition.run(app.state.database, app.state.outbox, settings, utcnow())
    assert certificate.counts == {"organisation_posts": 5} and certificate.started_by is None
    assert [data["ids"] for _, data in await dispose_events(suite)] == [
        [str(p) for p in posts[:2]],
        [str(p) for p in posts[2:4]],
        [str(posts[4])],
    ]
    (entry,) = await rows(suite, AuditEntry, action="disposition.run")
    assert entry.officer_id is None


async def test_two_runs_never_overlap_and_a_dead_run_is_taken_over(suite):
    token, _ = await officer(suite)
    await record_post(suite, uuid.uuid4(), ago(3))
    assert (await put_policies(suite, token, dispose("organisation_posts", 1))).status_code == 200
    app = suite.records
    someone = uuid.uuid4()
    async with app.state.database.sessionmaker() as session:
        session.add(RunLock(name="disposition", holder=someone, until=utcnow() + timedelta(minutes=5)))
        session.add(Disposition(id=someone, started_at=utcnow()))
        await session.commit()
    problem(await suite.client.post(DISPOSITIONS, headers=auth(token)), 409, "disposition-running")
    worker = disposition.Disposer(app.state.database, app.state.outbox, app.state.settings)
    assert await worker.tick() is None
    assert len(await rows(suite, Item)) == 1

    # the holder died: once its lease has run out, the next run takes over
    async with app.state.database.sessionmaker() as session:
        lock = await session.get(RunLock, "disposition")
        lock.until = utcnow() - timedelta(seconds=1)
        await session.commit()
    certificate = await worker.tick()
    assert certificate is not None and certificate.status == "finished"
    assert not await rows(suite, Item)
    (dead,) = await rows(suite, Disposition, id=someone)
    assert dead.status == "aborted"
    async with app.state.database.sessionmaker() as session:
        lock = await session.scalar(select(RunLock))
    assert lock.holder is None


@pytest.mark.postgres
async def test_a_hold_placed_while_a_batch_waits_is_seen_by_the_batch(suite):
    """A hold's placement and a disposition batch take one lock (``holding.serialise``): a
    batch that starts while a hold is being placed waits for it, then keeps what it covers."""
    token, officer_id = await officer(suite)
    author = uuid.uuid4()
    post = await record_post(suite, author, ago(3))
    assert (await put_policies(suite, token, dispose("organisation_posts", 1))).status_code == 200
    app = suite.records
    async with app.state.database.sessionmaker() as placing, placing.begin():
        await holding.serialise(placing)
        case = Matter(
            name="Order", reference=unique("ORD"), reason="An order.", created_by=uuid.UUID(officer_id)
        )
        held = Hold(matter_id=case.id, date_from=ago(30), created_by=case.created_by)
        placing.add_all([case, held])
        await placing.flush()
        placing.add(
            HoldPersona(hold_id=held.id, persona_id=author, account_id=uuid.uuid4(), context="professional")
        )
        await placing.flush()
        running = asyncio.create_task(
            disposition.run(app.state.database, app.state.outbox, app.state.settings, utcnow())
        )
        await _until_waiting_on_a_lock(app)
    certificate = await running
    assert certificate.counts == {}
    assert {i.id for i in await rows(suite, Item)} == {post}


async def _until_waiting_on_a_lock(app: Any) -> None:
    """Returns once a session of the database waits on an advisory lock (the run's batch)."""
    query = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    for _ in range(1000):
        async with app.state.database.sessionmaker() as session:
            if await session.scalar(query):
                return
        await asyncio.sleep(0.01)
    raise AssertionError("the run never waited for the hold's placement")
