"""The authorization endpoint's HTML pages (decision 0035): sign in, consent, and an error.

Plain strings built with ``html.escape``: three small pages do not need a template engine, and
every value that reaches a page (an app's name, a display name, a field of the authorization
request) goes through ``_text`` or ``_attr`` on its way in. The pages hold no script and load
nothing: the one stylesheet is inline, allowed by its hash in the Content-Security-Policy, so
they work with the network off and leave nothing for an injected script to run in. They are
plain forms, so they are keyboard operable; every field has a label and an error is announced
(``role="alert"``).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from urllib.parse import urlsplit

from services.identity.apps import SCOPE_DESCRIPTIONS

STYLE = (
    "body{margin:0;font-family:system-ui,sans-serif;line-height:1.5;background:#f3f4f6;color:#1b1f24}"
    "main{max-width:28rem;margin:3rem auto;padding:1.5rem 2rem;background:#fff;"
    "border:1px solid #c9ced6;border-radius:.5rem}"
    "h1{font-size:1.4rem;margin-top:0}"
    "label{display:block;margin:.8rem 0 .3rem;font-weight:600}"
    "fieldset label{display:inline;font-weight:normal}"
    "fieldset{border:1px solid #c9ced6;border-radius:.3rem;margin:1rem 0}"
    "input[type=email],input[type=password]{box-sizing:border-box;width:100%;padding:.5rem;font-size:1rem}"
    "button{margin:1rem .5rem 0 0;padding:.5rem 1.2rem;font-size:1rem}"
    "button.link{margin:0;padding:0;border:0;background:none;color:#1a5fb4;text-decoration:underline}"
    ":focus-visible{outline:3px solid #1a5fb4;outline-offset:2px}"
    "[role=alert]{padding:.5rem .8rem;border-left:4px solid #a51d2d;background:#fbeaec;color:#7a1020}"
    ".aside{margin-top:1.5rem;padding-top:1rem;border-top:1px solid #e1e4e8}"
)
STYLE_SOURCE = "'sha256-" + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode() + "'"
"""The stylesheet as a CSP source: its hash, so no other style (an injected one) applies."""

# What may stand in a CSP source list: an origin, or a scheme alone (a native app's
# private-use scheme). Anything else is left out rather than written into the header.
_ORIGIN_SOURCE = re.compile(r"^[a-z][a-z0-9+.\-]*://([A-Za-z0-9.\-]+|\[[0-9a-fA-F:.]+\])(:[0-9]{1,5})?$")
_SCHEME_SOURCE = re.compile(r"^[a-z][a-z0-9+.\-]*:$")


@dataclass(frozen=True, slots=True)
class PersonaChoice:
    """A persona the consent page offers: ``kind`` is the form's value."""

    kind: str
    display_name: str
    handle: str


def source_of(uri: str | None) -> str | None:
    """``uri`` as a CSP source: its origin (``https://app.example``), or its scheme alone
    (``gov.agency.app:``) for a URI that has no host. None when it cannot be written safely."""
    if not uri:
        return None
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not parts.netloc:
        source = f"{scheme}:"
        return source if _SCHEME_SOURCE.match(source) else None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    source = f"{scheme}://{host}" + (f":{port}" if port is not None else "")
    return source if _ORIGIN_SOURCE.match(source) else None


