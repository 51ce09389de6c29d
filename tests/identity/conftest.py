"""Identity's shared fixtures: a local webhook receiver, and the suite that may deliver to it."""

from __future__ import annotations

import pytest

from tests.identity.test_webhooks import HOOKS, Receiver
from tests.suite import build_suite


@pytest.fixture
def receiver(tmp_path):
    r = Receiver(tmp_path)
    r.start()
    yield r
    r.stop()


@pytest.fixture
async def hooks_suite(database_urls):
    async with build_suite(database_urls, identity=HOOKS) as suite:
        yield suite
