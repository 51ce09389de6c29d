"""Records' disposal of identity's operational records (decision 0033): ``internal.records.dispose``
with ``{"class": "audit_log" | "webhook_deliveries", "before": time}`` deletes the audit entries
and the finished webhook deliveries created before the cut-off, in batches, by a worker of its
own; pending deliveries and later rows stay; every other shape is ignored; asking again
deletes nothing more."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from kit.ids import new_id
from kit.timeutil import as_utc, utcnow
from services.identity.models import AuditEntry, Disposal, WebhookDelivery, WebhookEndpoint, outbox_tables
from services.identity.records import Disposals
from tests.helpers import auth

DISPOSE = "internal.records.dispose"


async def _receive(
    suite, data: dict[str, Any], *, time: datetime | None = None, event_id: str | None = None
) -> dict[str, int]:
    """One event at identity's receiver, as records' relay sends it."""
    event = {
        "id": event_id or str(new_id()),
        "type": DISPOSE,
        "source": "records",
        "subject": str(new_id()),
        "time": (time or utcnow()).isoformat(),
        "data": data,
    }
    token = suite.identity.state.settings.internal_token.get_secret_value()
    resp = await suite.client.post(
        "http://identity/internal/events", json={"events": [event]}, headers=auth(token)
    )
    assert resp.status_code == 200, resp.text
    answer: dict[str, int] = resp.json()
    return answer


async def _from_records(suite, data: dict[str, Any]) -> None:
    """Publishes the event the way records does (its own outbox) and lets every relay run."""
    state = suite.records.state
    async with state.database.sessionmaker() as session:
        await state.outbox.publish(session, DISPOSE, str(new_id()), data)
        await session.commit()
    await suite.deliver()


async def _seed(suite, now: datetime) -> dict[str, uuid.UUID]:
    """Audit entries and webhook deliveries, old (ten days) and recent (one day), by name."""
    ids: dict[str, uuid.UUID] = {}
    async with suite.identity.state.database.sessionmaker() as session:
        endpoint = WebhookEndpoint(
            owner="client:cl_x",
            url="https://hooks.example",
            secret="s",
            event_types=["*"],
            contexts=["professional"],
        )
        session.add(endpoint)
        await session.flush()
        for age, days in (("old", 10), ("recent", 1)):
            entry = AuditEntry(actor="operator", action=f"test.{age}", created_at=now - timedelta(days=days))
            session.add(entry)
            ids[f"audit_{age}"] = entry.id
            for status in ("delivered", "failed", "pending"):
                event_id = new_id()
                session.add(
                    WebhookDelivery(
                        endpoint_id=endpoint.id,
                        event_id=event_id,
                        event_type="post.created",
                        subject="s",
                        payload="{}",
                        status=status,
                        created_at=now - timedelta(days=days),
                    )
                )
                ids[f"{status}_{age}"] = event_id
        await session.commit()
    return ids


async def _left(suite) -> tuple[set[str], set[uuid.UUID]]:
    """The test's audit entries (by action) and the deliveries (by event id) still there."""
    async with suite.identity.state.database.sessionmaker() as session:
        actions = set(
            (
                await session.scalars(select(AuditEntry.action).where(AuditEntry.action.startswith("test.")))
            ).all()
        )
        deliveries = set((await session.scalars(select(WebhookDelivery.event_id))).all())
    return actions, deliveries


async def _requests(suite) -> dict[str, datetime]:
    async with suite.identity.state.database.sessionmaker() as session:
        return {d.record_class: as_utc(d.before) for d in (await session.scalars(select(Disposal))).all()}


async def _dead_letters(suite) -> int:
    async with suite.identity.state.database.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(outbox_tables.dead_letter)) or 0)


def _deliveries(ids: dict[str, uuid.UUID]) -> set[uuid.UUID]:
    return {v for k, v in ids.items() if not k.startswith("audit")}


def _disposals(suite) -> Disposals:
    disposals: Disposals = suite.identity.state.disposals
    return disposals


async def test_old_audit_entries_and_finished_deliveries_go_and_the_rest_stays(suite):
    now = utcnow()
    ids = await _seed(suite, now)
    cutoff = now - timedelta(days=5)

    await _from_records(suite, {"class": "audit_log", "before": cutoff.isoformat()})
    await _from_records(suite, {"class": "webhook_deliveries", "before": cutoff.isoformat()})
    # the event is acknowledged at once: the worker deletes, in transactions of its own
    assert await _requests(suite) == {"audit_log": cutoff, "webhook_deliveries": cutoff}
    assert await _left(suite) == ({"test.old", "test.recent"}, _deliveries(ids))

    removed = await _disposals(suite).dispose_requested()

    assert removed == {"audit_log": 1, "webhook_deliveries": 2}
    actions, deliveries = await _left(suite)
    assert actions == {"test.recent"}
    assert deliveries == {
        ids["pending_old"],  # never sent yet: it stays, whatever its age
        ids["delivered_recent"],
        ids["failed_recent"],
        ids["pending_recent"],
    }
    assert await _requests(suite) == {}  # done, forgotten
    # the audit entries administrators and moderation wrote meanwhile are recent: they stay
    assert await _disposals(suite).dispose_requested() == {}


