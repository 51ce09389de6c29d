"""Records' request dependencies: the settings, the session, the outbox, the HTTP client for
identity and feed, and who the caller is (an officer, or a persona asking for its own export),
so routes never read ``request.app.state`` themselves."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import Depends, Request

from domain.principal import Principal, current_principal
from kit.db import Database, SessionDep
from kit.errors import Forbidden
from kit.outbox import OutboxDep
from services.records.custodians import Identity
from services.records.disposition import Runs
from services.records.officers import Officer, officer
from services.records.settings import RecordsSettings

__all__ = [
    "CurrentOfficer",
    "CurrentPersona",
    "DatabaseDep",
    "HttpDep",
    "IdentityDep",
    "OutboxDep",
    "RunsDep",
    "SessionDep",
    "SettingsDep",
]


async def _settings(request: Request) -> RecordsSettings:
    settings: RecordsSettings = request.app.state.settings
    return settings


SettingsDep = Annotated[RecordsSettings, Depends(_settings)]


async def _database(request: Request) -> Database:
    """The database itself, for work that opens sessions of its own (a disposition run)."""
    database: Database = request.app.state.database
    return database


DatabaseDep = Annotated[Database, Depends(_database)]


async def _runs(request: Request) -> Runs:
    """The officers' disposition runs going on in this process."""
    runs: Runs = request.app.state.disposition_runs
    return runs


RunsDep = Annotated[Runs, Depends(_runs)]


async def _http(request: Request) -> httpx.AsyncClient:
    """The app's one HTTP client, for the calls to identity and feed."""
    client: httpx.AsyncClient = request.app.state.http_client
    return client


HttpDep = Annotated[httpx.AsyncClient, Depends(_http)]


async def _identity(client: HttpDep, settings: SettingsDep) -> Identity:
    return Identity(client, settings)


IdentityDep = Annotated[Identity, Depends(_identity)]


async def _current_persona(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if principal.persona_id is None or principal.context is None:
        raise Forbidden("This operation needs a persona's token, not a client's.")
    return principal


CurrentPersona = Annotated[Principal, Depends(_current_persona)]


async def _officer(session: SessionDep, caller: CurrentPersona) -> Officer:
    found = await officer(session, caller)
    if found is None:
        raise Forbidden("This needs a records officer's professional token.", slug="not-an-officer")
    return found


CurrentOfficer = Annotated[Officer, Depends(_officer)]
