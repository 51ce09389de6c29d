"""A persona of the other context costs the same work as an id that does not exist, so that
response times do not tell one from the other (compared over some hundreds of requests)."""

from __future__ import annotations

import uuid

import pytest

from bench.timing import indistinguishable
from tests.helpers import auth, person, with_personal

pytestmark = pytest.mark.slow


async def test_a_persona_of_the_other_context_takes_as_long_to_refuse_as_a_missing_one(suite):
    ada = await with_personal(suite.client, "ada")
    bob, _ = await person(suite.client, "bob")

    async def get(persona_id: str) -> None:
        resp = await suite.client.get(f"http://identity/api/v1/personas/{persona_id}", headers=auth(bob))
        assert resp.status_code == 404

    result = await indistinguishable(lambda: get(ada["personal_id"]), lambda: get(str(uuid.uuid4())))
    assert not result.distinguishable(), str(result)
