"""The database's errors as problem+json: a database that cannot take statements now is a 503
with Retry-After, a value it cannot store is a 400, anything else it raises an unexpected 500.

Apart from ``kit.errors`` so that a process without a database (the gateway) never imports
SQLAlchemy; ``kit.errors.install_error_handlers`` installs these in every process that uses it.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from kit.errors import problem_response, unexpected_error_handler

# The logger every rendered error reports to, whichever module renders it.
log = logging.getLogger("kit.errors")

# Data exceptions a request's values cause: a value asyncpg cannot encode for its parameter's
# type (22000, such as an int past INTEGER), text too long (22001), a number out of range
# (22003), a bad or overflowing date (22007, 22008), a NUL or untranslatable character (22021,
# 22P05). Others of the class, such as a division by zero, are bugs and stay 500s.
_VALUE_SQLSTATES = frozenset({"22000", "22001", "22003", "22007", "22008", "22021", "22P05"})

# SQLSTATEs of a server that cannot take the statement now: connection exceptions (08…),
# insufficient resources (53…, such as too many connections), operator intervention (57P…,
# such as starting up or shutting down).
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P")


def unavailable_sqlstate(sqlstate: object) -> bool:
    """Whether a PostgreSQL error code says the server cannot take statements now."""
    return isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES)


def sqlstate(exc: DBAPIError) -> object:
    """The PostgreSQL error code behind a driver's error (asyncpg's or psycopg's), if any."""
    return getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)


async def database_unavailable_handler(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", type(exc).__name__)
    return problem_response(
        request,
        503,
        "Service Unavailable",
        "The database is unavailable; try again shortly.",
        slug="unavailable",
        headers={"Retry-After": "5"},
    )


async def database_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """A statement that failed because its connection died (a database restart, a failover)
    is the database being unavailable, not a bug; one whose values the database cannot take
    came with the request (the rules in ``kit.inputs`` stop them first, this is the last
    stop); anything else is unexpected."""
    if isinstance(exc, DBAPIError) and (exc.connection_invalidated or unavailable_sqlstate(sqlstate(exc))):
        return await database_unavailable_handler(request, exc)
    if isinstance(exc, DBAPIError) and sqlstate(exc) in _VALUE_SQLSTATES:
        log.warning("value refused by the database: SQLSTATE %s", sqlstate(exc))
        return problem_response(
            request,
            400,
            "Bad Request",
            "The request holds a value that cannot be stored or compared.",
            slug="bad-value",
        )
    return await unexpected_error_handler(request, exc)


def install_database_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(OperationalError, database_unavailable_handler)
    app.add_exception_handler(PoolTimeoutError, database_unavailable_handler)
    app.add_exception_handler(DBAPIError, database_error_handler)
