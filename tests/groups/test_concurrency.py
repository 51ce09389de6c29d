"""Concurrent joins, approvals and role changes against PostgreSQL: one membership per
persona, a correct member count, and never a group without an owner."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from tests.groups.support import GROUPS, event, join, members, people, published, send
from tests.helpers import CHARTER, auth, create_group
from tests.tokens import claims, sign

pytestmark = pytest.mark.postgres  # deselected without TEST_DATABASE_URL (tests/conftest.py)


def token_for(suite, persona_id: str) -> str:
    """A valid access token for a persona known only to groups' replica (``known``):
    registering fifty people through identity would only slow the test."""
    return sign(suite.keys.active, claims(persona_id))


async def known(suite, *persona_ids: str) -> None:
    """Tells groups about professional personas, as identity's events would."""
    await send(
        suite,
        *(
            {
                **event(
                    "persona.created",
                    persona_id,
                    {
                        "id": persona_id,
                        "context": "professional",
                        "handle": f"p{persona_id[:8]}",
                        "display_name": "P",
                        "status": "active",
                        "updated_at": datetime.now(UTC).isoformat(),
                    },
                ),
                "source": "identity",
            }
            for persona_id in persona_ids
        ),
    )


async def test_fifty_parallel_joins_of_one_persona_make_one_membership(suite):
    p = await people(suite, "ada", "bob")
    group = await create_group(suite.client, p["ada"][0], "cloud")
    bob, bob_id = p["bob"]
    answers = await asyncio.gather(*(join(suite, group["id"], bob, bob_id) for _ in range(50)))
    codes = sorted(r.status_code for r in answers)
    assert codes.count(201) == 1 and codes.count(200) == 49, codes
    assert {r.json()["persona_id"] for r in answers} == {bob_id}
    assert await members(suite, group["id"], bob) == {p["ada"][1]: "owner", bob_id: "member"}
    assert (await suite.client.get(f"{GROUPS}/{group['id']}", headers=auth(bob))).json()["member_count"] == 2
    added = [d["persona_id"] for _, _, d in await published(suite, "membership.added")]
    assert added.count(bob_id) == 1


async def test_fifty_personas_joining_at_once_are_all_counted(suite):
    p = await people(suite, "ada")
    group = await create_group(suite.client, p["ada"][0], "cloud")
    ids = [str(uuid.uuid4()) for _ in range(50)]
    await known(suite, *ids)
    answers = await asyncio.gather(*(join(suite, group["id"], token_for(suite, i), i) for i in ids))
    assert [r.status_code for r in answers] == [201] * 50, [r.text for r in answers if r.status_code != 201]
    listed = await members(suite, group["id"], p["ada"][0])
    assert set(listed) == {*ids, p["ada"][1]} and len(listed) == 51
    got = await suite.client.get(f"{GROUPS}/{group['id']}", headers=auth(p["ada"][0]))
    assert got.json()["member_count"] == 51
    assert len(await published(suite, "membership.added")) == 51


async def test_twenty_parallel_approvals_admit_once(suite):
    p = await people(suite, "ada", "bob")
    ada, (bob, bob_id) = p["ada"][0], p["bob"]
    group = await create_group(suite.client, ada, "closed_club", visibility="closed")
    gid = group["id"]
    requests = await asyncio.gather(
        *(suite.client.post(f"{GROUPS}/{gid}/join-requests", json={}, headers=auth(bob)) for _ in range(20))
    )
    assert sorted(r.status_code for r in requests) == [200] * 19 + [201]
    approvals = await asyncio.gather(
        *(
            suite.client.post(f"{GROUPS}/{gid}/join-requests/{bob_id}/approve", headers=auth(ada))
            for _ in range(20)
        )
    )
    codes = sorted(r.status_code for r in approvals)
    assert codes == [201] + [409] * 19, codes
    assert await members(suite, gid, ada) == {p["ada"][1]: "owner", bob_id: "member"}
    assert (await suite.client.get(f"{GROUPS}/{gid}", headers=auth(ada))).json()["member_count"] == 2


