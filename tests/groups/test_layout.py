"""Groups' flows work without HTTP (the layout itself: tests/test_layout.py)."""

from __future__ import annotations

import time
import uuid

from domain.principal import Principal
from services.groups import access, lifecycle, membership
from services.groups.schemas import Charter, GroupCreate
from tests.groups.support import GROUPS, people
from tests.helpers import CHARTER, auth


def _principal(persona_id: str) -> Principal:
    now = time.time()
    return Principal(
        subject=persona_id,
        persona_id=uuid.UUID(persona_id),
        context="professional",
        scopes=frozenset(),
        roles=frozenset(),
        token_id="flow",
        issued_at=now,
        expires_at=now + 60,
    )


async def test_the_group_flows_run_without_http(suite):
    p = await people(suite, "ada", "bob")
    ada, ada_id = p["ada"]
    bob, bob_id = p["bob"]
    body = GroupCreate(
        name="Flows",
        handle="flows",
        purpose="Show that the flows need no request.",
        charter=Charter.model_validate(CHARTER),
    )
    state = suite.groups.state
    async with state.database.sessionmaker() as session:
        created = await lifecycle.create(session, state.outbox, _principal(ada_id), body)
        await session.commit()
    group_id = created.body.id
    assert created.location == f"{GROUPS}/{group_id}"
    async with state.database.sessionmaker() as session:
        seen = await access.visible_group(session, group_id, _principal(bob_id))
        joined, new = await membership.join(session, state.outbox, seen, uuid.UUID(bob_id), joins_per_hour=10)
    assert new and joined.role == "member"
    await suite.deliver()

    resp = await suite.client.get(f"{GROUPS}/{group_id}", headers=auth(bob))
    assert resp.status_code == 200, resp.text
    assert resp.json()["member_count"] == 2
    assert resp.json()["my_role"] == "member"
    assert resp.json()["charter"]["stewards"] == [ada_id]
    resp = await suite.client.get(f"{GROUPS}/{group_id}/members", headers=auth(ada))
    assert {m["persona_id"]: m["role"] for m in resp.json()["items"]} == {ada_id: "owner", bob_id: "member"}
