"""Who a request speaks for, and the FastAPI dependencies that tell the routes.

A verified access token (``kit.tokens``) speaks either for a persona in one context (its ``sub``
is the persona's id, its ``ctx`` the persona's kind) or for an integrator client (it carries a
``client_id`` and no ``ctx``). ``principal_from_claims`` turns the verified claims into a
``Principal``; claims that fit neither shape make the token invalid (a 401).

Roles are exercised through the professional persona only: a personal context never holds one,
whatever its token says, since a personal persona seen using a role would be one of the few
role holders and so linkable to its professional twin (decision 0018).

A persona's token an app got through the authorization-code flow names the app (claim ``azp``)
and carries the scopes granted at consent (``APP_SCOPES``); ``current_principal`` holds it to
them in every service, once, before any route runs (decision 0035).

In feed and groups, ``PersonaCheck`` also holds the token against the service's replica of
identity's personas: the persona must be known there, of the token's context, and active.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from domain.contexts import CONTEXTS, Context
from kit.errors import Forbidden, Unauthorized
from kit.tokens import TokenVerifier, VerifiedClaims, bearer_token

if TYPE_CHECKING:  # the gateway imports this module and no database library
    from kit.db import Database


MAX_APP_ID = 40
"""The longest app id a token may name (identity's ``App.id``)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified token speaks for: a persona in one context, or an integrator client."""

    subject: str
    persona_id: uuid.UUID | None
    context: Context | None
    scopes: frozenset[str]
    roles: frozenset[str]
    token_id: str
    issued_at: float
    expires_at: float
    client_id: str | None = None
    app_id: str | None = None
    """The app a persona's token was granted to (claim ``azp``); None for the password grant's."""

    def has_role(self, role: str) -> bool:
        return self.context != "personal" and role in self.roles

    def log_fields(self) -> dict[str, str | None]:
        """What the access log records of the caller: the persona, never the client."""
        return {"persona_id": str(self.persona_id) if self.persona_id else None}


def principal_from_claims(verified: VerifiedClaims) -> Principal:
    """The principal a verified token speaks for; ``ValueError`` when its claims fit neither a
    persona's token nor a client's (the verifier answers 401)."""
    claims = verified.claims
    ctx = claims.get("ctx")
    scope = claims.get("scope", "")
    roles = claims.get("roles", [])
    if not isinstance(scope, str) or not isinstance(roles, list):
        raise ValueError("bad scope or roles")
    client_id = claims.get("client_id")
    app_id = claims.get("azp")
    persona_id = None
    if client_id is None:
        if ctx not in CONTEXTS:
            raise ValueError("bad ctx")
        persona_id = uuid.UUID(verified.subject)
        if app_id is not None and (not isinstance(app_id, str) or not 0 < len(app_id) <= MAX_APP_ID):
            raise ValueError("bad azp")
    elif ctx is not None:
        raise ValueError("client token with a context")
    elif app_id is not None:
        raise ValueError("client token with an app")
    return Principal(
        subject=verified.subject,
        persona_id=persona_id,
        context=ctx,
        scopes=frozenset(scope.split()),
        roles=frozenset() if ctx == "personal" else frozenset(str(r) for r in roles),
        token_id=verified.token_id,
        issued_at=verified.issued_at,
        expires_at=verified.expires_at,
        client_id=None if client_id is None else str(client_id),
        app_id=app_id,
    )


APP_SCOPES = ("read", "write")
"""The scopes an app may ask for in the authorization-code flow (decision 0035): a token that
carries any of them is held to them (``read`` alone changes nothing). A token of the password
grant carries none and reaches whatever its persona may."""

READING_METHODS = frozenset({"GET", "HEAD"})
READING_POSTS = frozenset({"/api/v1/stream/tickets"})
"""POSTs that only read: opening a stream asks for a ticket, and a ``read`` token may read the
stream."""


def scope_allows(principal: Principal, method: str, path: str) -> bool:
    """Whether an app's token may make this request: reading (GET, HEAD and ``READING_POSTS``)
    needs ``read`` or ``write``, anything else ``write``. A persona's token that names no app and
    carries none of ``APP_SCOPES`` (the password grant's) is not held to them. A client's scopes
    are its own (``scim``, ``webhooks``), checked by the operations that take clients."""
    if principal.persona_id is None:
        return True
    if principal.app_id is None and principal.scopes.isdisjoint(APP_SCOPES):
        return True
    if method in READING_METHODS or path in READING_POSTS:
        return not principal.scopes.isdisjoint(APP_SCOPES)
    return "write" in principal.scopes


def insufficient_scope(principal: Principal) -> Forbidden:
    """403 for an app's token used beyond its scopes (RFC 6750 §3.1), naming the scope that
    would have done: ``write`` for a token that reads and was refused a change."""
    needed = "write" if "read" in principal.scopes else "read"
    return Forbidden(
        "The app was not granted this: the operation needs the {scope} scope.",
        params={"scope": needed},
        slug="insufficient-scope",
        headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{needed}"'},
    )


NOTICES_SCOPE = "notices"
"""The one scope a suspended persona may sign in with: it reads and appeals its notices at
moderation, and opens nothing else (decision 0032)."""


class PersonaCheck:
    """Accepts a persona's token only when the service's replica of identity's personas (fed by
    identity's events) knows the persona, in the token's context, and active: a token for a
    persona the service has never heard of, or whose ``ctx`` is not its persona's kind, is
    refused, and a suspended, deactivated or erased persona's tokens stop working once the
    event arrives rather than when they expire. One cached lookup per persona answers all three
    (for ``ttl`` seconds).

    A persona is created at identity and known here when its event arrives, about a second
    later; a token used in between waits up to ``wait`` seconds for it before it is refused.
    An unknown persona is never cached, so it is accepted as soon as the event has arrived."""

    def __init__(
        self, replica: Any, *, ttl: float = 30.0, wait: float = 0.0, max_entries: int = 100_000
    ) -> None:
        self.replica = replica
        self.ttl = ttl
        self.wait = wait
        self.max_entries = max_entries
        self._cache: dict[uuid.UUID, tuple[float, str, str]] = {}

    async def __call__(self, request: Request, principal: Principal) -> None:
        if principal.persona_id is None:
            return
        if NOTICES_SCOPE in principal.scopes:
            # Minted for a suspended persona: it stays refused here even after the hold is
            # lifted, until it expires.
            raise Unauthorized("A notices token only reads the persona's moderation notices.")
        now = time.monotonic()
        cached = self._cache.get(principal.persona_id)
        if cached is None or cached[0] < now:
            found = await self._lookup(request.app.state.database, principal.persona_id)
            if found is None:
                self._cache.pop(principal.persona_id, None)
                error = Unauthorized(
                    "This service does not know the token's persona; a persona just created "
                    "is known within seconds."
                )
                error.headers["Retry-After"] = "1"
                raise error
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            cached = (time.monotonic() + self.ttl, *found)
            self._cache[principal.persona_id] = cached
        _, context, status = cached
        if context != principal.context:
            raise Unauthorized("The token's context is not its persona's.")
        if status != "active":
            raise Unauthorized("The token's persona is no longer active.")

    async def _lookup(self, database: Database, persona_id: uuid.UUID) -> tuple[str, str] | None:
        """(context, status) from the replica, waiting up to ``wait`` seconds for a new one."""
        deadline = time.monotonic() + self.wait
        pause = 0.05
        while True:
            async with database.sessionmaker() as session:
                row = await session.get(self.replica, persona_id)
                if row is not None:
                    return str(row.context), str(row.status)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, 0.5)


oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl="/api/v1/auth/token",
    auto_error=False,
    scheme_name="bearer",
    description="A persona-scoped access token from `POST /api/v1/auth/token`.",
)
"""Declares the bearer scheme in the services' OpenAPI documents; ``bearer_token`` reads it."""


async def current_principal(
    request: Request, _documented: Annotated[str | None, Depends(oauth2_scheme)] = None
) -> Principal:
    """The request's verified principal, held to its app's scopes (``scope_allows``) and against
    the service's persona check if it has one, and left in ``request.state`` for the access log."""
    verifier: TokenVerifier[Principal] = request.app.state.verifier
    return await admit(request, await verifier.verify(bearer_token(request)))


async def admit(request: Request, principal: Principal) -> Principal:
    """``principal``, however it was established (a bearer token, feed's stream ticket), left in
    ``request.state`` for the access log, held to its app's scopes and against the service's
    persona check if it has one."""
    request.state.principal = principal
    if not scope_allows(principal, request.method, request.scope["path"]):
        raise insufficient_scope(principal)
    check = getattr(request.app.state, "principal_check", None)
    if check is not None:
        await check(request, principal)
    return principal


async def current_persona(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if principal.persona_id is None or principal.context is None:
        raise Forbidden("This operation needs a persona's token, not a client's.")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
CurrentPersona = Annotated[Principal, Depends(current_persona)]
