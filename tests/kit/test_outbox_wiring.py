"""The relay's settings and metrics, as every service app wires them (decision 0022)."""

from __future__ import annotations

import httpx

from tests.helpers import register
from tests.suite import build_suite


async def test_the_attempt_cap_is_a_setting_and_failures_show_in_the_apps_metrics(database_urls):
    async with build_suite(database_urls, identity={"relay_max_attempts": 1}) as suite:
        relay = suite.identity.state.relay
        assert relay.max_attempts == 1
        assert suite.feed.state.relay.max_attempts == 1500
        suite.router.down.add("feed")
        await register(suite.client, "ada")
        await suite.deliver()
        async with httpx.AsyncClient(transport=suite.router, base_url="http://identity") as client:
            text = (await client.get("/metrics")).text
        assert 'outbox_deliveries_failed_total{subscriber="feed"} 1.0' in text
