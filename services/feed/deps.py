"""Feed's request dependencies, all in one place: the database session, the caller's persona,
the outbox, the settings, the database itself (for work that opens sessions of its own, such as
an event stream) and the per-process count of open event streams. Routes take what they need
from here and never read the application's state themselves."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from domain.principal import CurrentPersona
from kit.db import Database, SessionDep
from kit.outbox import OutboxDep
from services.feed.settings import FeedSettings
from services.feed.streams import StreamSlots, stream_slots

__all__ = [
    "CurrentPersona",
    "DatabaseDep",
    "OutboxDep",
    "SessionDep",
    "SettingsDep",
    "StreamSlotsDep",
]


def settings_of(request: Request) -> FeedSettings:
    """The settings, also for the lean home route, which takes no dependencies (decision 0013)."""
    settings: FeedSettings = request.app.state.settings
    return settings


SettingsDep = Annotated[FeedSettings, Depends(settings_of)]


def database_of(request: Request) -> Database:
    """The database, also for the lean home route (decision 0013)."""
    database: Database = request.app.state.database
    return database


DatabaseDep = Annotated[Database, Depends(database_of)]


def _stream_slots(request: Request, settings: SettingsDep) -> StreamSlots:
    return stream_slots(request.app, settings.stream_max_per_persona)


StreamSlotsDep = Annotated[StreamSlots, Depends(_stream_slots)]
