"""What a verified token speaks for (domain.principal): a persona in one context, or an
integrator client; roles only through the professional persona; claims of neither shape are
refused; the access log names the persona and never the client."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from domain.principal import Principal, principal_from_claims
from kit.tokens import VerifiedClaims


def verified(**claims: Any) -> VerifiedClaims:
    now = time.time()
    subject = str(claims.setdefault("sub", str(uuid.uuid4())))
    return VerifiedClaims(subject=subject, token_id="j", issued_at=now, expires_at=now + 300, claims=claims)


def test_a_persona_token_speaks_for_its_persona_in_its_context():
    persona_id = uuid.uuid4()
    principal = principal_from_claims(
        verified(sub=str(persona_id), ctx="professional", scope="read write", roles=["moderator"])
    )
    assert principal.persona_id == persona_id
    assert principal.context == "professional"
    assert principal.scopes == {"read", "write"}
    assert principal.has_role("moderator")
    assert not principal.has_role("admin")
    assert principal.client_id is None


def test_a_personal_token_holds_no_role_whatever_it_claims():
    principal = principal_from_claims(verified(ctx="personal", roles=["admin", "moderator"]))
    assert principal.roles == frozenset()
    assert not principal.has_role("admin")
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


def test_a_client_token_speaks_for_the_client_and_no_persona():
    principal = principal_from_claims(verified(sub="client-1", client_id="client-1", scope="scim"))
    assert principal.persona_id is None
    assert principal.context is None
    assert principal.client_id == "client-1"
    assert principal.scopes == {"scim"}


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({}, "bad ctx"),
        ({"ctx": "work"}, "bad ctx"),
        ({"ctx": "professional", "sub": "not-a-uuid"}, "badly formed"),
        ({"client_id": "c", "ctx": "professional"}, "client token with a context"),
        ({"ctx": "professional", "scope": ["read"]}, "bad scope or roles"),
        ({"ctx": "professional", "roles": "admin"}, "bad scope or roles"),
    ],
    ids=["no ctx", "unknown ctx", "subject no persona id", "client with a ctx", "scope list", "roles text"],
)
def test_claims_that_fit_neither_a_persona_nor_a_client_are_refused(claims, why):
    with pytest.raises(ValueError, match=why):  # the verifier answers 401
        principal_from_claims(verified(**claims))


def test_the_access_log_names_the_persona_and_never_the_client():
    persona_id = uuid.uuid4()
    persona = principal_from_claims(verified(sub=str(persona_id), ctx="personal"))
    client = principal_from_claims(verified(sub="client-1", client_id="client-1"))
    assert persona.log_fields() == {"persona_id": str(persona_id)}
    assert client.log_fields() == {"persona_id": None}
