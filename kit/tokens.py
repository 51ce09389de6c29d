"""Access-token (JWT) verification against an issuer's published keys, and the bearer header.

Every check that RFC 8725 asks for is explicit here: a fixed algorithm list (never taken from
the token), a required ``kid`` that must name a published key, required ``exp``/``iat``/``sub``/
``aud``/``iss``/``jti``, a small leeway, and ``typ`` = ``at+jwt`` so that no other kind of token
passes as an access token. A token may not be issued in the future nor live longer than the
configured maximum. Any failure of any kind is a 401, never a 500.

What a verified token stands for is the caller's business: the verifier hands the checked
claims (``VerifiedClaims``) to the ``principal`` function it was given and caches its answer per
token until the token expires; a ``ValueError`` (or ``TypeError``, ``KeyError``) raised there
makes the token invalid, as any failed check does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import httpx
from fastapi import Request
from jose import jwt
from jose.exceptions import JOSEError

from kit.errors import Unauthorized

ALGORITHMS = ["RS256"]
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type, not a secret
MAX_TOKEN_LENGTH = 8192
DEFAULT_MAX_LIFETIME = 3600

P = TypeVar("P")

log = logging.getLogger("kit.tokens")


@dataclass(frozen=True, slots=True)
class VerifiedClaims:
    """The claims of a token that passed every check, with the registered ones it required."""

    subject: str
    token_id: str
    issued_at: float
    expires_at: float
    claims: Mapping[str, Any]


class KeySource(Protocol):
    async def key_for(self, kid: str) -> dict[str, Any] | None: ...


class JWKSKeySource:
    """An issuer's published keys, cached; an unknown ``kid`` triggers at most one refetch per
    ``min_refresh_seconds``; when the issuer is unreachable the cached keys keep working."""

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


class TokenVerifier(Generic[P]):
    """Verifies access tokens and answers what each stands for (``principal(claims)``), cached
    per token (at most ``cache_size`` of them) until the token expires."""

    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str,
        principal: Callable[[VerifiedClaims], P],
        leeway: int = 30,
        max_lifetime: int = DEFAULT_MAX_LIFETIME,
        cache_size: int = 10_000,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.principal = principal
        self.leeway = leeway
        self.max_lifetime = max_lifetime
        self.cache_size = cache_size
        self._cache: dict[str, tuple[float, P]] = {}

    async def verify(self, token: str) -> P:
        cached = self._cache.get(token)
        if cached is not None:
            expires_at, principal = cached
            if expires_at + self.leeway >= time.time():
                return principal
            self._cache.pop(token, None)
        claims = await self._verify(token)
        try:
            principal = self.principal(claims)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise Unauthorized("The bearer token is not valid.") from exc
        if len(self._cache) >= self.cache_size:
            self._cache.clear()
        self._cache[token] = (claims.expires_at, principal)
        return principal

    def forget(self, token: str) -> None:
        self._cache.pop(token, None)

    async def _verify(self, token: str) -> VerifiedClaims:
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
            verified = VerifiedClaims(
                subject=str(claims["sub"]),
                token_id=str(claims["jti"]),
                issued_at=float(claims["iat"]),
                expires_at=float(claims["exp"]),
                claims=claims,
            )
            self._check_times(verified)
            return verified
        except Unauthorized:
            raise
        except (JOSEError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise Unauthorized("The bearer token is not valid.") from exc

    def _check_times(self, verified: VerifiedClaims) -> None:
        if verified.issued_at > time.time() + self.leeway:
            raise Unauthorized("The token was issued in the future.")
        if verified.expires_at - verified.issued_at > self.max_lifetime:
            raise Unauthorized("The token lives longer than an access token may.")


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
