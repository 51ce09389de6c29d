"""Identity's request dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from kit.db import SessionDep
from kit.errors import Unauthorized
from kit.timeutil import as_utc
from kit.tokens import CurrentPersona, Principal
from services.identity.keys import KeyRing
from services.identity.models import Account, Persona
from services.identity.passwords import Passwords
from services.identity.settings import IdentitySettings


def _settings(request: Request) -> IdentitySettings:
    settings: IdentitySettings = request.app.state.settings
    return settings


def _keys(request: Request) -> KeyRing:
    keys: KeyRing = request.app.state.keys
    return keys


def _passwords(request: Request) -> Passwords:
    passwords: Passwords = request.app.state.passwords
    return passwords


SettingsDep = Annotated[IdentitySettings, Depends(_settings)]
KeysDep = Annotated[KeyRing, Depends(_keys)]
PasswordsDep = Annotated[Passwords, Depends(_passwords)]


@dataclass
class Caller:
    principal: Principal
    persona: Persona
    account: Account

    def holds_role(self, role: str) -> bool:
        """The account holds ``role`` and uses it through its professional persona, the only
        one a role is exercised through."""
        return (
            self.persona.kind == "professional"
            and role in self.account.roles
            and self.principal.has_role(role)
        )


async def _caller(principal: CurrentPersona, session: SessionDep) -> Caller:
    """The token's persona and account, both still active, the token newer than the last
    password change: identity checks its own state on every request."""
    persona = await session.get(Persona, principal.persona_id)
    if persona is None or persona.status != "active" or persona.kind != principal.context:
        raise Unauthorized("The token's persona no longer exists.")
    account = await session.get(Account, persona.account_id)
    if account is None or account.status != "active":
        raise Unauthorized("The account is not active.")
    if principal.issued_at + 1 < as_utc(account.password_changed_at).timestamp():
        raise Unauthorized("The token was issued before the password was changed.")
    return Caller(principal, persona, account)


CallerDep = Annotated[Caller, Depends(_caller)]
