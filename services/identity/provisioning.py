"""HR provisioning through SCIM: a provisioned user is an account with its professional
persona (services/identity/scim.py maps the resource). Creating one makes them or adopts a
self-registered account of the same address; replacing and patching one apply HR's resource to
both; deprovisioning deactivates the account. Each flow commits."""

from __future__ import annotations

import uuid
from typing import Any, NamedTuple

from scim2_models import Context, ListResponse, SearchRequest, User
from scim2_models.path import CompareOperator, Comparison
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from kit.ids import new_id
from kit.outbox import Outbox
from kit.timeutil import utcnow
from services.identity import accounts, personas, scim, verification
from services.identity.models import Account, Persona, ScimUser
from services.identity.passwords import unusable
from services.identity.scim import ScimError, UserResource
from services.identity.settings import IdentitySettings

# Above this many users, a filter that the index cannot narrow is refused, not run in memory.
MAX_IN_MEMORY_FILTER = 50_000


class Provisioned(NamedTuple):
    """A provisioned user: its SCIM row, its account and its professional persona."""

    row: ScimUser
    account: Account
    persona: Persona


async def load(session: AsyncSession, user_id: str) -> Provisioned:
    """The user the id names, or a SCIM 404."""
    try:
        account_id = uuid.UUID(user_id)
    except ValueError:
        raise ScimError(404, "No such user.") from None
    row = await session.get(ScimUser, account_id)
    account = await session.get(Account, account_id)
    if row is None or account is None:
        raise ScimError(404, "No such user.")
    persona = await session.scalar(
        select(Persona).where(col(Persona.account_id) == account.id, col(Persona.kind) == "professional")
    )
    assert persona is not None
    return Provisioned(row, account, persona)


def render(row: ScimUser, account: Account, base_url: str) -> UserResource:
    """The user as SCIM shows it: HR's resource with its id, meta and the account's status."""
    return scim.render(
        row.resource,
        account.id,
        account.status == "active",
        row.created_at,
        row.updated_at,
        row.version,
        base_url,
    )


async def _apply(
    session: AsyncSession,
    outbox: Outbox,
    settings: IdentitySettings,
    resource: UserResource,
    row: ScimUser,
    account: Account,
    persona: Persona,
) -> None:
    email = scim.email_of(resource, account.id)
    user_name = (resource.user_name or "").strip().lower()
    if not user_name:
        raise ScimError(400, "userName is required.", "invalidValue")
    clash = await session.scalar(
        select(col(ScimUser.account_id)).where(
            col(ScimUser.user_name) == user_name, col(ScimUser.account_id) != account.id
        )
    )
    other = await session.scalar(
        select(col(Account.id)).where(col(Account.email) == email, col(Account.id) != account.id)
    )
    if clash is not None or other is not None:
        raise ScimError(409, "userName or email is already taken.", "uniqueness")
    row.user_name = user_name
    row.external_id = resource.external_id
    row.resource = scim.stored(resource)
    row.updated_at = utcnow()
    account.email = email
    account.external_id = resource.external_id
    account.provisioned = True
    account.updated_at = utcnow()
    changed = False
    for field, value in scim.persona_fields(resource).items():
        if getattr(persona, field) != value:
            setattr(persona, field, value)
            changed = True
    if changed:
        personas.touch(persona)
    wanted = account.status if resource.active is None else ("active" if resource.active else "suspended")
    if account.status != wanted and account.status != "deactivated":
        await accounts.set_status(session, outbox, settings, account, wanted)
    elif changed:
        await outbox.publish(session, "persona.updated", str(persona.id), personas.event_data(persona))


