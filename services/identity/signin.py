"""Signing a browser in at the authorization endpoint (decision 0035; RFC 6749 §4.1, RFC 7636,
RFC 9207, RFC 9700): the authorization request and its checks, the browser's sign-in session,
the consent that issues a code, and single sign-on through the organisation's provider.

- **The request travels with the pages.** Every form carries the authorization request in
  hidden fields and every POST checks it again from the start, so nothing of it is kept on the
  server and a changed field is checked like a new request.
- **No redirect before the app is known.** An unknown or revoked app, or a redirect URI it has
  not registered, gets an error page: redirecting then would make the endpoint an open
  redirector (RFC 9700 §4.11). Every later error goes back to the app with ``error``, its
  ``state`` and ``iss`` (RFC 9207: the app can tell which issuer answered).
- **A sign-in session** is a random cookie value stored as its SHA-256 digest, so a second app
  signs in without the password again. It ends when it expires, is signed out, the account
  stops being active or its password changes.
- **The password** is checked by services/identity/credentials.py, as the token endpoint's
  password grant checks it: the same locks, and one answer for an unknown address, a wrong
  password and an account that is not active.
- **Consent** names the persona the code is for: only a persona that may sign in now (not held
  by moderation, its account active) is offered, and the one posted is checked again.

Free of HTTP: routes/oauth.py turns these outcomes into pages, redirects and cookies.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from urllib.parse import parse_qs, urlencode

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from kit.housekeeping import Retention
from kit.timeutil import as_utc, utcnow
from services.identity import apps, credentials, oidc, personas, tokens
from services.identity.models import Account, App, AuthorizationCode, Persona, SignInSession
from services.identity.oidc import ExternalProvider
from services.identity.passwords import Passwords
from services.identity.settings import IdentitySettings

SESSION_COOKIE = "gs_session"
CSRF_COOKIE = "gs_csrf"
SSO_COOKIE = "gs_sso"
COOKIE_PATH = "/oauth"
SSO_SECONDS = 600
SESSION_PREFIX = "gss_"
# The fields of an authorization request, each at most this long (``state`` as decision 0035
# says; the others as long as any valid value can be).
FIELDS = {
    "response_type": 20,
    "client_id": 40,
    "redirect_uri": 2000,
    "scope": 200,
    "state": 500,
    "code_challenge": 128,
    "code_challenge_method": 20,
    "prompt": 40,
}
# "login" asks for the password even with a session; the pages always ask for consent and
# always let the person choose the persona, so the other two are already met.
PROMPTS = ("login", "consent", "select_account")
EMAIL_MAX, PASSWORD_MAX = 254, 1024
_CSRF_LENGTH = 43
_COOKIE_MAX = 3800  # a browser keeps a cookie of up to 4096 bytes, name and attributes included

Params = Mapping[str, Sequence[str]]


class UnknownClient(Exception):
    """The app or its redirect URI is not known: an error page, never a redirect."""


class AuthorizationError(Exception):
    """An error the app is told about at ``location``, its redirect URI."""

    def __init__(self, location: str) -> None:
        super().__init__("authorization request refused")
        self.location = location


class PersonaRefused(Exception):
    """The persona posted at consent is not one of the account's that may sign in now."""


class SsoFailed(Exception):
    """Single sign-on did not end in an active account; the reason is for the log only."""


