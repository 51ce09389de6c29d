"""The moderation figures: counts and medians for staff, naming nobody."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from kit.timeutil import utcnow
from services.moderation import actions, stats
from services.moderation.models import Action, Report
from tests.helpers import auth, with_personal
from tests.moderation.support import QUEUE, filed, people, problem, resolve, staff
from tests.tokens import claims, sign

STATS = "/api/v1/moderation/stats"
ZERO = {"professional": 0, "personal": 0}
NONE = {"last_7_days": None, "last_30_days": None}


async def figures(suite: Any, token: str) -> dict[str, Any]:
    resp = await suite.client.get(STATS, headers=auth(token))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def test_with_nothing_reported_every_count_is_zero_and_every_median_null(suite):
    moderator, _ = await staff(suite, "mod", "moderator")
    assert await figures(suite, moderator) == {
        "open": ZERO,
        "assigned": ZERO,
        "first_action_median_seconds": NONE,
        "resolution_median_seconds": NONE,
        "actions": dict.fromkeys(actions.APPLIES, 0),
    }


async def test_the_figures_follow_reports_through_the_queue_and_name_nobody(suite):
    p = await people(suite, "ada", "bob")
    (ada, ada_id), (_, bob_id) = p["ada"], p["bob"]
    cy = await with_personal(suite.client, "cyd")
    dee = await with_personal(suite.client, "dee")
    await suite.deliver()
    moderator, moderator_id = await staff(suite, "mod", "moderator")
    root, root_id = await staff(suite, "root", "admin")

    first = await filed(suite, ada, "persona", bob_id, category="harassment")
    personal = await filed(suite, cy["personal"], "persona", dee["personal_id"], category="spam")
    body = await figures(suite, moderator)
    assert body["open"] == {"professional": 1, "personal": 1}
    assert body["assigned"] == ZERO
    assert body["first_action_median_seconds"] == NONE

    taken = await suite.client.post(f"{QUEUE}/{personal['id']}/assign", headers=auth(moderator))
    assert taken.status_code == 200, taken.text
    body = await figures(suite, root)
    assert body["open"] == {"professional": 1, "personal": 0}
    assert body["assigned"] == {"professional": 0, "personal": 1}

    for report, action in ((first, "warn"), (personal, "none")):
        resolved = await resolve(suite, moderator, report["id"], action)
        assert resolved.status_code == 200, resolved.text
    body = await figures(suite, moderator)
    assert body["open"] == ZERO and body["assigned"] == ZERO
    assert body["actions"] == {**dict.fromkeys(actions.APPLIES, 0), "warn": 1, "none": 1}
    for name in ("first_action_median_seconds", "resolution_median_seconds"):
        for window in ("last_7_days", "last_30_days"):
            assert 0 <= body[name][window] < 600, body

    text = str(body)
    for persona in (ada_id, bob_id, cy["personal_id"], dee["personal_id"], moderator_id, root_id):
        assert persona not in text
    assert first["id"] not in text


async def seed(suite: Any, now: datetime) -> None:
    """Reports whose times are known, and actions in and out of the 30 days."""
    day = timedelta(days=1)

    def report(
        filed_at: datetime,
        first_after: float | None,
        resolved_at: datetime | None,
        *,
        status: str = "resolved",
        context: str = "professional",
    ) -> Report:
        return Report(
            kind="report",
            reporter_id=uuid.uuid4(),
            target_type="persona",
            target_id=uuid.uuid4(),
            context=context,
            category="spam",
            status=status,
            created_at=filed_at,
            first_action_at=None if first_after is None else filed_at + timedelta(seconds=first_after),
            resolved_at=resolved_at,
        )

    rows = [
        # filed 2 days ago, acted on after 100 s, resolved after 1000 s: both windows
        report(now - 2 * day, 100, now - 2 * day + timedelta(seconds=1000)),
        # first acted on 12 days ago (30 days only), resolved 3 days ago after 9 days: both
        report(now - 12 * day, 200, now - 3 * day),
        # all of it 20 days ago: 30 days only
        report(now - 20 * day, 400, now - 20 * day + timedelta(seconds=5000)),
        # all of it over 30 days ago: in no window
        report(now - 60 * day, 9999, now - 31 * day),
        # open, never acted on: counted, in no median
        report(now - day, None, None, status="open"),
        # assigned in the personal context an hour ago, five minutes after filing
        report(now - timedelta(hours=1), 300, None, status="assigned", context="personal"),
    ]
    async with suite.moderation.state.database.sessionmaker() as session, session.begin():
        session.add_all(rows)
        await session.flush()
        for kind, ago in (
            ("warn", day),
            ("hide", 29 * day),
            ("limit", 2 * day),
            ("none", 3 * day),
            ("remove", 31 * day),
        ):
            session.add(
                Action(
                    report_id=rows[0].id,
                    moderator_id=uuid.uuid4(),
                    as_role="staff",
                    kind=kind,
                    target_type="persona",
                    target_id=rows[0].target_id,
                    context="professional",
                    reason="Seen.",
                    created_at=now - ago,
                )
            )


EXPECTED = {
    "open": {"professional": 1, "personal": 0},
    "assigned": {"professional": 0, "personal": 1},
    # first actions: 100 and 300 in 7 days; 100, 200, 300 and 400 in 30
    "first_action_median_seconds": {"last_7_days": 200.0, "last_30_days": 250.0},
    # resolutions: 1000 and 9 days in 7 days; 1000, 5000 and 9 days in 30
    "resolution_median_seconds": {"last_7_days": (1000 + 9 * 86400) / 2, "last_30_days": 5000.0},
    "actions": {**dict.fromkeys(actions.APPLIES, 0), "warn": 1, "hide": 1, "limit": 1, "none": 1},
}


async def test_each_median_covers_what_happened_in_its_window(suite):
    now = utcnow()
    await seed(suite, now)
    async with suite.moderation.state.database.sessionmaker() as session:
        assert (await stats.compute(session, now)).model_dump() == EXPECTED
        # sixty days on, nothing is left in any window, and what waits still counts
        later = (await stats.compute(session, now + timedelta(days=60))).model_dump()
    assert later == {**EXPECTED, **{k: NONE for k in EXPECTED if k.endswith("seconds")}} | {
        "actions": dict.fromkeys(actions.APPLIES, 0)
    }
    moderator, _ = await staff(suite, "mod", "moderator")
    assert await figures(suite, moderator) == EXPECTED


async def test_only_staff_acting_through_their_professional_persona_see_the_figures(suite):
    ada = await with_personal(suite.client, "ada")
    await suite.deliver()
    for token in (ada["pro"], ada["personal"]):
        problem(await suite.client.get(STATS, headers=auth(token)), 403, "not-a-moderator")
    problem(await suite.client.get(STATS), 401)
    client = sign(suite.keys.active, claims(None, sub="client-1", ctx=None, client_id="client-1"))
    problem(await suite.client.get(STATS, headers=auth(client)), 403, "forbidden")
    admin, admin_id = await staff(suite, "root", "admin")
    assert (await suite.client.get(STATS, headers=auth(admin))).status_code == 200
    notices = sign(suite.keys.active, claims(admin_id, scope="notices", roles=["admin"]))
    problem(await suite.client.get(STATS, headers=auth(notices)), 403, "notices-only")
    # a token that still claims the role is refused once the role is gone at identity
    moderator, _ = await staff(suite, "mod", "moderator")
    assert (await suite.client.get(STATS, headers=auth(moderator))).status_code == 200
    account_id = (await suite.client.get("/api/v1/me", headers=auth(moderator))).json()["account_id"]
    removed = await suite.client.patch(
        f"/api/v1/admin/accounts/{account_id}",
        json={"roles": [], "reason": "Moves to another team."},
        headers=auth(admin),
    )
    assert removed.status_code == 200, removed.text
    await suite.deliver()
    problem(await suite.client.get(STATS, headers=auth(moderator)), 403, "not-a-moderator")
