"""Apps that sign people in through the authorization-code flow with PKCE (decision 0035): the
rules the authorization endpoint (routes/oauth.py) and the token endpoint (grants.py) share.

- A redirect URI matches a registered one exactly, character for character; the one exception
  is RFC 8252 §7.3: a registered loopback URI (``http://127.0.0.1/...`` or ``http://[::1]/...``)
  matches the same URI on any port, since a native app listens wherever the system lets it.
- PKCE is S256 only, for every app: ``plain`` is refused, and so is a missing challenge.
- An app asks for some of its own scopes (all of them when it names none): ``read`` reaches
  what the persona may read, ``write`` what it may change (domain/principal.py enforces both).
- A code is a random value shown once, stored as its SHA-256 digest, single use, and valid for
  ``authorization_code_seconds``; it is bound to the app, the redirect URI, the challenge, the
  account and the persona chosen at consent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from domain.principal import APP_SCOPES
from kit.defaults import utcnow
from services.identity.models import App, AuthorizationCode
from services.identity.settings import IdentitySettings
from services.identity.tokens import digest

CODE_PREFIX = "gsc_"
APP_KINDS = ("public", "confidential")
# RFC 7636 §4.1: 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"
VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
# the base64url SHA-256 of a verifier: 43 characters, no padding
CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")
LOOPBACK_HOSTS = ("127.0.0.1", "[::1]")
SCOPE_DESCRIPTIONS = {
    "read": "Read what this persona may read: timelines, posts, groups, people, notifications.",
    "write": "Act as this persona: post, comment, react, follow, join groups.",
}
assert set(SCOPE_DESCRIPTIONS) == set(APP_SCOPES)


async def active_app(session: AsyncSession, app_id: str | None) -> App | None:
    """The app of ``app_id`` when it exists and is not revoked."""
    if not app_id or len(app_id) > 40:
        return None
    app = await session.get(App, app_id)
    return app if app is not None and app.revoked_at is None else None


def _is_loopback(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and parts.netloc.rsplit(":", 1)[0] in LOOPBACK_HOSTS


def _without_port(uri: str) -> str:
    parts = urlsplit(uri)
    host = parts.netloc
    if (not host.endswith("]") and ":" in host) or (host.startswith("[") and "]:" in host):
        host = host.rsplit(":", 1)[0]
    return parts._replace(netloc=host).geturl()


def redirect_allowed(app: App, redirect_uri: str | None) -> bool:
    """Whether ``redirect_uri`` is one of the app's, exactly (or a registered loopback URI on
    another port)."""
    if not redirect_uri or len(redirect_uri) > 2000:
        return False
    if redirect_uri in app.redirect_uris:
        return True
    if _is_loopback(redirect_uri):
        bare = _without_port(redirect_uri)
        return any(_is_loopback(r) and _without_port(r) == bare for r in app.redirect_uris)
    return False


def granted_scope(app: App, scope: str | None) -> str | None:
    """The scopes granted for ``scope`` as asked (all the app's when empty), space-separated and
    sorted; None when it names a scope the app may not have."""
    asked = set((scope or "").split()) or set(app.scopes)
    if not asked <= set(app.scopes):
        return None
    return " ".join(sorted(asked))


def challenge_of(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier (RFC 7636 §4.2)."""
    sha = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(sha).decode("ascii").rstrip("=")


def verifier_matches(verifier: str | None, challenge: str) -> bool:
    if not verifier or not VERIFIER.match(verifier):
        return False
    return hmac.compare_digest(challenge_of(verifier), challenge)


def issue_code(
    session: AsyncSession,
    settings: IdentitySettings,
    *,
    app: App,
    account_id: uuid.UUID,
    persona_id: uuid.UUID,
    redirect_uri: str,
    code_challenge: str,
    scope: str,
) -> str:
    """A new code for ``app`` (added to the session; the caller commits)."""
    code = CODE_PREFIX + secrets.token_urlsafe(32)
    session.add(
        AuthorizationCode(
            digest=digest(code),
            app_id=app.id,
            account_id=account_id,
            persona_id=persona_id,
            redirect_uri=redirect_uri,
            code_challenge=code_challenge,
            scope=scope,
            expires_at=utcnow() + timedelta(seconds=settings.authorization_code_seconds),
        )
    )
    return code
