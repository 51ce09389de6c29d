"""Moderation's request dependencies: the settings, the session, the outbox, and who the caller
is (a persona, a persona reading its notices, staff, an administrator), so routes never read
``request.app.state`` themselves.

A suspended persona signs in only with a ``notices`` token (decision 0032, "The persona
boundary"). ``NoticesCheck`` lets such a token past the app's persona check, and every
dependency but ``NoticesPersona`` refuses it (403 ``notices-only``): it reads the persona's
notices and appeals them, nothing else."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Query, Request

from domain.contexts import Context
from domain.principal import NOTICES_SCOPE, PersonaCheck, Principal, current_principal
from kit.db import SessionDep
from kit.errors import Forbidden, Unauthorized
from kit.outbox import OutboxDep
from services.moderation.lookup import Lookup
from services.moderation.queue import Filters
from services.moderation.schemas import Category, ReportStatus, TargetType
from services.moderation.settings import ModerationSettings
from services.moderation.staff import StaffMember, staff_member

__all__ = [
    "Admin",
    "CurrentPersona",
    "LookupDep",
    "NoticesCheck",
    "NoticesPersona",
    "OutboxDep",
    "QueueFilters",
    "SessionDep",
    "SettingsDep",
    "Staff",
    "StaffMember",
]

NOTICES_STATUSES = ("active", "suspended")


async def _settings(request: Request) -> ModerationSettings:
    settings: ModerationSettings = request.app.state.settings
    return settings


SettingsDep = Annotated[ModerationSettings, Depends(_settings)]


async def _lookup(request: Request, settings: SettingsDep) -> Lookup:
    """The calls to the content's owners, through the app's one HTTP client."""
    return Lookup(request.app.state.http_client, settings)


LookupDep = Annotated[Lookup, Depends(_lookup)]


def is_notices_token(principal: Principal) -> bool:
    return NOTICES_SCOPE in principal.scopes


class NoticesCheck(PersonaCheck):
    """The replica check of every persona token (``PersonaCheck``), except that a ``notices``
    token also passes while its persona is suspended. Such a token is read fresh from the
    replica each time, so that a persona deactivated or erased since is refused at once."""

    async def __call__(self, request: Request, principal: Principal) -> None:
        if principal.persona_id is None or not is_notices_token(principal):
            await super().__call__(request, principal)
            return
        found = await self._lookup(request.app.state.database, principal.persona_id)
        if found is None:
            raise Unauthorized("This service does not know the token's persona.")
        context, status = found
        if context != principal.context:
            raise Unauthorized("The token's context is not its persona's.")
        if status not in NOTICES_STATUSES:
            raise Unauthorized("The token's persona is no longer active.")


async def _current_persona(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """An active persona with a full token: a ``notices`` token is refused (403
    ``notices-only``, as identity refuses it; feed and groups refuse it on the persona's status)."""
    if principal.persona_id is None or principal.context is None:
        raise Forbidden("This operation needs a persona's token, not a client's.")
    if is_notices_token(principal):
        raise Forbidden("A notices token only reads the persona's notices.", slug="notices-only")
    return principal


async def _notices_persona(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """A persona reading its notices: a full token, or a ``notices`` one (checked above)."""
    if principal.persona_id is None or principal.context is None:
        raise Forbidden("This operation needs a persona's token, not a client's.")
    return principal


CurrentPersona = Annotated[Principal, Depends(_current_persona)]
NoticesPersona = Annotated[Principal, Depends(_notices_persona)]


async def _staff(session: SessionDep, caller: CurrentPersona) -> StaffMember:
    member = await staff_member(session, caller)
    if member is None:
        raise Forbidden("This needs a moderator's professional token.", slug="not-a-moderator")
    return member


async def _admin(session: SessionDep, caller: CurrentPersona) -> StaffMember:
    member = await staff_member(session, caller)
    if member is None or not member.is_admin:
        raise Forbidden("This needs an administrator's professional token.", slug="not-an-admin")
    return member


Staff = Annotated[StaffMember, Depends(_staff)]
Admin = Annotated[StaffMember, Depends(_admin)]


async def _queue_filters(
    caller: CurrentPersona,
    status: Annotated[ReportStatus | None, Query(description="Only reports with this status")] = None,
    category: Annotated[Category | None, Query(description="Only reports of this category")] = None,
    target_type: Annotated[
        TargetType | None, Query(description="Only reports on this kind of target")
    ] = None,
    context: Annotated[Context | None, Query(description="Only reports of this context")] = None,
    assignee: Annotated[
        Literal["me"] | None, Query(description="`me`: only the caller's assigned reports")
    ] = None,
) -> Filters:
    """The queue's filters, shared by the whole queue and a group's."""
    return Filters(
        status=status,
        category=category,
        target_type=target_type,
        context=context,
        assignee_id=caller.persona_id if assignee == "me" else None,
    )


QueueFilters = Annotated[Filters, Depends(_queue_filters)]
