"""The authorization endpoint's pages: ``GET|POST /oauth/authorize``, and ``GET /oauth/callback``
where the organisation's sign-on sends the browser back (decision 0035). The flows are in
services/identity/signin.py and the HTML in services/identity/pages.py; this module reads the
query or the form, checks every POST against cross-site forgery, and sets the cookies and each
page's security headers.

Every POST needs both the double-submit token (the ``gs_csrf`` cookie's value in the form) and,
when the browser sends an Origin, the page's own origin; a refused one gets a 403 page. Cookies
are HttpOnly, SameSite=Lax (the app's redirect to this endpoint is a top-level navigation, which
carries them), limited to ``/oauth`` and Secure when the browser reached the suite over https.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from starlette.datastructures import FormData, QueryParams
from starlette.responses import HTMLResponse, RedirectResponse, Response

from kit.addresses import CLIENT_ADDRESS_HEADER, verified_client_address
from services.identity import credentials, pages, signin, throttle
from services.identity.deps import ExternalProviderDep, PasswordsDep, SessionDep, SettingsDep
from services.identity.oidc import ExternalProvider
from services.identity.settings import IdentitySettings
from services.identity.signin import CSRF_COOKIE, SESSION_COOKIE, SSO_COOKIE, AuthorizationRequest, SignedIn

router = APIRouter(prefix="/oauth", include_in_schema=False)
log = logging.getLogger("identity.oauth")

REFUSED = "The email or the password is not right."
LOCKED = "Too many failed sign-ins. Try again later."
SSO_FAILED = "The agency's sign-on did not sign you in. Try again, or sign in with your password."
SIGNED_OUT = "You are no longer signed in. Sign in again to continue."
PERSONA_REFUSED = "That persona cannot sign in to apps now."
STOPPED = "This sign-in cannot go on"
EXPIRED = "This form has expired"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _through_trusted_proxy(request: Request, settings: IdentitySettings) -> bool:
    """Whether the request came through the gateway, as services/identity/throttle.py decides
    whom to believe about the client: by the signed X-Client-Address when a secret is shared,
    else by the peer's address among the trusted proxies."""
    if settings.client_address_secret is not None:
        secret = settings.client_address_secret.get_secret_value()
        signed = request.headers.get(CLIENT_ADDRESS_HEADER)
        return verified_client_address(secret, signed, time.time()) is not None
    try:
        peer = ipaddress.ip_address(request.client.host if request.client else "")
    except ValueError:
        return False
    return any(peer in ipaddress.ip_network(net, strict=False) for net in settings.trusted_proxies)


def _https(request: Request, settings: IdentitySettings) -> bool:
    if request.url.scheme == "https":
        return True
    forwarded = request.headers.get("x-forwarded-proto", "").lower() == "https"
    return forwarded and _through_trusted_proxy(request, settings)


def _origin(url: str) -> str | None:
    """``scheme://host[:port]`` as a browser writes it in Origin (no default port)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    shown = "" if port is None or port == _DEFAULT_PORTS.get(parts.scheme) else f":{port}"
    return f"{parts.scheme.lower()}://{host.lower()}{shown}"


def _same_origin(request: Request, settings: IdentitySettings) -> bool:
    """No Origin (an older browser, a script), or the page's own: where the suite is published
    (``public_url``), or the address the request reached."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    own = {_origin(f"{request.url.scheme}://{request.url.netloc}")}
    if _https(request, settings):
        own.add(_origin(f"https://{request.url.netloc}"))
    if settings.public_url:
        own.add(_origin(settings.public_url))
    return origin.lower() in own - {None}


def _set_cookie(
    response: Response,
    request: Request,
    settings: IdentitySettings,
    name: str,
    value: str,
    max_age: int | None,
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=signin.COOKIE_PATH,
        secure=_https(request, settings),
        httponly=True,
        samesite="lax",
    )


def _forget_cookie(response: Response, request: Request, settings: IdentitySettings, name: str) -> None:
    response.delete_cookie(
        name, path=signin.COOKIE_PATH, secure=_https(request, settings), httponly=True, samesite="lax"
    )


def _error(status: int, title: str, message: str) -> HTMLResponse:
    return HTMLResponse(
        pages.error_page(title, message), status_code=status, headers=pages.security_headers()
    )


def _redirect(location: str) -> Response:
    return RedirectResponse(location, status_code=303, headers=pages.security_headers())


def _query(params: QueryParams) -> dict[str, list[str]]:
    return {name: params.getlist(name) for name in signin.FIELDS}


