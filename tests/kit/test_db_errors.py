"""kit.db_errors: the database's errors as problem+json, in every app of a process that uses
SQLAlchemy, reported under the ``kit.errors`` logger as every other rendered error."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

import kit.db_errors
import kit.errors
from kit.errors import install_error_handlers


class DriverError(Exception):
    def __init__(self, sqlstate: str | None = None) -> None:
        super().__init__("driver error")
        self.sqlstate = sqlstate


def _dbapi(sqlstate: str | None = None, *, invalidated: bool = False) -> DBAPIError:
    return DBAPIError("SELECT 1", {}, DriverError(sqlstate), connection_invalidated=invalidated)


async def _answer(error: Exception) -> httpx.Response:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/statement")
    async def statement() -> None:
        raise error

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/statement")


@pytest.mark.parametrize(
    ("error", "status", "slug"),
    [
        (OperationalError("SELECT 1", {}, DriverError()), 503, "unavailable"),
        (PoolTimeoutError(), 503, "unavailable"),
        (_dbapi(invalidated=True), 503, "unavailable"),
        (_dbapi("57P01"), 503, "unavailable"),  # the server is shutting down
        (_dbapi("53300"), 503, "unavailable"),  # too many connections
        (_dbapi("22001"), 400, "bad-value"),  # text too long for its column
        (_dbapi("42P01"), 500, "internal"),  # no such table: a bug
    ],
)
async def test_database_errors_are_problems(error, status, slug, caplog):
    with caplog.at_level(logging.WARNING, logger="kit.errors"):
        resp = await _answer(error)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["type"].endswith("/" + slug)
    assert ("retry-after" in resp.headers) == (status == 503)
    assert [r.name for r in caplog.records if r.name.startswith("kit.")] == ["kit.errors"]
    assert "SELECT" not in resp.text


def test_sqlstate_is_read_from_either_driver():
    assert kit.db_errors.sqlstate(_dbapi("40001")) == "40001"
    psycopg_style = DBAPIError("SELECT 1", {}, Exception("x"))
    psycopg_style.orig.pgcode = "55P03"  # type: ignore[union-attr]
    assert kit.db_errors.sqlstate(psycopg_style) == "55P03"
    assert kit.db_errors.unavailable_sqlstate("08006")
    assert not kit.db_errors.unavailable_sqlstate("22001")
    assert not kit.db_errors.unavailable_sqlstate(None)
