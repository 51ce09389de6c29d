"""The markers tests/conftest.py adds, on which the passes of `make test` select: a test that
reaches a service database is in the PostgreSQL pass, one that reaches none is not (decision
0047)."""

from __future__ import annotations

import pytest


async def test_a_test_that_builds_the_suite_is_marked_database(suite, request):
    assert request.node.get_closest_marker("database") is not None
    assert set(suite.services) == {"identity", "feed", "groups", "moderation", "records", "media"}


def test_a_test_given_the_databases_alone_is_marked_database(database_urls, request):
    assert request.node.get_closest_marker("database") is not None
    assert set(database_urls) == {"identity", "feed", "groups", "moderation", "records", "media"}


def test_a_test_that_reaches_no_database_is_not(request):
    assert request.node.get_closest_marker("database") is None


@pytest.mark.slow
def test_a_slow_test_is_serial(request):
    assert request.node.get_closest_marker("serial") is not None
