"""Parallel changes against PostgreSQL: of two resolves or assigns of one report, one wins and
the other gets a 409, with one action and one event; parallel filings stop at the hourly
limit, parallel duplicates make one report, parallel appeals of a notice make one."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from services.moderation.models import Action, Report
from tests.helpers import auth
from tests.moderation.support import NOTICES, QUEUE, file, filed, people, published, resolve, rows, staff
from tests.suite import Suite, build_suite

pytestmark = pytest.mark.postgres  # deselected without TEST_DATABASE_URL (tests/conftest.py)


async def known(suite: Any, count: int) -> list[str]:
    """Tells moderation about professional personas, as identity's events would: registering
    twenty people through identity would only slow the test."""
    ids = [str(uuid.uuid4()) for _ in range(count)]
    now = datetime.now(UTC).isoformat()
    events = [
        {
            "id": str(uuid.uuid4()),
            "type": "persona.created",
            "source": "identity",
            "subject": persona_id,
            "time": now,
            "data": {
                "id": persona_id,
                "context": "professional",
                "handle": f"p{persona_id[:8]}",
                "display_name": "P",
                "status": "active",
            },
        }
        for persona_id in ids
    ]
    token = suite.moderation.state.settings.internal_token.get_secret_value()
    resp = await suite.client.post(
        "http://moderation/internal/events", json={"events": events}, headers=auth(token)
    )
    assert resp.status_code == 200, resp.text
    return ids


async def test_parallel_resolves_of_one_report_make_one_action_and_one_event(suite):
    p = await people(suite, "ada", "bob")
    one, _ = await staff(suite, "one")
    two, _ = await staff(suite, "two")
    targets = await known(suite, 5)
    reports = [await filed(suite, p["ada"][0], "persona", t) for t in targets]
    for report in reports:
        answers = await asyncio.gather(
            resolve(suite, one, report["id"], "warn"), resolve(suite, two, report["id"], "warn")
        )
        codes = sorted(r.status_code for r in answers)
        assert codes == [200, 409], [r.text for r in answers]
        refused = next(r for r in answers if r.status_code == 409)
        assert refused.json()["type"].endswith("/report-resolved")
    assert len(await rows(suite, Action)) == 5
    assert len(await published(suite, "moderation.persona.warned")) == 5
    assert len(await published(suite, "moderation.report.resolved")) == 5
    assert len(await published(suite, "internal.moderation.audit")) == 5


async def test_parallel_assigns_of_one_report_give_it_to_one_moderator(suite):
    p = await people(suite, "ada", "bob")
    one, one_id = await staff(suite, "one")
    two, two_id = await staff(suite, "two")
    targets = await known(suite, 5)
    for target in targets:
        report = await filed(suite, p["ada"][0], "persona", target)
        answers = await asyncio.gather(
            suite.client.post(f"{QUEUE}/{report['id']}/assign", headers=auth(one)),
            suite.client.post(f"{QUEUE}/{report['id']}/assign", headers=auth(two)),
        )
        assert sorted(r.status_code for r in answers) == [200, 409], [r.text for r in answers]
        winner = next(r for r in answers if r.status_code == 200).json()["assignee_id"]
        assert winner in (one_id, two_id)
        assert next(r for r in answers if r.status_code == 409).json()["type"].endswith("/report-assigned")
        (row,) = await rows(suite, Report, id=uuid.UUID(report["id"]))
        assert str(row.assignee_id) == winner and row.version == 1


@pytest.fixture
async def tight(database_urls: dict[str, str]) -> AsyncIterator[Suite]:
    async with build_suite(database_urls, moderation={"reports_per_hour": 5}) as built:
        yield built


async def test_parallel_filings_stop_at_the_hourly_limit(tight):
    suite = tight
    p = await people(suite, "ada")
    ada = p["ada"][0]
    targets = await known(suite, 20)
    answers = await asyncio.gather(*(file(suite, ada, "persona", t) for t in targets))
    codes = sorted(r.status_code for r in answers)
    assert codes.count(201) == 5 and codes.count(429) == 15, codes
    assert len(await rows(suite, Report)) == 5
    assert len(await published(suite, "moderation.report.created")) == 5


async def test_parallel_duplicates_make_one_report(suite):
    p = await people(suite, "ada", "bob")
    answers = await asyncio.gather(*(file(suite, p["ada"][0], "persona", p["bob"][1]) for _ in range(10)))
    codes = sorted(r.status_code for r in answers)
    assert codes.count(201) == 1 and codes.count(200) == 9, codes
    assert len({r.json()["id"] for r in answers}) == 1
    assert len(await rows(suite, Report)) == 1


async def test_parallel_appeals_of_one_notice_make_one(suite):
    p = await people(suite, "ada", "bob")
    (ada, _), (bob, bob_id) = p["ada"], p["bob"]
    mod, _ = await staff(suite, "mo")
    report = await filed(suite, ada, "persona", bob_id)
    assert (await resolve(suite, mod, report["id"], "warn")).status_code == 200
    (notice,) = (await suite.client.get(NOTICES, headers=auth(bob))).json()["items"]
    answers = await asyncio.gather(
        *(
            suite.client.post(
                f"{NOTICES}/{notice['id']}/appeal", json={"text": "Please look again."}, headers=auth(bob)
            )
            for _ in range(5)
        )
    )
    codes = sorted(r.status_code for r in answers)
    assert codes == [201, 409, 409, 409, 409], [r.text for r in answers]
    assert len([r for r in await rows(suite, Report) if r.kind == "appeal"]) == 1
