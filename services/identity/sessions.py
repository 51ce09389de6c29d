"""The owner's sign-ins, as ``/me/sessions`` lists them and ends them (decision 0035): browsers
signed in at the authorization endpoint (``SignInSession``), apps' grants and password sign-ins
(refresh families; a family is live while its newest token is unused, unrevoked and unexpired).

Which of them a token sees is the persona boundary (docs/boundary.md) applied to sign-ins:

- a professional persona's token, which shows the account anyway, sees the account's browser
  sessions, its password sign-ins (bound to no persona: they switch face) and the apps' grants
  bound to the professional persona;
- a personal persona's token sees only the apps' grants bound to the personal persona.

So an app holding a personal token learns nothing of the account, nor of the professional
persona's apps. Ending one is refused exactly as a missing one (404) outside that set. Times are
shown as days (``schemas.session_public``): the moment a browser signed in and the moment a
grant of the other persona began could otherwise be matched.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, false, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from kit.errors import NotFound
from kit.timeutil import utcnow
from services.identity import tokens
from services.identity.models import App, Persona, RefreshToken, SignInSession
from services.identity.schemas import SessionPublic, session_public


def _live_grants(persona: Persona) -> Any:
    """The newest token of every live family ``persona``'s token may see, with its app."""
    bound = and_(col(RefreshToken.app_id).is_not(None), col(RefreshToken.persona_id) == persona.id)
    visible = or_(col(RefreshToken.app_id).is_(None), bound) if persona.kind == "professional" else bound
    return (
        select(RefreshToken, App)
        .outerjoin(App, col(App.id) == col(RefreshToken.app_id))
        .where(
            col(RefreshToken.account_id) == persona.account_id,
            col(RefreshToken.used_at).is_(None),
            col(RefreshToken.revoked_at).is_(None),
            col(RefreshToken.expires_at) > utcnow(),
            or_(col(RefreshToken.app_id).is_(None), col(App.revoked_at).is_(None)),
            visible,
        )
    )


def _live_browsers(persona: Persona) -> Any:
    """The account's live browser sessions: none for a personal persona's token."""
    return select(SignInSession).where(
        col(SignInSession.account_id) == persona.account_id,
        col(SignInSession.revoked_at).is_(None),
        col(SignInSession.expires_at) > utcnow(),
        true() if persona.kind == "professional" else false(),
    )


async def _since(session: AsyncSession, family_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """When each family began: its first token."""
    if not family_ids:
        return {}
    rows = await session.execute(
        select(col(RefreshToken.family_id), func.min(col(RefreshToken.created_at)))
        .where(col(RefreshToken.family_id).in_(family_ids))
        .group_by(col(RefreshToken.family_id))
    )
    return {row[0]: row[1] for row in rows.all()}


async def visible(
    session: AsyncSession, persona: Persona, *, after: uuid.UUID | None, limit: int
) -> list[SessionPublic]:
    """Up to ``limit + 1`` of the sessions ``persona``'s token sees, in id order after ``after``
    (browser sessions and families have random ids of one kind, so one order holds both)."""
    grants = _live_grants(persona)
    browsers = _live_browsers(persona)
    if after is not None:
        grants = grants.where(col(RefreshToken.family_id) > after)
        browsers = browsers.where(col(SignInSession.id) > after)
    heads = (await session.execute(grants.order_by(col(RefreshToken.family_id)).limit(limit + 1))).all()
    signed_in = (await session.scalars(browsers.order_by(col(SignInSession.id)).limit(limit + 1))).all()
    since = await _since(session, [head.family_id for head, _ in heads])
    items = [
        session_public(
            id=head.family_id,
            kind="app" if head.app_id is not None else "password",
            app=app,
            scope=head.scope,
            since=since.get(head.family_id, head.created_at),
            expires_at=head.expires_at,
        )
        for head, app in heads
    ] + [
        session_public(
            id=browser.id,
            kind="browser",
            app=None,
            scope="",
            since=browser.created_at,
            expires_at=browser.expires_at,
        )
        for browser in signed_in
    ]
    return sorted(items, key=lambda item: item.id)[: limit + 1]


async def end(session: AsyncSession, persona: Persona, session_id: uuid.UUID) -> None:
    """Signs the browser out, or revokes the grant, when ``persona``'s token sees it; a missing
    one and one it may not see are both 404."""
    browser = await session.scalar(_live_browsers(persona).where(col(SignInSession.id) == session_id))
    if browser is not None:
        browser.revoked_at = utcnow()
        await session.commit()
        return
    head = (
        await session.execute(_live_grants(persona).where(col(RefreshToken.family_id) == session_id))
    ).first()
    if head is None:
        raise NotFound("No session with this id.")
    await tokens.revoke_family(session, session_id)
    await session.commit()