def _form_fields(form: FormData) -> dict[str, list[str]]:
    """The form's text fields (a file is no field of these pages)."""
    fields: dict[str, list[str]] = {}
    for name, value in form.multi_items():
        if isinstance(value, str):
            fields.setdefault(name, []).append(value)
    return fields


def _single(fields: Mapping[str, list[str]], name: str) -> str | None:
    values = fields.get(name, [])
    return values[0] if len(values) == 1 else None


def _bounded(params: QueryParams, name: str, limit: int) -> str | None:
    values = params.getlist(name)
    return values[0] if len(values) == 1 and len(values[0]) <= limit else None


def _csrf_token(request: Request) -> tuple[str, bool]:
    """The browser's CSRF token, or a new one (then True: the page sets the cookie)."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if cookie is not None and signin.csrf_valid(cookie):
        return cookie, False
    return signin.new_csrf(), True


@dataclass
class _Screen:
    """The pages of one checked authorization request, with what every one of them carries:
    the request and the CSRF token in hidden fields, and where its forms may lead."""

    request: Request
    settings: IdentitySettings
    provider: ExternalProvider | None
    auth: AuthorizationRequest
    csrf: str
    new_csrf: bool = False

    @property
    def sso(self) -> bool:
        return self.provider is not None and self.provider.code_flow

    def _fields(self) -> dict[str, str]:
        return {**self.auth.fields(), "csrf": self.csrf}

    def _headers(self) -> dict[str, str]:
        targets = [pages.source_of(self.auth.redirect_uri)]
        if self.sso:
            targets.append(pages.source_of(self.settings.oidc_authorization_url))
        return pages.security_headers(targets)

    def _page(self, content: str, status: int, headers: Mapping[str, str] | None = None) -> HTMLResponse:
        response = HTMLResponse(content, status_code=status, headers={**self._headers(), **(headers or {})})
        if self.new_csrf:
            _set_cookie(response, self.request, self.settings, CSRF_COOKIE, self.csrf, None)
        return response

    def signin(
        self,
        *,
        status: int = 200,
        error: str | None = None,
        email: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        shown = email if email and len(email) <= signin.EMAIL_MAX else ""
        content = pages.signin_page(
            self.auth.app.name, self._fields(), email=shown, error=error, sso=self.sso
        )
        return self._page(content, status, headers)

    async def consent(
        self, session: SessionDep, signed: SignedIn, *, status: int = 200, error: str | None = None
    ) -> HTMLResponse:
        choices = [
            pages.PersonaChoice(p.kind, p.display_name, p.handle)
            for p in await signin.offered(session, signed.account)
        ]
        content = pages.consent_page(
            self.auth.app.name,
            self._fields(),
            email=signed.account.email,
            scopes=self.auth.scope.split(),
            choices=choices,
            error=error,
        )
        return self._page(content, status)

    def redirect(self, location: str) -> Response:
        return RedirectResponse(location, status_code=303, headers=self._headers())

    def back_to_authorize(self) -> Response:
        """To ``GET /oauth/authorize`` with the same request (a relative reference, resolved
        against ``/oauth/authorize`` or ``/oauth/callback`` wherever the suite is published)."""
        return self.redirect("authorize?" + self.auth.query())


@router.get("/authorize")
async def authorize(
    request: Request, session: SessionDep, settings: SettingsDep, provider: ExternalProviderDep
) -> Response:
    """The sign-in page, or the consent page for a browser signed in already."""
    try:
        auth = await signin.parse_request(session, settings, _query(request.query_params))
    except signin.UnknownClient as exc:
        return _error(400, STOPPED, str(exc))
    except signin.AuthorizationError as exc:
        return _redirect(exc.location)
    screen = _Screen(request, settings, provider, auth, *_csrf_token(request))
    signed = None
    if auth.prompt != "login":
        signed = await signin.signed_in(session, request.cookies.get(SESSION_COOKIE))
    if signed is None:
        return screen.signin()
    return await screen.consent(session, signed)


@router.post("/authorize")
async def decide(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    passwords: PasswordsDep,
    provider: ExternalProviderDep,
) -> Response:
    """A form of the pages: ``action`` is signin, sso, consent, deny or signout."""
    fields = _form_fields(await request.form())
    csrf = _single(fields, "csrf")
    if not signin.csrf_matches(request.cookies.get(CSRF_COOKIE), csrf) or not _same_origin(request, settings):
        return _error(403, EXPIRED, "Go back to the app and start signing in again.")
    assert csrf is not None
    try:
        auth = await signin.parse_request(session, settings, fields)
    except signin.UnknownClient as exc:
        return _error(400, STOPPED, str(exc))
    except signin.AuthorizationError as exc:
        return _redirect(exc.location)
    screen = _Screen(request, settings, provider, auth, csrf)
    action = _single(fields, "action")
    current = request.cookies.get(SESSION_COOKIE)
    if action == "signin":
        return await _sign_in(request, session, settings, passwords, screen, fields)
    if action == "sso" and screen.sso:
        return _start_sso(request, settings, screen)
    if action == "signout":
        await signin.sign_out(session, current)
        response = screen.signin()
        _forget_cookie(response, request, settings, SESSION_COOKIE)
        return response
    if action == "deny":
        return screen.redirect(signin.deny(auth, settings))
    if action == "consent":
        signed = await signin.signed_in(session, current)
        if signed is None:
            return screen.signin(status=400, error=SIGNED_OUT)
        try:
            location = await signin.consent(session, settings, auth, signed, _single(fields, "persona"))
        except signin.PersonaRefused:
            return await screen.consent(session, signed, status=400, error=PERSONA_REFUSED)
        return screen.redirect(location)
    return _error(400, STOPPED, "The form asked for something these pages do not do.")


async def _sign_in(
    request: Request,
    session: SessionDep,
    settings: IdentitySettings,
    passwords: PasswordsDep,
    screen: _Screen,
    fields: Mapping[str, list[str]],
) -> Response:
    email = _single(fields, "email")
    try:
        cookie = await signin.sign_in(
            session,
            settings,
            passwords,
            address=throttle.client_address(request, settings),
            email=email,
            password=_single(fields, "password"),
            user_agent=request.headers.get("user-agent"),
            replacing=request.cookies.get(SESSION_COOKIE),
        )
    except credentials.Refused as refused:
        if refused.retry_after is not None:
            wait = {"Retry-After": str(refused.retry_after)}
            return screen.signin(status=429, error=LOCKED, email=email, headers=wait)
        return screen.signin(status=400, error=REFUSED, email=email)
    response = screen.back_to_authorize()
    _set_cookie(response, request, settings, SESSION_COOKIE, cookie, settings.signin_session_seconds)
    return response


def _start_sso(request: Request, settings: IdentitySettings, screen: _Screen) -> Response:
    try:
        started = signin.start_sso(settings, screen.auth)
    except signin.SsoFailed as exc:
        log.info("single sign-on not started: %s", exc)
        return screen.signin(status=400, error=SSO_FAILED)
    response = screen.redirect(started.location)
    _set_cookie(response, request, settings, SSO_COOKIE, started.cookie, signin.SSO_SECONDS)
    return response


@router.get("/callback")
async def callback(
    request: Request, session: SessionDep, settings: SettingsDep, provider: ExternalProviderDep
) -> Response:
    """The organisation's sign-on sends the browser back here: signed in, it goes on to the
    authorization request it started from; refused, it sees the sign-in page again."""
    saved = signin.read_sso(request.cookies.get(SSO_COOKIE))
    if saved is None or provider is None or not provider.code_flow:
        return _error(400, STOPPED, "The sign-on did not come back to a sign-in of this browser.")
    try:
        auth = await signin.parse_request(session, settings, signin.params_of(saved.query))
    except signin.UnknownClient as exc:
        response: Response = _error(400, STOPPED, str(exc))
    except signin.AuthorizationError as exc:
        response = _redirect(exc.location)
    else:
        response = await _finish_sso(request, session, settings, provider, auth, saved)
    _forget_cookie(response, request, settings, SSO_COOKIE)
    return response


async def _finish_sso(
    request: Request,
    session: SessionDep,
    settings: IdentitySettings,
    provider: ExternalProvider,
    auth: AuthorizationRequest,
    saved: signin.SsoSaved,
) -> Response:
    screen = _Screen(request, settings, provider, auth, *_csrf_token(request))
    params = request.query_params
    try:
        if "error" in params:
            raise signin.SsoFailed("the provider answered with an error")
        session_cookie = await signin.finish_sso(
            session,
            settings,
            provider,
            saved,
            code=_bounded(params, "code", 2000),
            state=_bounded(params, "state", 100),
            user_agent=request.headers.get("user-agent"),
        )
    except signin.SsoFailed as exc:
        log.info("single sign-on refused: %s", exc)
        return screen.signin(status=400, error=SSO_FAILED)
    response = screen.back_to_authorize()
    _set_cookie(response, request, settings, SESSION_COOKIE, session_cookie, settings.signin_session_seconds)
    return response
