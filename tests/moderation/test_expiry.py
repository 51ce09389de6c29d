"""Limits and suspensions end at their ``until`` (the expiry worker), and moderation's records
end after their retention (``retention.rules``)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from kit.housekeeping import Housekeeper
from kit.timeutil import utcnow
from services.moderation import expiry, retention
from services.moderation.models import Action, Evidence, Notice, Report
from tests.helpers import auth
from tests.moderation.support import NOTICES, filed, people, published, resolve, rows, staff

UNDO = ("moderation.persona.unlimited", "moderation.persona.reinstated")


async def act(
    suite: Any, reporter: str, moderator: str, persona_id: str, kind: str, until: datetime | None
) -> Action:
    """``reporter`` reports the persona and ``moderator`` resolves the report with ``kind``;
    returns the action."""
    report = await filed(suite, reporter, "persona", persona_id, category="harassment")
    body = {"until": until.isoformat()} if until is not None else {}
    resp = await resolve(suite, moderator, report["id"], kind, **body)
    assert resp.status_code == 200, resp.text
    (action,) = await rows(suite, Action, report_id=uuid.UUID(report["id"]))
    assert isinstance(action, Action)
    return action


async def expire(suite: Any, now: datetime | None = None) -> int:
    return await expiry.expire_due(suite.moderation.state.database, suite.moderation.state.outbox, now)


async def action(suite: Any, action_id: uuid.UUID) -> Action:
    (found,) = await rows(suite, Action, id=action_id)
    assert isinstance(found, Action)
    return found


async def test_a_due_limit_is_lifted_once_with_its_undo_and_others_are_left_alone(suite):
    p = await people(suite, "ada", "bob", "cyd")
    ada, bob, cy = p["ada"], p["bob"], p["cyd"]
    moderator, _ = await staff(suite, "mod", "moderator")
    until = utcnow() + timedelta(hours=1)
    limit = await act(suite, ada[0], moderator, bob[1], "limit", until)
    later = await act(suite, ada[0], moderator, cy[1], "limit", until + timedelta(days=1))
    before = await published(suite, *UNDO)

    assert await expire(suite) == 0  # not yet due
    assert await expire(suite, until - timedelta(seconds=1)) == 0
    assert (await action(suite, limit.id)).lifted_at is None

    assert await expire(suite, until + timedelta(seconds=1)) == 1
    lifted = await action(suite, limit.id)
    assert lifted.lifted_at is not None and lifted.reverted_at is None
    assert (await action(suite, later.id)).lifted_at is None
    undone = (await published(suite, *UNDO))[len(before) :]
    assert undone == [
        (
            "moderation.persona.unlimited",
            bob[1],
            {
                "context": "professional",
                "report_id": str(limit.report_id),
                "action_id": str(limit.id),
                "target_type": "persona",
                "target_id": bob[1],
                "subject_id": bob[1],
                "until": until.isoformat(),
            },
        )
    ]

    # once lifted, never again
    assert await expire(suite, until + timedelta(hours=2)) == 0
    assert len(await published(suite, *UNDO)) == len(before) + 1
    assert (await action(suite, limit.id)).lifted_at == lifted.lifted_at

    assert await expire(suite, until + timedelta(days=2)) == 1
    assert [e[1] for e in (await published(suite, *UNDO))[len(before) :]] == [bob[1], cy[1]]


async def test_a_reverted_limit_and_an_open_ended_suspension_are_never_lifted(suite):
    p = await people(suite, "ada", "bob", "cyd")
    ada, bob, cy = p["ada"], p["bob"], p["cyd"]
    first, _ = await staff(suite, "mod1", "moderator")
    second, _ = await staff(suite, "mod2", "moderator")
    until = utcnow() + timedelta(hours=1)
    limit = await act(suite, ada[0], first, bob[1], "limit", until)
    suspension = await act(suite, ada[0], first, cy[1], "suspend_persona", None)

    # bob appeals, and a second moderator upholds the appeal: the limit is reverted
    notices = await suite.client.get(NOTICES, headers=auth(bob[0]))
    assert notices.status_code == 200, notices.text
    (notice,) = notices.json()["items"]
    appealed = await suite.client.post(
        f"{NOTICES}/{notice['id']}/appeal", json={"text": "I did nothing of the kind."}, headers=auth(bob[0])
    )
    assert appealed.status_code == 201, appealed.text
    (appeal,) = await rows(suite, Report, kind="appeal")
    reverted = await resolve(suite, second, str(appeal.id), "revert")
    assert reverted.status_code == 200, reverted.text
    assert (await action(suite, limit.id)).reverted_at is not None
    before = await published(suite, *UNDO)

    assert await expire(suite, until + timedelta(days=3650)) == 0
    assert await published(suite, *UNDO) == before
    assert (await action(suite, limit.id)).lifted_at is None
    assert (await action(suite, suspension.id)).lifted_at is None


async def test_a_suspension_with_an_end_is_lifted_with_the_persona_reinstated(suite):
    p = await people(suite, "ada", "bob")
    ada, bob = p["ada"], p["bob"]
    moderator, _ = await staff(suite, "mod", "moderator")
    until = utcnow() + timedelta(days=3)
    suspension = await act(suite, ada[0], moderator, bob[1], "suspend_persona", until)
    assert await expire(suite, until + timedelta(minutes=1)) == 1
    (event,) = await published(suite, "moderation.persona.reinstated")
    assert event[1] == bob[1]
    assert event[2]["action_id"] == str(suspension.id) and event[2]["until"] == until.isoformat()


async def test_of_two_overlapping_limits_only_the_last_to_end_lets_the_persona_go(suite):
    p = await people(suite, "ada", "cyd", "bob")
    ada, cy, bob = p["ada"], p["cyd"], p["bob"]
    moderator, _ = await staff(suite, "mod", "moderator")
    soon = utcnow() + timedelta(hours=1)
    short = await act(suite, ada[0], moderator, bob[1], "limit", soon)
    long = await act(suite, cy[0], moderator, bob[1], "limit", soon + timedelta(days=1))

    assert await expire(suite, soon + timedelta(seconds=1)) == 1
    assert (await action(suite, short.id)).lifted_at is not None
    assert await published(suite, *UNDO) == []  # the longer limit still holds bob

    assert await expire(suite, soon + timedelta(days=1, seconds=1)) == 1
    (event,) = await published(suite, *UNDO)
    assert event[0] == "moderation.persona.unlimited" and event[2]["action_id"] == str(long.id)


async def test_the_worker_lifts_what_is_due_now_in_batches(suite):
    p = await people(suite, "ada", "bob", "cyd", "dee")
    moderator, _ = await staff(suite, "mod", "moderator")
    until = utcnow() + timedelta(hours=1)
    made = [await act(suite, p["ada"][0], moderator, p[h][1], "limit", until) for h in ("bob", "cyd", "dee")]
    async with suite.moderation.state.database.sessionmaker() as session, session.begin():
        await session.execute(
            update(Action)
            .where(Action.id == made[0].id)  # type: ignore[arg-type]
            .values(until=utcnow() - timedelta(seconds=1))
        )

    worker = expiry.worker(suite.moderation)
    assert suite.moderation.state.expiry is worker
    assert worker.interval == expiry.INTERVAL_SECONDS
    assert await worker.tick() == 1
    assert await worker.tick() == 0
    assert len(await published(suite, *UNDO)) == 1
    # a batch smaller than what is due: the next batches follow in the same run
    assert (
        await expiry.expire_due(
            suite.moderation.state.database,
            suite.moderation.state.outbox,
            until + timedelta(seconds=1),
            batch=1,
        )
        == 2
    )
    assert len(await published(suite, *UNDO)) == 3
    assert [(await action(suite, a.id)).lifted_at is not None for a in made] == [True] * 3


@pytest.mark.postgres
async def test_an_action_another_transaction_holds_is_skipped_not_waited_for(suite):
    p = await people(suite, "ada", "bob")
    moderator, _ = await staff(suite, "mod", "moderator")
    until = utcnow() + timedelta(hours=1)
    limit = await act(suite, p["ada"][0], moderator, p["bob"][1], "limit", until)
    database = suite.moderation.state.database
    async with database.sessionmaker() as holder:
        await holder.scalar(select(Action).where(Action.id == limit.id).with_for_update())  # type: ignore[arg-type]
        assert await expire(suite, until + timedelta(seconds=1)) == 0
        await holder.rollback()
    assert await expire(suite, until + timedelta(seconds=1)) == 1
    assert len(await published(suite, *UNDO)) == 1


# Retention


async def seed_report(
    suite: Any,
    *,
    resolved_ago: timedelta | None,
    action: str = "warn",
    until: datetime | None = None,
    lifted: bool = False,
) -> uuid.UUID:
    """A report (resolved ``resolved_ago``, or open) with one evidence row, and for a resolved
    one its action and the notice it gave; returns the report's id."""
    now = utcnow()
    filed_at = now - (resolved_ago or timedelta()) - timedelta(days=1)
    persona = uuid.uuid4()
    report = Report(
        kind="report",
        reporter_id=uuid.uuid4(),
        target_type="persona",
        target_id=persona,
        context="professional",
        subject_id=persona,
        category="spam",
        status="open" if resolved_ago is None else "resolved",
        action=None if resolved_ago is None else action,
        created_at=filed_at,
        resolved_at=None if resolved_ago is None else now - resolved_ago,
    )
    async with suite.moderation.state.database.sessionmaker() as session, session.begin():
        session.add(report)
        await session.flush()
        session.add(
            Evidence(
                report_id=report.id,
                ordinal=0,
                item_type="persona",
                item_id=persona,
                author_id=persona,
                captured_at=filed_at,
            )
        )
        if resolved_ago is not None:
            taken = Action(
                report_id=report.id,
                moderator_id=uuid.uuid4(),
                as_role="staff",
                kind=action,
                target_type="persona",
                target_id=persona,
                subject_id=persona,
                context="professional",
                reason="Seen.",
                until=until,
                lifted_at=now - resolved_ago if lifted else None,
                created_at=now - resolved_ago,
            )
            session.add(taken)
            await session.flush()
            if action != "none":
                session.add(
                    Notice(
                        persona_id=persona,
                        action_id=taken.id,
                        category="spam",
                        kind=action,
                        target_type="persona",
                        target_id=persona,
                        context="professional",
                        appeal_by=now - resolved_ago + timedelta(days=30),
                        created_at=now - resolved_ago,
                    )
                )
    return report.id


