"""A secret group the caller may not see costs the same work as an id that does not exist, so
that response times do not tell one from the other (compared over some hundreds of requests)."""

from __future__ import annotations

import uuid

import pytest

from bench.timing import indistinguishable
from tests.groups.support import GROUPS, people
from tests.helpers import auth, create_group

pytestmark = pytest.mark.slow


async def test_a_hidden_secret_group_takes_as_long_to_refuse_as_a_missing_one(suite):
    found = await people(suite, "ada", "bob")
    (ada, _), (bob, _) = found["ada"], found["bob"]
    secret = await create_group(suite.client, ada, "hush", visibility="secret")
    await suite.deliver()

    async def get(group_id: str) -> None:
        resp = await suite.client.get(f"http://groups{GROUPS}/{group_id}", headers=auth(bob))
        assert resp.status_code == 404

    result = await indistinguishable(lambda: get(secret["id"]), lambda: get(str(uuid.uuid4())))
    assert not result.distinguishable(), str(result)
