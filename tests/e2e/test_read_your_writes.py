"""Read-your-writes over the real processes (``services.feed.replicas``): a group's owner posts
to it the moment it exists, before groups' events have reached feed, every time."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.people import Person
from tests.helpers import create_group, unique
from tests.processes import LIMITS, Running

pytestmark = pytest.mark.e2e


async def test_a_group_takes_its_owners_post_the_moment_it_exists(running: Running) -> None:
    with httpx.Client(base_url=running.url(), timeout=10, limits=LIMITS) as client:
        ada = Person(client, running, "ada").headers("professional")
    token = ada["Authorization"].removeprefix("Bearer ")
    refused = []
    async with httpx.AsyncClient(base_url=running.url(), timeout=10, limits=LIMITS) as client:
        for _ in range(20):
            group = await create_group(client, token, unique("rw"), visibility="closed")
            post = await client.post(
                "/api/v1/posts",
                json={"body": "First!", "audience": "group", "group_id": group["id"]},
                headers=ada,
            )
            if post.status_code != 201:
                refused.append((post.status_code, post.text))
                continue
            timeline = await client.get(f"/api/v1/timelines/groups/{group['id']}", headers=ada)
            assert [p["body"] for p in timeline.json()["items"]] == ["First!"], timeline.text
    assert refused == []
