"""Roles are exercised through the professional persona only. A personal persona whose account
holds a role is answered exactly as any other personal persona, in every service: a personal
persona seen using a role would be one of the few role holders, and so linkable to its
professional twin."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from jose import jwt

from domain.principal import Principal, principal_from_claims
from kit.errors import Forbidden
from kit.tokens import TokenVerifier
from services.identity import audit
from services.identity.keys import RingKeySource
from tests.helpers import auth, create_group, login, make_role, with_personal
from tests.suite import AUDIENCE, ISSUER
from tests.tokens import claims, sign

POSTS = "/api/v1/posts"
GROUPS = "/api/v1/groups"
LINKS = "/api/v1/admin/persona-links"
REASON = "Court order 2026-114 requires it."


async def role_holder(suite: Any, handle: str, *roles: str) -> dict[str, Any]:
    """Someone with both personas whose account holds ``roles``, signed in after the grant."""
    found = await with_personal(suite.client, handle)
    for role in roles:
        await make_role(suite, found["email"], role)
    pro = await login(suite.client, found["email"])
    personal = await login(suite.client, found["email"], persona="personal")
    return {**found, "pro": pro["access_token"], "personal": personal["access_token"]}


def forged_roles(suite: Any, persona_id: str) -> str:
    """A personal persona's token claiming every role, signed with identity's own key."""
    roles = ["admin", "communications", "moderator"]
    return sign(suite.keys.active, claims(persona_id, ctx="personal", roles=roles))


def same_answer(as_role_holder: Any, as_plain: Any, status: int) -> None:
    """The role holder's answer cannot be told from a plain persona's (path and trace id aside)."""
    assert as_role_holder.status_code == status, as_role_holder.text
    assert as_plain.status_code == status, as_plain.text
    strip = {"instance", "trace_id"}
    first = {k: v for k, v in as_role_holder.json().items() if k not in strip}
    second = {k: v for k, v in as_plain.json().items() if k not in strip}
    assert first == second


def _until() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).isoformat()


async def test_personal_tokens_carry_no_roles_and_professional_ones_do(suite):
    root = await role_holder(suite, "root", "admin", "moderator")
    assert jwt.get_unverified_claims(root["personal"])["roles"] == []
    assert jwt.get_unverified_claims(root["pro"])["roles"] == ["admin", "moderator"]
    refreshed = await suite.client.post(
        "/api/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": root["refresh"], "persona": "personal"},
    )
    assert refreshed.status_code == 200, refreshed.text
    assert jwt.get_unverified_claims(refreshed.json()["access_token"])["roles"] == []


async def test_a_personal_token_claiming_roles_holds_none(suite):
    verifier = TokenVerifier(
        RingKeySource(suite.keys), issuer=ISSUER, audience=AUDIENCE, principal=principal_from_claims
    )
    personal = await verifier.verify(forged_roles(suite, str(uuid.uuid4())))
    assert personal.roles == frozenset()
    assert not personal.has_role("admin")
    stray = Principal(
        subject="x",
        persona_id=uuid.uuid4(),
        context="personal",
        scopes=frozenset(),
        roles=frozenset({"admin"}),
        token_id="j",
        issued_at=time.time(),
        expires_at=time.time() + 60,
    )
    assert not stray.has_role("admin")


@pytest.mark.parametrize("forged", [False, True], ids=["issued", "forged"])
async def test_communications_role_pins_no_announcement_through_the_personal_persona(suite, forged):
    comms = await role_holder(suite, "cora", "communications")
    plain = await with_personal(suite.client, "pat")
    await suite.deliver()
    token = forged_roles(suite, comms["personal_id"]) if forged else comms["personal"]
    body = {"body": "All hands on Friday", "pinned_until": _until()}
    same_answer(
        await suite.client.post(POSTS, json=body, headers=auth(token)),
        await suite.client.post(POSTS, json=body, headers=auth(plain["personal"])),
        403,
    )
    own = await suite.client.post(POSTS, json={"body": "weekend plans"}, headers=auth(token))
    theirs = await suite.client.post(POSTS, json={"body": "weekend plans"}, headers=auth(plain["personal"]))
    same_answer(
        await suite.client.patch(
            f"{POSTS}/{own.json()['id']}", json={"pinned_until": _until()}, headers=auth(token)
        ),
        await suite.client.patch(
            f"{POSTS}/{theirs.json()['id']}", json={"pinned_until": _until()}, headers=auth(plain["personal"])
        ),
        403,
    )
    announced = await suite.client.post(POSTS, json=body, headers=auth(comms["pro"]))
    assert announced.status_code == 201 and announced.json()["pinned"] is True


@pytest.mark.parametrize("forged", [False, True], ids=["issued", "forged"])
async def test_secret_personal_group_stays_hidden_from_an_administrators_personal_persona(suite, forged):
    root = await role_holder(suite, "root", "admin")
    ann = await with_personal(suite.client, "ann")
    plain = await with_personal(suite.client, "pat")
    await suite.deliver()
    token = forged_roles(suite, root["personal_id"]) if forged else root["personal"]
    group = await create_group(suite.client, ann["personal"], "hush", visibility="secret")
    for path in (f"{GROUPS}/{group['id']}", f"{GROUPS}/{group['id']}/members"):
        same_answer(
            await suite.client.get(path, headers=auth(token)),
            await suite.client.get(path, headers=auth(plain["personal"])),
            404,
        )
    listed = await suite.client.get(GROUPS, headers=auth(token))
    assert listed.status_code == 200 and group["id"] not in listed.text
    hard = await suite.client.delete(f"{GROUPS}/{group['id']}", params={"hard": "true"}, headers=auth(token))
    assert hard.status_code == 404
    assert (
        await suite.client.get(f"{GROUPS}/{group['id']}", headers=auth(ann["personal"]))
    ).status_code == 200


@pytest.mark.parametrize("forged", [False, True], ids=["issued", "forged"])
async def test_moderator_deletes_no_post_of_others_through_the_personal_persona(suite, forged):
    mod = await role_holder(suite, "moe", "moderator")
    ann = await with_personal(suite.client, "ann")
    plain = await with_personal(suite.client, "pat")
    await suite.deliver()
    token = forged_roles(suite, mod["personal_id"]) if forged else mod["personal"]
    created = await suite.client.post(POSTS, json={"body": "my garden"}, headers=auth(ann["personal"]))
    path = f"{POSTS}/{created.json()['id']}"
    same_answer(
        await suite.client.delete(path, headers=auth(token)),
        await suite.client.delete(path, headers=auth(plain["personal"])),
        403,
    )
    assert (await suite.client.get(path, headers=auth(ann["personal"]))).status_code == 200


@pytest.mark.parametrize("forged", [False, True], ids=["issued", "forged"])
async def test_persona_links_are_not_resolved_through_the_personal_persona(suite, forged):
    root = await role_holder(suite, "root", "admin")
    ann = await with_personal(suite.client, "ann")
    plain = await with_personal(suite.client, "pat")
    await suite.deliver()
    token = forged_roles(suite, root["personal_id"]) if forged else root["personal"]
    body = {"persona_id": ann["personal_id"], "reason": REASON}
    same_answer(
        await suite.client.post(LINKS, json=body, headers=auth(token)),
        await suite.client.post(LINKS, json=body, headers=auth(plain["personal"])),
        403,
    )
    entries = (await suite.client.get("/api/v1/admin/audit", headers=auth(root["pro"]))).json()["items"]
    assert not [e for e in entries if e["action"] == "persona.link_resolved"]


async def test_administration_and_webhooks_refuse_the_personal_persona_like_anyone(suite):
    root = await role_holder(suite, "root", "admin")
    plain = await with_personal(suite.client, "pat")
    for method, path in (
        ("GET", "/api/v1/admin/accounts"),
        ("GET", "/api/v1/admin/audit"),
        ("GET", "/api/v1/admin/clients"),
        ("GET", "/api/v1/webhooks"),
    ):
        same_answer(
            await suite.client.request(method, path, headers=auth(root["personal"])),
            await suite.client.request(method, path, headers=auth(plain["personal"])),
            403,
        )


async def test_audit_log_names_only_the_professional_persona_as_actor(suite):
    root = await role_holder(suite, "root", "admin")
    ann = await with_personal(suite.client, "ann")
    plain = await with_personal(suite.client, "pat")
    account_id = (await suite.client.get("/api/v1/me", headers=auth(ann["pro"]))).json()["account_id"]
    suspend = {"status": "suspended", "reason": "Investigation of a reported leak."}
    path = f"/api/v1/admin/accounts/{account_id}"
    same_answer(
        await suite.client.patch(path, json=suspend, headers=auth(root["personal"])),
        await suite.client.patch(path, json=suspend, headers=auth(plain["personal"])),
        403,
    )
    assert (await suite.client.get("/api/v1/me", headers=auth(ann["pro"]))).status_code == 200
    done = await suite.client.patch(path, json=suspend, headers=auth(root["pro"]))
    assert done.status_code == 200, done.text
    entries = (await suite.client.get("/api/v1/admin/audit", headers=auth(root["pro"]))).json()["items"]
    assert {e["actor"] for e in entries} == {root["pro_id"], "operator"}  # the operator granted the role
    assert root["personal_id"] not in str(entries)


async def test_audit_entry_refuses_a_personal_actor(suite):
    verifier = TokenVerifier(
        RingKeySource(suite.keys), issuer=ISSUER, audience=AUDIENCE, principal=principal_from_claims
    )
    personal = await verifier.verify(forged_roles(suite, str(uuid.uuid4())))
    async with suite.identity.state.database.sessionmaker() as session:
        with pytest.raises(Forbidden):
            audit.record(session, personal, "account.status", reason=REASON)