def security_headers(form_targets: Iterable[str | None] = ()) -> dict[str, str]:
    """The headers of every page. ``form-action`` lists where a form of the page may lead,
    redirects included (Chrome applies it to the redirect that follows a form's POST): the
    page's own origin, and the app's redirect URI or the sign-on provider when a form ends
    there. ``Referrer-Policy: same-origin`` sends no Referer to any other origin (the app, the
    provider); ``no-referrer`` would do the same but makes a browser send ``Origin: null`` with
    the page's own POSTs, which the Origin check must then refuse."""
    sources = ["'self'", *dict.fromkeys(s for s in form_targets if s)]
    policy = (
        f"default-src 'none'; style-src {STYLE_SOURCE}; form-action {' '.join(sources)}; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }


def _text(value: str) -> str:
    return escape(value, quote=False)


def _attr(value: str) -> str:
    return escape(value, quote=True)


def _document(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_text(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n{body}</main>\n</body>\n</html>\n"
    )


def _alert(message: str | None) -> str:
    return f'<p role="alert">{_text(message)}</p>\n' if message else ""


def _hidden(fields: Mapping[str, str]) -> str:
    return "".join(
        f'<input type="hidden" name="{_attr(name)}" value="{_attr(value)}">\n'
        for name, value in fields.items()
    )


def _form(fields: Mapping[str, str], inner: str, *, css: str = "") -> str:
    """A form that posts back to the authorization endpoint (a relative reference: the page is
    at ``…/oauth/authorize`` or ``…/oauth/callback``, wherever the suite is published)."""
    attribute = f' class="{css}"' if css else ""
    return f'<form method="post" action="authorize"{attribute}>\n{_hidden(fields)}{inner}</form>\n'


def signin_page(
    app_name: str, fields: Mapping[str, str], *, email: str = "", error: str | None = None, sso: bool = False
) -> str:
    """The sign-in page: email and password, and the organisation's sign-on when configured.
    ``fields`` are the hidden ones every form carries (the authorization request, the CSRF
    token)."""
    password_form = _form(
        fields,
        '<label for="email">Email</label>\n'
        f'<input id="email" name="email" type="email" autocomplete="username" required maxlength="254" '
        f'value="{_attr(email)}" autofocus>\n'
        '<label for="password">Password</label>\n'
        '<input id="password" name="password" type="password" autocomplete="current-password" required '
        'maxlength="1024">\n'
        '<button type="submit" name="action" value="signin">Sign in</button>\n',
    )
    sso_form = (
        _form(
            fields,
            '<button type="submit" name="action" value="sso">Continue with the agency\'s sign-on</button>\n',
            css="aside",
        )
        if sso
        else ""
    )
    body = (
        "<h1>Sign in</h1>\n"
        f"<p>to continue to <strong>{_text(app_name)}</strong></p>\n"
        f"{_alert(error)}{password_form}{sso_form}"
    )
    return _document("Sign in", body)


def _persona_option(choice: PersonaChoice, checked: bool) -> str:
    ident = f"persona-{choice.kind}"
    label = f"{choice.kind.capitalize()}: {choice.display_name} (@{choice.handle})"
    mark = " checked" if checked else ""
    return (
        f'<div><input type="radio" id="{_attr(ident)}" name="persona" value="{_attr(choice.kind)}" '
        f'required{mark}> <label for="{_attr(ident)}">{_text(label)}</label></div>\n'
    )


def consent_page(
    app_name: str,
    fields: Mapping[str, str],
    *,
    email: str,
    scopes: Sequence[str],
    choices: Sequence[PersonaChoice],
    error: str | None = None,
) -> str:
    """The consent page: what the app asks for, the persona it will act as (only those that
    may sign in now), Allow and Deny, and a way out for someone else at this browser."""
    asked = "".join(f"<li>{_text(SCOPE_DESCRIPTIONS.get(s, s))}</li>\n" for s in scopes)
    if choices:
        options = "".join(_persona_option(c, i == 0) for i, c in enumerate(choices))
        chooser = f"<fieldset>\n<legend>Use {_text(app_name)} as</legend>\n{options}</fieldset>\n"
        allow = '<button type="submit" name="action" value="consent">Allow</button>\n'
    else:
        chooser = _alert("None of your personas can sign in to apps now.")
        allow = ""
    decision = _form(
        fields,
        f"<p><strong>{_text(app_name)}</strong> will be able to:</p>\n<ul>\n{asked}</ul>\n"
        f"{chooser}{allow}"
        '<button type="submit" name="action" value="deny">Deny</button>\n',
    )
    sign_out = _form(
        fields,
        f"<p>Signed in as <strong>{_text(email)}</strong>. Not you? "
        '<button type="submit" name="action" value="signout" class="link">Sign out</button></p>\n',
        css="aside",
    )
    body = f"<h1>Allow {_text(app_name)}?</h1>\n{_alert(error)}{decision}{sign_out}"
    return _document(f"Allow {app_name}?", body)


def error_page(title: str, message: str) -> str:
    """A page that leads nowhere: the app or its redirect URI is unknown, or a form was forged
    or has expired. It never redirects, so it cannot be used to send someone elsewhere."""
    return _document(title, f"<h1>{_text(title)}</h1>\n{_alert(message)}")
