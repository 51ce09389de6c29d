"""Access-token verification against identity's JWKS, and the FastAPI dependencies that use it.

Every check that RFC 8725 asks for is explicit here: a fixed algorithm list (never taken from
the token), a required ``kid`` that must name a published key, required ``exp``/``iat``/``sub``/
``aud``/``iss``/``jti``, a small leeway, and ``typ`` = ``at+jwt`` so that no other kind of token
passes as an access token. A token may not be issued in the future nor live longer than the
configured maximum. Any failure of any kind is a 401, never a 500.

Roles are exercised through the professional persona only: a personal context never holds one,
whatever its token says, since a personal persona seen using a role would be one of the few
role holders and so linkable to its professional twin.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol

import httpx
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from jose import jwt
from jose.exceptions import JOSEError

from kit.errors import Forbidden, Unauthorized

ALGORITHMS = ["RS256"]
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type, not a secret
MAX_TOKEN_LENGTH = 8192
DEFAULT_MAX_LIFETIME = 3600
Context = Literal["professional", "personal"]
CONTEXTS: tuple[Context, ...] = ("professional", "personal")

log = logging.getLogger("kit.tokens")


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

    def has_role(self, role: str) -> bool:
        return self.context != "personal" and role in self.roles


class KeySource(Protocol):
    async def key_for(self, kid: str) -> dict[str, Any] | None: ...


class StaticKeySource:
    """Keys held in process (identity verifies its own tokens this way)."""

    def __init__(self, jwks: dict[str, Any] | None = None) -> None:
        self.keys: dict[str, dict[str, Any]] = {}
        if jwks:
            self.update(jwks)

    def update(self, jwks: dict[str, Any]) -> None:
        self.keys = {k["kid"]: k for k in jwks.get("keys", []) if "kid" in k}

    async def key_for(self, kid: str) -> dict[str, Any] | None:
        return self.keys.get(kid)


class JWKSKeySource:
    """Identity's published keys, cached; an unknown ``kid`` triggers at most one refetch per
    ``min_refresh_seconds``; when identity is unreachable the cached keys keep working."""

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        cache_seconds: float = 300,
        min_refresh_seconds: float = 10,
    ) -> None:
        self.url = url
        self.client = client
        self.cache_seconds = cache_seconds
        self.min_refresh_seconds = min_refresh_seconds
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at = 0.0
        self._attempted_at = -1e9
        self._lock = asyncio.Lock()

    async def _refresh(self) -> None:
        async with self._lock:
            now = time.monotonic()
            if now - self._attempted_at < self.min_refresh_seconds:
                return
            self._attempted_at = now
            try:
                if self.client is not None:
                    resp = await self.client.get(self.url, timeout=5)
                else:
                    async with httpx.AsyncClient() as client:
                        resp = await client.get(self.url, timeout=5)
                resp.raise_for_status()
                keys = resp.json().get("keys", [])
                self._keys = {k["kid"]: k for k in keys if isinstance(k, dict) and "kid" in k}
                self._fetched_at = now
            except (httpx.HTTPError, ValueError, AttributeError, TypeError) as exc:
                log.warning("could not fetch JWKS from %s: %s", self.url, type(exc).__name__)

    async def key_for(self, kid: str) -> dict[str, Any] | None:
        stale = time.monotonic() - self._fetched_at > self.cache_seconds
        if stale or kid not in self._keys:
            await self._refresh()
        return self._keys.get(kid)


class TokenVerifier:
    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str,
        leeway: int = 30,
        max_lifetime: int = DEFAULT_MAX_LIFETIME,
        cache_size: int = 10_000,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.max_lifetime = max_lifetime
        self.cache_size = cache_size
        self._cache: dict[str, Principal] = {}

    async def verify(self, token: str) -> Principal:
        cached = self._cache.get(token)
        if cached is not None:
            if cached.expires_at + self.leeway >= time.time():
                return cached
            self._cache.pop(token, None)
        principal = await self._verify(token)
        if len(self._cache) >= self.cache_size:
            self._cache.clear()
        self._cache[token] = principal
        return principal

    def forget(self, token: str) -> None:
        self._cache.pop(token, None)

    async def _verify(self, token: str) -> Principal:
        if not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise Unauthorized("The bearer token is malformed.")
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in ALGORITHMS:
                raise Unauthorized("The token's algorithm is not accepted.")
            if header.get("typ") != ACCESS_TOKEN_TYPE:
                raise Unauthorized("The token is not an access token.")
            kid = header.get("kid")
            if not isinstance(kid, str) or not kid or len(kid) > 128:
                raise Unauthorized("The token names no known signing key.")
            key = await self.keys.key_for(kid)
            if key is None:
                raise Unauthorized("The token names no known signing key.")
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require_exp": True,
                    "require_iat": True,
                    "require_sub": True,
                    "require_aud": True,
                    "require_iss": True,
                    "require_jti": True,
                    "leeway": self.leeway,
                },
            )
            self._check_times(claims)
            return _principal(claims)
        except Unauthorized:
            raise
        except (JOSEError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise Unauthorized("The bearer token is not valid.") from exc

    def _check_times(self, claims: dict[str, Any]) -> None:
        issued_at, expires_at = float(claims["iat"]), float(claims["exp"])
        if issued_at > time.time() + self.leeway:
            raise Unauthorized("The token was issued in the future.")
        if expires_at - issued_at > self.max_lifetime:
            raise Unauthorized("The token lives longer than an access token may.")


def _principal(claims: dict[str, Any]) -> Principal:
    ctx = claims.get("ctx")
    scope = claims.get("scope", "")
    roles = claims.get("roles", [])
    if not isinstance(scope, str) or not isinstance(roles, list):
        raise ValueError("bad scope or roles")
    client_id = claims.get("client_id")
    persona_id = None
    if client_id is None:
        if ctx not in CONTEXTS:
            raise ValueError("bad ctx")
        persona_id = uuid.UUID(str(claims["sub"]))
    elif ctx is not None:
        raise ValueError("client token with a context")
    return Principal(
        subject=str(claims["sub"]),
        persona_id=persona_id,
        context=ctx,
        scopes=frozenset(scope.split()),
        roles=frozenset() if ctx == "personal" else frozenset(str(r) for r in roles),
        token_id=str(claims["jti"]),
        issued_at=float(claims["iat"]),
        expires_at=float(claims["exp"]),
        client_id=None if client_id is None else str(client_id),
    )


oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl="/api/v1/auth/token",
    auto_error=False,
    scheme_name="bearer",
    description="A persona-scoped access token from `POST /api/v1/auth/token`.",
)


def bearer_token(request: Request) -> str:
    """The token of the one ``Authorization: Bearer`` header (the scheme is case-insensitive)."""
    values = request.headers.getlist("authorization")
    if not values:
        raise Unauthorized("This operation needs a bearer token.", error=None)
    if len(values) > 1:
        raise Unauthorized("Send exactly one Authorization header.", error="invalid_request")
    scheme, _, token = values[0].strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("Use the Bearer authorization scheme.", error="invalid_request")
    return token


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
        now = time.monotonic()
        cached = self._cache.get(principal.persona_id)
        if cached is None or cached[0] < now:
            found = await self._lookup(request, principal.persona_id)
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

    async def _lookup(self, request: Request, persona_id: uuid.UUID) -> tuple[str, str] | None:
        """(context, status) from the replica, waiting up to ``wait`` seconds for a new one."""
        deadline = time.monotonic() + self.wait
        pause = 0.05
        while True:
            async with request.app.state.database.sessionmaker() as session:
                row = await session.get(self.replica, persona_id)
                if row is not None:
                    return str(row.context), str(row.status)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, 0.5)


async def current_principal(
    request: Request, _documented: Annotated[str | None, Depends(oauth2_scheme)] = None
) -> Principal:
    verifier: TokenVerifier = request.app.state.verifier
    principal = await verifier.verify(bearer_token(request))
    request.state.principal = principal
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