async def kept(suite: Any, report_id: uuid.UUID) -> dict[str, int]:
    """How many rows of each kind the report still has."""
    found = {
        "report": len(await rows(suite, Report, id=report_id)),
        "evidence": len(await rows(suite, Evidence, report_id=report_id)),
    }
    taken = await rows(suite, Action, report_id=report_id)
    found["action"] = len(taken)
    found["notice"] = sum([len(await rows(suite, Notice, action_id=a.id)) for a in taken])
    return found


async def test_records_go_after_their_retention_but_what_still_holds_a_persona_stays(suite):
    settings = suite.moderation.state.settings
    record, dismissed = settings.record_days, settings.dismissed_days
    assert (record, dismissed) == (730, 90)
    day = timedelta(days=1)
    cases = {
        "open, filed long ago": ({"resolved_ago": None}, None),
        "warned, within the record": ({"resolved_ago": (record - 1) * day}, None),
        "warned, past the record": ({"resolved_ago": (record + 1) * day}, "all"),
        "dismissed, within its days": ({"resolved_ago": (dismissed - 1) * day, "action": "none"}, None),
        "dismissed, past its days": ({"resolved_ago": (dismissed + 1) * day, "action": "none"}, "evidence"),
        "dismissed, past the record": ({"resolved_ago": (record + 1) * day, "action": "none"}, "all"),
        "suspended without end": ({"resolved_ago": (record + 1) * day, "action": "suspend_persona"}, None),
        "suspension lifted": (
            {
                "resolved_ago": (record + 1) * day,
                "action": "suspend_persona",
                "until": utcnow(),
                "lifted": True,
            },
            "all",
        ),
    }
    ids = {name: await seed_report(suite, **fields) for name, (fields, _) in cases.items()}
    before = {name: await kept(suite, report_id) for name, report_id in ids.items()}

    housekeeper = Housekeeper(suite.moderation.state.database, retention.rules(settings), batch=2)
    removed = await housekeeper.sweep()
    assert removed == {
        "moderation notices": 2,
        "moderation actions": 3,
        "moderation evidence": 4,
        "moderation reports": 3,
    }
    for name, (_, gone) in cases.items():
        after = await kept(suite, ids[name])
        if gone is None:
            assert after == before[name], name
        elif gone == "evidence":
            assert after == {**before[name], "evidence": 0}, name
        else:
            assert after == {"report": 0, "evidence": 0, "action": 0, "notice": 0}, name
    assert await housekeeper.sweep() == dict.fromkeys(removed, 0)