async def test_owners_demoting_each_other_at_once_leave_one_owner(suite):
    p = await people(suite, "ada", "bob")
    (ada, ada_id), (bob, bob_id) = p["ada"], p["bob"]
    for round_ in range(10):
        group = await create_group(suite.client, ada, f"duel_{round_}")
        gid = group["id"]
        await join(suite, gid, bob, bob_id)
        await suite.client.patch(
            f"{GROUPS}/{gid}/members/{bob_id}", json={"role": "owner"}, headers=auth(ada)
        )
        answers = await asyncio.gather(
            suite.client.patch(
                f"{GROUPS}/{gid}/members/{bob_id}", json={"role": "member"}, headers=auth(ada)
            ),
            suite.client.patch(
                f"{GROUPS}/{gid}/members/{ada_id}", json={"role": "member"}, headers=auth(bob)
            ),
        )
        codes = sorted(r.status_code for r in answers)
        assert codes in ([200, 403], [200, 409]), [r.text for r in answers]
        roles = await members(suite, gid, ada)
        assert sorted(roles.values()) == ["member", "owner"], roles


async def test_owners_leaving_at_once_leave_one_owner(suite):
    p = await people(suite, "ada", "bob", "cyd")
    owners = [p[h] for h in ("ada", "bob", "cyd")]
    group = await create_group(suite.client, owners[0][0], "exodus")
    gid = group["id"]
    for token, persona_id in owners[1:]:
        await join(suite, gid, token, persona_id)
        await suite.client.patch(
            f"{GROUPS}/{gid}/members/{persona_id}", json={"role": "owner"}, headers=auth(owners[0][0])
        )
    answers = await asyncio.gather(
        *(suite.client.delete(f"{GROUPS}/{gid}/members/{i}", headers=auth(t)) for t, i in owners)
    )
    assert sorted(r.status_code for r in answers) == [204, 204, 409]
    remaining = await members(suite, gid, owners[0][0]) if answers[0].status_code == 409 else None
    if remaining is None:
        left = next(t for (t, _), r in zip(owners, answers, strict=True) if r.status_code == 409)
        remaining = await members(suite, gid, left)
    assert list(remaining.values()) == ["owner"]


async def test_parallel_creates_with_one_idempotency_key_make_one_group(suite):
    p = await people(suite, "ada")
    headers = {**auth(p["ada"][0]), "Idempotency-Key": "kick-off"}
    body = {
        "name": "Cloud",
        "handle": "cloud",
        "purpose": "Move the services to the cloud.",
        "charter": CHARTER,
    }
    answers = await asyncio.gather(
        *(suite.client.post(GROUPS, json=body, headers=headers) for _ in range(10))
    )
    assert [r.status_code for r in answers] == [201] * 10, [r.text for r in answers]
    assert len({r.json()["id"] for r in answers}) == 1
    assert len(await published(suite, "group.created")) == 1


async def test_parallel_accepts_of_one_invitation_make_one_membership(suite):
    p = await people(suite, "ada", "bob")
    ada, (bob, bob_id) = p["ada"][0], p["bob"]
    group = await create_group(suite.client, ada, "hush", visibility="secret")
    gid = group["id"]
    await suite.client.post(f"{GROUPS}/{gid}/invitations", json={"persona_id": bob_id}, headers=auth(ada))
    answers = await asyncio.gather(
        *(
            suite.client.post(f"{GROUPS}/{gid}/invitations/{bob_id}/accept", headers=auth(bob))
            for _ in range(20)
        )
    )
    codes = sorted(r.status_code for r in answers)
    assert codes == [201] + [409] * 19, codes  # the others find it accepted already
    assert await members(suite, gid, bob) == {p["ada"][1]: "owner", bob_id: "member"}
    assert (await suite.client.get(f"{GROUPS}/{gid}", headers=auth(bob))).json()["member_count"] == 2