async def create(
    session: AsyncSession, outbox: Outbox, settings: IdentitySettings, resource: UserResource
) -> tuple[ScimUser, Account]:
    """Creates the account and its professional persona, or adopts a self-registered account
    with the same email. Provisioned people sign in through single sign-on; the account gets
    an unusable random password. An adopted account keeps its password only if its owner proved
    the address; pending (unconfirmed) registrations of the address are dropped."""
    account_id = new_id()
    email = scim.email_of(resource, account_id)
    user_name = (resource.user_name or "").strip().lower()
    if await session.scalar(select(col(ScimUser.account_id)).where(col(ScimUser.user_name) == user_name)):
        raise ScimError(409, "A user with this userName exists.", "uniqueness")
    account = await session.scalar(select(Account).where(col(Account.email) == email))
    if account is not None and await session.get(ScimUser, account.id) is not None:
        raise ScimError(409, "A user with this email exists.", "uniqueness")
    if account is None:
        account = Account(id=account_id, email=email, password_hash=unusable())
        fields = scim.persona_fields(resource)
        persona = Persona(
            account_id=account.id,
            kind="professional",
            handle=await scim.free_handle(session, user_name or email),
            **fields,
        )
        session.add(account)
        session.add(persona)
        await session.flush()
        await outbox.publish(session, "persona.created", str(persona.id), personas.event_data(persona))
    else:
        found = await session.scalar(
            select(Persona).where(col(Persona.account_id) == account.id, col(Persona.kind) == "professional")
        )
        assert found is not None
        persona = found
        await verification.drop_unproved_credentials(session, account)
    await verification.forget(session, email)
    row = ScimUser(account_id=account.id, user_name=user_name)
    session.add(row)
    await _apply(session, outbox, settings, resource, row, account, persona)
    await session.commit()
    return row, account


async def replace(
    session: AsyncSession,
    outbox: Outbox,
    settings: IdentitySettings,
    user: Provisioned,
    resource: UserResource,
) -> None:
    """HR's new resource for the user (a PUT, or a PATCH once applied): a new version."""
    user.row.version += 1
    await _apply(session, outbox, settings, resource, user.row, user.account, user.persona)
    await session.commit()


async def deprovision(
    session: AsyncSession, outbox: Outbox, settings: IdentitySettings, user: Provisioned
) -> None:
    """Deactivates the account (content handling follows the identity rules) and removes it
    from SCIM: a later GET is a 404."""
    if user.account.status != "deactivated":
        await accounts.set_status(session, outbox, settings, user.account, "deactivated")
    await session.delete(user.row)
    await session.commit()


def _indexed_lookup(params: SearchRequest[UserResource]) -> ColumnElement[bool] | None:
    """A SQL condition for the filters provisioning clients send before every create,
    `userName eq "x"` and `externalId eq "x"`; the full filter still runs on what it finds."""
    if params.filter is None:
        return None
    ast = params.filter.ast
    if not isinstance(ast, Comparison) or ast.op != CompareOperator.eq or not isinstance(ast.value, str):
        return None
    path = ast.attr_path
    if path.sub_attr is not None or path.uri not in (None, User.__schema__):
        return None
    if path.attr.lower() == "username":
        return col(ScimUser.user_name) == ast.value.strip().lower()  # userName is not case-exact
    if path.attr.lower() == "externalid":
        return col(ScimUser.external_id) == ast.value
    return None


async def search(session: AsyncSession, params: SearchRequest[UserResource], base_url: str) -> dict[str, Any]:
    """The SCIM ListResponse of the users that match ``params``: filtered, sorted (by id unless
    asked otherwise) and paged."""
    query = select(ScimUser, Account).join(Account, col(Account.id) == ScimUser.account_id)
    narrowed = _indexed_lookup(params)
    if narrowed is not None:
        query = query.where(narrowed)  # HR's "does this user exist?" runs on the index
    else:
        total_rows = await session.scalar(select(func.count()).select_from(ScimUser))
        if (total_rows or 0) > MAX_IN_MEMORY_FILTER:
            raise ScimError(400, "Too many users to filter in memory; narrow the query.", "tooMany")
    rows = (await session.execute(query)).all()
    resources = [render(row, account, base_url) for row, account in rows]
    if params.filter is not None:
        resources = [r for r in resources if params.filter.match(r)]
    if params.sort_by:
        resources = params.sort(resources)
    else:
        resources.sort(key=lambda r: str(r.id))
    count = scim.MAX_RESULTS if params.count is None else min(params.count, scim.MAX_RESULTS)
    start = params.start_index_0 or 0
    page = resources[start : start + count]
    listing = ListResponse[UserResource](
        total_results=len(resources), start_index=start + 1, items_per_page=len(page), resources=page
    )
    payload: dict[str, Any] = listing.model_dump(scim_ctx=Context.SEARCH_RESPONSE, response_parameters=params)
    return payload