def answer(redirect_uri: str, issuer: str, state: str | None, **params: str) -> str:
    """``redirect_uri`` with ``params``, the request's ``state`` and our ``iss`` added to its
    query (RFC 6749 §4.1.2 keeps a query the URI already has)."""
    values = {**params, **({"state": state} if state else {}), "iss": issuer}
    base = redirect_uri.split("#", 1)[0]
    separator = "" if base.endswith(("?", "&")) else "&" if "?" in base else "?"
    return f"{base}{separator}{urlencode(values)}"


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A checked authorization request of ``app``; ``scope`` is what it is granted."""

    app: App
    redirect_uri: str
    state: str | None
    asked_scope: str | None
    scope: str
    code_challenge: str
    prompt: str | None

    def fields(self) -> dict[str, str]:
        """The request as the pages carry it, and as the sign-in sends the browser back to the
        endpoint with: without ``prompt``, which has been met by then."""
        fields = {
            "response_type": "code",
            "client_id": self.app.id,
            "redirect_uri": self.redirect_uri,
            "code_challenge": self.code_challenge,
            "code_challenge_method": "S256",
        }
        if self.asked_scope:
            fields["scope"] = self.asked_scope
        if self.state:
            fields["state"] = self.state
        return fields

    def query(self) -> str:
        return urlencode(self.fields())

    def answer(self, settings: IdentitySettings, **params: str) -> str:
        return answer(self.redirect_uri, settings.token_issuer, self.state, **params)


def params_of(query: str) -> dict[str, list[str]]:
    return parse_qs(query, keep_blank_values=True)


def _only(values: Sequence[str]) -> str | None:
    return values[0] if len(values) == 1 else None


async def parse_request(
    session: AsyncSession, settings: IdentitySettings, params: Params
) -> AuthorizationRequest:
    """The checked authorization request of ``params`` (a query or a form's fields). Raises
    ``UnknownClient`` before anything else when the app or the redirect URI is not known, then
    ``AuthorizationError`` for the first other fault."""
    app = await apps.active_app(session, _only(params.get("client_id", ())))
    if app is None:
        raise UnknownClient("This app is not known, or may no longer sign anyone in.")
    redirect_uri = _only(params.get("redirect_uri", ()))
    if redirect_uri is None or not apps.redirect_allowed(app, redirect_uri):
        raise UnknownClient("The app asked to send you back to an address it has not registered.")
    state = _only(params.get("state", ()))
    state = state if state and len(state) <= FIELDS["state"] else None

    def refuse(error: str, description: str) -> AuthorizationError:
        location = answer(
            redirect_uri, settings.token_issuer, state, error=error, error_description=description
        )
        return AuthorizationError(location)

    value: dict[str, str | None] = {}
    for name, limit in FIELDS.items():
        values = params.get(name, ())
        if len(values) > 1:
            raise refuse("invalid_request", f"{name} is given more than once.")
        if values and len(values[0]) > limit:
            raise refuse("invalid_request", f"{name} is longer than {limit} characters.")
        value[name] = values[0] if values and values[0] else None
    if value["response_type"] != "code":
        raise refuse("unsupported_response_type", "response_type must be code.")
    challenge = value["code_challenge"]
    if challenge is None or value["code_challenge_method"] != "S256":
        raise refuse("invalid_request", "PKCE is required: a code_challenge with code_challenge_method S256.")
    if not apps.CHALLENGE.match(challenge):
        raise refuse("invalid_request", "code_challenge must be the base64url SHA-256 of the verifier.")
    if value["prompt"] is not None and value["prompt"] not in PROMPTS:
        raise refuse("invalid_request", "prompt may be login, consent or select_account.")
    granted = apps.granted_scope(app, value["scope"])
    if granted is None:
        raise refuse("invalid_scope", "The app may not ask for that scope.")
    return AuthorizationRequest(
        app=app,
        redirect_uri=redirect_uri,
        state=state,
        asked_scope=value["scope"],
        scope=granted,
        code_challenge=challenge,
        prompt=value["prompt"],
    )


def deny(request: AuthorizationRequest, settings: IdentitySettings) -> str:
    return request.answer(settings, error="access_denied", error_description="The person did not allow it.")


# -- the CSRF token --------------------------------------------------------------------------


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


def csrf_valid(value: str | None) -> bool:
    return value is not None and len(value) == _CSRF_LENGTH


def csrf_matches(cookie: str | None, sent: str | None) -> bool:
    """The double-submit check: the form carries the value of the browser's own cookie, which
    another site can neither read nor set alongside its forged form."""
    if not csrf_valid(cookie) or sent is None:
        return False
    assert cookie is not None
    return hmac.compare_digest(cookie.encode(), sent.encode())


# -- the browser's sign-in session -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedIn:
    record: SignInSession
    account: Account


async def _record(session: AsyncSession, cookie: str | None) -> SignInSession | None:
    if not cookie or len(cookie) > 100 or not cookie.startswith(SESSION_PREFIX):
        return None
    record: SignInSession | None = await session.scalar(
        select(SignInSession).where(col(SignInSession.digest) == tokens.digest(cookie))
    )
    return record


async def signed_in(session: AsyncSession, cookie: str | None) -> SignedIn | None:
    """The live sign-in session of the ``cookie``: not revoked, not expired, its account
    active and its password not changed since."""
    record = await _record(session, cookie)
    if record is None or record.revoked_at is not None or as_utc(record.expires_at) <= utcnow():
        return None
    account = await session.get(Account, record.account_id)
    if account is None or account.status != "active":
        return None
    if as_utc(record.created_at) < as_utc(account.password_changed_at):
        return None
    return SignedIn(record, account)


def _open(session: AsyncSession, settings: IdentitySettings, account: Account, user_agent: str | None) -> str:
    """A new sign-in session of ``account`` (added; the caller commits); returns the cookie."""
    cookie = SESSION_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        SignInSession(
            digest=tokens.digest(cookie),
            account_id=account.id,
            user_agent=(user_agent or "")[:200] or None,
            created_at=now,
            expires_at=now + timedelta(seconds=settings.signin_session_seconds),
        )
    )
    return cookie


async def _revoke(session: AsyncSession, cookie: str | None) -> None:
    record = await _record(session, cookie)
    if record is not None and record.revoked_at is None:
        record.revoked_at = utcnow()


async def sign_in(
    session: AsyncSession,
    settings: IdentitySettings,
    passwords: Passwords,
    *,
    address: str,
    email: str | None,
    password: str | None,
    user_agent: str | None,
    replacing: str | None,
) -> str:
    """A sign-in session for the email and password tried from ``address``; the session of
    ``replacing`` (the browser's former cookie) ends. Returns the new cookie. Raises
    ``credentials.Refused``, whatever the reason, as the token endpoint's password grant."""
    if not email or not password or len(email) > EMAIL_MAX or len(password) > PASSWORD_MAX:
        raise credentials.Refused()
    account = await credentials.authenticate(
        session, settings, passwords, address=address, username=email, password=password
    )
    await _revoke(session, replacing)
    cookie = _open(session, settings, account, user_agent)
    await session.commit()
    return cookie


async def sign_out(session: AsyncSession, cookie: str | None) -> None:
    await _revoke(session, cookie)
    await session.commit()


# -- consent -----------------------------------------------------------------------------------


async def offered(session: AsyncSession, account: Account) -> list[Persona]:
    """The account's personas that may sign in to an app now, the professional one first."""
    rows = await session.scalars(select(Persona).where(col(Persona.account_id) == account.id))
    active = [p for p in rows if personas.effective_status(p) == "active"]
    return sorted(active, key=lambda p: p.kind != personas.PROFESSIONAL)


async def consent(
    session: AsyncSession,
    settings: IdentitySettings,
    request: AuthorizationRequest,
    signed: SignedIn,
    kind: str | None,
) -> str:
    """A code for the persona of ``kind`` that the signed-in person chose; returns where the
    browser goes with it. Raises ``PersonaRefused`` for a persona that is not offered."""
    if kind not in (personas.PROFESSIONAL, personas.PERSONAL):
        raise PersonaRefused()
    persona = await tokens.persona_of_kind(session, signed.account.id, kind)
    if persona is None or personas.effective_status(persona) != "active":
        raise PersonaRefused()
    code = apps.issue_code(
        session,
        settings,
        app=request.app,
        account_id=signed.account.id,
        persona_id=persona.id,
        redirect_uri=request.redirect_uri,
        code_challenge=request.code_challenge,
        scope=request.scope,
    )
    await session.commit()
    return request.answer(settings, code=code)


# -- single sign-on through the organisation's provider ----------------------------------------


@dataclass(frozen=True, slots=True)
class SsoStarted:
    """Where the browser goes (the provider), and the cookie that remembers this sign-in."""

    location: str
    cookie: str


@dataclass(frozen=True, slots=True)
class SsoSaved:
    """What the ``gs_sso`` cookie holds between the provider's page and its callback."""

    state: str
    nonce: str
    verifier: str
    query: str


def callback_uri(settings: IdentitySettings) -> str:
    """Our redirect URI at the provider: where the suite is published."""
    return (settings.public_url or settings.token_issuer).rstrip("/") + "/oauth/callback"


def start_sso(settings: IdentitySettings, request: AuthorizationRequest) -> SsoStarted:
    """Sends the browser to the provider (its own code flow with PKCE, a state and a nonce);
    the cookie keeps them and the authorization request to come back to. Raises ``SsoFailed``
    when that request is too long for a cookie."""
    assert settings.oidc_authorization_url and settings.oidc_audience
    saved = SsoSaved(
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        verifier=secrets.token_urlsafe(48),
        query=request.query(),
    )
    cookie = base64.urlsafe_b64encode(json.dumps(asdict(saved)).encode()).decode().rstrip("=")
    if len(cookie) > _COOKIE_MAX:
        raise SsoFailed("the authorization request is too long to keep in a cookie")
    params = {
        "response_type": "code",
        "client_id": settings.oidc_audience,
        "redirect_uri": callback_uri(settings),
        "scope": "openid email",
        "state": saved.state,
        "nonce": saved.nonce,
        "code_challenge": apps.challenge_of(saved.verifier),
        "code_challenge_method": "S256",
    }
    url = settings.oidc_authorization_url
    separator = "&" if "?" in url else "?"
    return SsoStarted(location=f"{url}{separator}{urlencode(params)}", cookie=cookie)


def read_sso(cookie: str | None) -> SsoSaved | None:
    """The ``gs_sso`` cookie's content, or None when it is missing or not one of ours."""
    if not cookie or len(cookie) > _COOKIE_MAX:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4)))
        saved = SsoSaved(**data)
    except (binascii.Error, ValueError, TypeError):
        return None
    fields = (saved.state, saved.nonce, saved.verifier, saved.query)
    return saved if all(isinstance(f, str) for f in fields) else None