async def test_a_large_disposal_goes_in_batches_and_again_deletes_nothing_more(suite):
    now = utcnow()
    async with suite.identity.state.database.sessionmaker() as session:
        for n in range(7):
            session.add(
                AuditEntry(
                    actor="operator", action="test.old", created_at=now - timedelta(days=10, minutes=n)
                )
            )
        session.add(AuditEntry(actor="operator", action="test.recent", created_at=now - timedelta(days=1)))
        await session.commit()
    cutoff = now - timedelta(days=5)
    event_id = str(new_id())

    assert (await _receive(suite, {"class": "audit_log", "before": cutoff.isoformat()}, event_id=event_id))[
        "applied"
    ] == 1
    worker = Disposals(suite.identity.state.database, batch=3)
    assert await worker.dispose_requested() == {"audit_log": 7}
    assert (await _left(suite))[0] == {"test.recent"}

    # the same event again is not applied; a new one with the same cut-off deletes nothing more
    assert (await _receive(suite, {"class": "audit_log", "before": cutoff.isoformat()}, event_id=event_id))[
        "applied"
    ] == 0
    assert await _requests(suite) == {}
    await _receive(suite, {"class": "audit_log", "before": cutoff.isoformat()})
    assert await worker.dispose_requested() == {"audit_log": 0}
    assert (await _left(suite))[0] == {"test.recent"}


async def test_a_later_cut_off_replaces_one_still_waiting_and_an_earlier_one_does_not(suite):
    now = utcnow()
    early, late = now - timedelta(days=20), now - timedelta(days=5)

    await _receive(suite, {"class": "webhook_deliveries", "before": early.isoformat()})
    await _receive(suite, {"class": "webhook_deliveries", "before": late.isoformat()})
    await _receive(suite, {"class": "webhook_deliveries", "before": early.isoformat()})
    assert await _requests(suite) == {"webhook_deliveries": late}


async def test_a_cut_off_never_reaches_past_the_run_that_asked(suite):
    """A ``before`` later than the event itself is taken as the event's time: what identity
    wrote after records asked cannot be in that run's scope."""
    now = utcnow()
    ids = await _seed(suite, now)
    asked_at = now - timedelta(days=5)

    await _receive(
        suite, {"class": "audit_log", "before": (now + timedelta(days=365)).isoformat()}, time=asked_at
    )
    await _receive(
        suite,
        {"class": "webhook_deliveries", "before": (now + timedelta(days=365)).isoformat()},
        time=asked_at,
    )
    assert await _requests(suite) == {"audit_log": asked_at, "webhook_deliveries": asked_at}
    await _disposals(suite).dispose_requested()
    actions, deliveries = await _left(suite)
    assert actions == {"test.recent"}
    assert ids["delivered_recent"] in deliveries and ids["delivered_old"] not in deliveries


async def test_other_shapes_are_ignored_without_a_dead_letter(suite):
    now = utcnow()
    ids = await _seed(suite, now)
    before = now.isoformat()

    for data in (
        {"kind": "post", "ids": [str(new_id())]},
        {
            "kind": "reaction",
            "reactions": [{"post_id": str(new_id()), "persona_id": str(new_id()), "kind": "like"}],
        },
        {"kind": "revisions", "post_ids": [str(new_id())], "before": before},
        {"class": "notifications", "before": before},
        {"class": "group_health", "before": before},
        {"class": "audit_log"},  # no cut-off: nothing to do
        {},
    ):
        assert (await _receive(suite, data))["applied"] == 1, data
    assert await _requests(suite) == {}
    assert await _dead_letters(suite) == 0
    assert await _disposals(suite).dispose_requested() == {}
    assert await _left(suite) == ({"test.old", "test.recent"}, _deliveries(ids))

    # a cut-off that is no time is malformed: dead-lettered, never applied
    assert (await _receive(suite, {"class": "audit_log", "before": "last tuesday"}))["applied"] == 0
    assert await _dead_letters(suite) == 1
    assert await _requests(suite) == {}


async def test_webhooks_never_carry_the_disposal(suite):
    """Identity's webhooks fan out every event identity receives except ``internal.*`` ones."""
    async with suite.identity.state.database.sessionmaker() as session:
        session.add(
            WebhookEndpoint(
                owner="client:cl_x",
                url="https://hooks.example",
                secret="s",
                event_types=["*"],
                contexts=["professional", "personal"],
            )
        )
        await session.commit()

    await _from_records(suite, {"class": "audit_log", "before": utcnow().isoformat()})
    assert "audit_log" in await _requests(suite)  # it did arrive
    async with suite.identity.state.database.sessionmaker() as session:
        types = (await session.scalars(select(WebhookDelivery.event_type))).all()
    assert not [t for t in types if t.startswith("internal.")]
