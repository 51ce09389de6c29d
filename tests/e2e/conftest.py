"""End-to-end fixtures: the real processes, started as `make run` starts them, on free ports.

``running`` is one suite for the whole test session (starting one takes seconds): its tests
leave it running and use handles of their own (tests.helpers.unique), so that they pass in
any order. A test that stops the suite or reads all of its output takes ``fresh_running``, its
own. Under pytest-xdist (`make test`: ``--dist loadfile``) each worker that runs one of these
modules starts its own ``running``, once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import Running, launched

# Every test signs in from the same address, and with hashing cheap (tests.processes
# QUICK_PASSWORDS) a worker's tests sign in faster than the gateway's default 20 a minute
# leaves room for: the limit is raised, not switched off (tests/gateway holds its rules).
SIGN_INS = {"GATEWAY_RATE_LIMITS": json.dumps({"auth": {"per_address": 600}})}
# A quiet stream says so after 1 s (15 s by default): a test that reads a stream's backlog stops
# at that comment instead of waiting for a read timeout.
QUIET_STREAMS = {"FEED_STREAM_HEARTBEAT_SECONDS": "1"}


@pytest.fixture(scope="session")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One suite for every test of the session that asks for it; never stopped by a test."""
    with launched(tmp_path_factory.mktemp("shared") / "var", env={**SIGN_INS, **QUIET_STREAMS}) as suite:
        yield suite
    assert suite.process.returncode == 0, suite.tail(30)


@pytest.fixture
def fresh_running(tmp_path: Path) -> Iterator[Running]:
    """A suite of the test's own, which it may stop."""
    with launched(tmp_path / "var", env=SIGN_INS) as suite:
        yield suite
