"""Held content: a post or comment that matches the terms is saved held by feed, which tells
moderation; moderation files a system report, and a moderator releases or removes it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from services.feed.content import held_by, terms_at, writer
from services.moderation.models import Evidence, Notice, Report
from tests.feed.support import statements
from tests.helpers import auth
from tests.moderation.support import (
    GROUPS_PATH,
    QUEUE,
    group,
    people,
    problem,
    published,
    queue,
    resolve,
    rows,
    staff,
)


async def _term(suite: Any, admin: str, term: str, match: str = "word", context: str = "professional") -> str:
    resp = await suite.client.post(
        "/api/v1/admin/moderation/terms",
        json={"term": term, "match": match, "context": context},
        headers=auth(admin),
    )
    assert resp.status_code == 201, resp.text
    await suite.deliver()
    term_id: str = resp.json()["id"]
    return term_id


async def _write(suite: Any, token: str, body: str, **fields: Any) -> dict[str, Any]:
    resp = await suite.client.post("/api/v1/posts", json={"body": body, **fields}, headers=auth(token))
    assert resp.status_code == 201, resp.text
    await suite.deliver()
    written: dict[str, Any] = resp.json()
    return written


async def test_a_held_post_becomes_a_system_report_and_a_release_shows_it(suite):
    p = await people(suite, "bob", "cyd")
    (bob, bob_id), (cyd, _) = p["bob"], p["cyd"]
    root, _ = await staff(suite, "root", "admin")
    mod, _ = await staff(suite, "mo")
    term_id = await _term(suite, root, "crypto")
    held = await _write(suite, bob, "Buy crypto today, friends")
    problem(await suite.client.get(f"/api/v1/posts/{held['id']}", headers=auth(cyd)), 404)

    (report,) = await rows(suite, Report)
    assert report.kind == "system" and report.reporter_id is None and report.category == "other"
    assert report.target_type == "post" and str(report.target_id) == held["id"]
    assert str(report.subject_id) == bob_id and "crypto" in (report.comment or "")
    (evidence,) = await rows(suite, Evidence)
    assert evidence.body == "Buy crypto today, friends" and str(evidence.post_id) == held["id"]
    ((_, _, created),) = await published(suite, "moderation.report.created")
    assert created["kind"] == "system" and created["category"] == "other"
    (listed,) = await queue(suite, mod)
    assert listed["kind"] == "system" and listed["id"] == str(report.id)
    review = (await suite.client.get(f"{QUEUE}/{report.id}", headers=auth(mod))).json()
    assert review["reporter"] is None and review["target"]["author"]["id"] == bob_id
    assert term_id not in str(review)

    released = await resolve(suite, mod, str(report.id), "release")
    assert released.status_code == 200, released.text
    ((_, subject, data),) = await published(suite, "moderation.content.released")
    assert subject == held["id"] and data["target_type"] == "post" and data["post_id"] is None
    assert not await rows(suite, Notice)
    await suite.deliver()
    shown = await suite.client.get(f"/api/v1/posts/{held['id']}", headers=auth(cyd))
    assert shown.status_code == 200, shown.text


async def test_a_held_comment_in_a_group_is_released_or_removed_by_the_group_role(suite):
    p = await people(suite, "bob", "cyd")
    (bob, _), (cyd, cyd_id) = p["bob"], p["cyd"]
    root, _ = await staff(suite, "root", "admin")
    made = await group(suite, bob)
    await suite.client.put(f"{GROUPS_PATH}/{made['id']}/members/{cyd_id}", headers=auth(cyd))
    await suite.deliver()
    written = await _write(suite, bob, "A fine post in the group", audience="group", group_id=made["id"])
    await _term(suite, root, "scam", match="literal")
    resp = await suite.client.post(
        f"/api/v1/posts/{written['id']}/comments", json={"body": "What a scammer"}, headers=auth(cyd)
    )
    assert resp.status_code == 201, resp.text
    await suite.deliver()
    (report,) = await rows(suite, Report)
    assert report.target_type == "comment" and report.group_id == uuid.UUID(made["id"])
    (evidence,) = await rows(suite, Evidence)
    assert str(evidence.post_id) == written["id"]
    (listed,) = await queue(suite, bob, f"{GROUPS_PATH}/{made['id']}/reports")
    removed = await resolve(suite, bob, listed["id"], "remove")
    assert removed.status_code == 200, removed.text
    ((_, _, data),) = await published(suite, "moderation.content.removed")
    assert data["target_type"] == "comment" and data["post_id"] == written["id"]
    (notice,) = await rows(suite, Notice)
    assert str(notice.persona_id) == cyd_id


async def test_a_held_event_delivered_again_files_one_report(suite):
    p = await people(suite, "bob")
    _, bob_id = p["bob"]
    item = str(uuid.uuid4())
    data: dict[str, Any] = {
        "context": "professional",
        "item_type": "post",
        "item_id": item,
        "post_id": item,
        "author_id": bob_id,
        "group_id": None,
        "body": "Something held",
        "links": [],
        "term_ids": [],
        "created_at": datetime.now(UTC).isoformat(),
    }
    event = {
        "id": str(uuid.uuid4()),
        "type": "internal.content.held",
        "source": "feed",
        "subject": item,
        "time": datetime.now(UTC).isoformat(),
        "data": data,
    }
    token = suite.moderation.state.settings.internal_token.get_secret_value()
    for sent in (event, event, {**event, "id": str(uuid.uuid4())}):
        resp = await suite.client.post(
            "http://moderation/internal/events", json={"events": [sent]}, headers=auth(token)
        )
        assert resp.status_code == 200, resp.text
    assert len(await rows(suite, Report)) == 1
    assert len(await published(suite, "moderation.report.created")) == 1


async def test_terms_are_read_again_only_when_their_set_changes(suite):
    """Feed keeps each context's terms with the version of their set: a post with the set
    unchanged reads its version alone, and a new set (a term removed, another added) holds by
    its own terms from the next post on."""
    p = await people(suite, "bob", "cyd")
    (bob, _), (cyd, _) = p["bob"], p["cyd"]
    root, _ = await staff(suite, "root", "admin")
    crypto = await _term(suite, root, "crypto")
    first = await _write(suite, bob, "Buy crypto today")
    problem(await suite.client.get(f"/api/v1/posts/{first['id']}", headers=auth(cyd)), 404)

    with statements(suite) as seen:
        await _write(suite, bob, "Nothing to hold here")
    read = [s for s, _ in seen if "held_term" in s]
    assert len(read) == 1 and "held_term_set.version" in read[0], read

    removed = await suite.client.delete(f"/api/v1/admin/moderation/terms/{crypto}", headers=auth(root))
    assert removed.status_code == 204, removed.text
    await _term(suite, root, "bitcoin")
    shown = await _write(suite, bob, "Buy crypto again")
    assert (await suite.client.get(f"/api/v1/posts/{shown['id']}", headers=auth(cyd))).status_code == 200
    held = await _write(suite, bob, "Buy bitcoin now")
    problem(await suite.client.get(f"/api/v1/posts/{held['id']}", headers=auth(cyd)), 404)


async def test_a_writer_the_replica_does_not_hold_is_held_by_the_terms_all_the_same(suite):
    """The terms' version is read with the writer's replica, but not from it: without that row
    it is read all the same, so the terms still apply."""
    root, _ = await staff(suite, "root", "admin")
    await _term(suite, root, "crypto")
    async with suite.feed.state.database.sessionmaker() as session:
        unknown = await writer(session, uuid.uuid4(), "professional")
        assert unknown.handle is None and unknown.terms_version is not None
        terms = await terms_at(session, "professional", unknown.terms_version)
    assert held_by("Buy crypto", terms) == [str(terms[0].id)]
