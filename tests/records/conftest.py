"""Every records test also fails if any service answered with an unexpected error (a 500, or
a 503 from the database), whatever status the test itself looked at."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def no_unexpected_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    yield
    failures = [
        r.getMessage()
        for r in caplog.get_records("call")
        if r.name == "kit.errors" and r.levelno >= logging.WARNING
    ]
    assert not failures, failures