async def finish_sso(
    session: AsyncSession,
    settings: IdentitySettings,
    provider: ExternalProvider,
    saved: SsoSaved,
    *,
    code: str | None,
    state: str | None,
    user_agent: str | None,
) -> str:
    """The provider sent the browser back with ``code`` and ``state``: the state must be this
    browser's, the code redeemed for an ID token with our nonce, and its linking claim name an
    active account, which signing in this way takes over (oidc.adopt). Returns the new sign-in
    session's cookie. Raises ``SsoFailed``."""
    if not code or not state or not hmac.compare_digest(state.encode(), saved.state.encode()):
        raise SsoFailed("the state is not this browser's")
    try:
        id_token = await provider.redeem(
            code=code, verifier=saved.verifier, redirect_uri=callback_uri(settings)
        )
        value = await provider.verify(id_token, nonce=saved.nonce)
    except oidc.ExternalTokenError as exc:
        raise SsoFailed(str(exc)) from exc
    account = await oidc.linked_account(session, settings, value)
    if account is None or account.status != "active":
        raise SsoFailed("no active account for the linking claim")
    await oidc.adopt(session, account)
    cookie = _open(session, settings, account, user_agent)
    await session.commit()
    return cookie


# A used code is kept a day past its expiry, so that a replay within that day still revokes the
# family its first use started; an ended session is of no use once expired.
USED_CODES_KEPT = timedelta(days=1)


def retention() -> list[Retention]:
    """Expired codes (a day late) and expired sign-in sessions, deleted by the housekeeper."""
    return [
        Retention(
            "expired authorization codes",
            AuthorizationCode.__table__,  # type: ignore[attr-defined]
            "expires_at",
            USED_CODES_KEPT,
        ),
        Retention(
            "expired sign-in sessions",
            SignInSession.__table__,  # type: ignore[attr-defined]
            "expires_at",
            timedelta(0),
        ),
    ]
