"""``/scim/v2``: HR provisioning of accounts and their professional personas."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from scim2_models import Context, ListResponse, PatchOp, SearchRequest, User
from scim2_models.path import CompareOperator, Comparison
from sqlalchemy import ColumnElement, func, select
from sqlmodel import col

from kit.db import SessionDep
from kit.errors import Unauthorized
from kit.ids import new_id
from kit.outbox import OutboxDep
from kit.timeutil import utcnow
from kit.tokens import Principal, TokenVerifier, bearer_token
from services.identity import accounts, clients, personas, scim, verification
from services.identity.deps import SettingsDep
from services.identity.models import Account, Persona, ScimUser
from services.identity.passwords import unusable
from services.identity.scim import ScimError, UserResource, scim_json

MAX_BODY_JSON_DEPTH = 32


async def _scim_client(request: Request) -> Principal:
    verifier: TokenVerifier = request.app.state.verifier
    try:
        principal = await verifier.verify(bearer_token(request))
    except Unauthorized as exc:
        raise ScimError(401, exc.detail) from None
    if principal.client_id is None or "scim" not in principal.scopes:
        raise ScimError(403, "SCIM needs an integrator client's token with the scim scope.")
    async with request.app.state.database.read_sessionmaker() as session:
        if not await clients.is_active(session, principal):
            raise ScimError(401, "The client has been revoked.")
    request.state.principal = principal
    return principal


SCIM_OBJECT = {"schema": {"type": "object", "description": "A SCIM message (RFC 7643/7644)."}}
SCIM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {scim.SCIM_JSON: SCIM_OBJECT}}
    for code, text in {
        200: "A SCIM resource or list",
        400: "SCIM error",
        401: "No valid token",
        403: "Not a SCIM client",
        404: "No such user",
    }.items()
}


class ScimJSONResponse(JSONResponse):
    media_type = scim.SCIM_JSON


router = APIRouter(
    prefix="/scim/v2",
    tags=["provisioning"],
    dependencies=[Depends(_scim_client)],
    default_response_class=ScimJSONResponse,
)


def _base(request: Request) -> str:
    """Where SCIM's resources are, as clients name them: the configured public address, never
    the request's (behind the gateway that is identity's own, and a Host header is the client's)."""
    public: str | None = request.app.state.settings.public_url
    return (public or "").rstrip("/") + "/scim/v2"


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (ValueError, RecursionError):
        raise ScimError(400, "The body is not valid JSON.", "invalidSyntax") from None


@router.get("/ServiceProviderConfig", summary="What this SCIM service supports", responses=SCIM_RESPONSES)
async def get_service_provider_config(request: Request) -> JSONResponse:
    return scim_json(scim.service_provider_config(_base(request)))


def _list(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": len(resources),
        "startIndex": 1,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


@router.get("/ResourceTypes", summary="SCIM resource types", responses=SCIM_RESPONSES)
async def list_resource_types(request: Request) -> JSONResponse:
    return scim_json(_list(scim.resource_types(_base(request))))


@router.get("/ResourceTypes/{name}", summary="One SCIM resource type", responses=SCIM_RESPONSES)
async def get_resource_type(name: str, request: Request) -> JSONResponse:
    found = [r for r in scim.resource_types(_base(request)) if r["id"] == name]
    if not found:
        raise ScimError(404, "No such resource type.")
    return scim_json(found[0])


@router.get("/Schemas", summary="SCIM schemas", responses=SCIM_RESPONSES)
async def list_schemas(request: Request) -> JSONResponse:
    return scim_json(_list(scim.schemas(_base(request))))


@router.get("/Schemas/{schema_id}", summary="One SCIM schema", responses=SCIM_RESPONSES)
async def get_schema(schema_id: str, request: Request) -> JSONResponse:
    found = [s for s in scim.schemas(_base(request)) if s["id"] == schema_id]
    if not found:
        raise ScimError(404, "No such schema.")
    return scim_json(found[0])


async def _load(session: SessionDep, user_id: str) -> tuple[ScimUser, Account, Persona]:
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
    return row, account, persona


def _render(request: Request, row: ScimUser, account: Account) -> UserResource:
    return scim.render(
        row.resource,
        account.id,
        account.status == "active",
        row.created_at,
        row.updated_at,
        row.version,
        _base(request),
    )


def _response(
    request: Request,
    resource: UserResource,
    status: int = 200,
    params: SearchRequest[UserResource] | None = None,
) -> JSONResponse:
    payload = resource.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=params)
    assert resource.meta is not None
    headers = {"Location": str(resource.meta.location), "ETag": str(resource.meta.version)}
    return scim_json(payload, status, headers)


async def _apply(
    session: SessionDep,
    outbox: OutboxDep,
    settings: SettingsDep,
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


@router.post(
    "/Users",
    status_code=201,
    summary="Provision a user",
    responses={**SCIM_RESPONSES, 201: {"description": "Created", "content": {scim.SCIM_JSON: SCIM_OBJECT}}},
)
async def create_user(
    request: Request, session: SessionDep, outbox: OutboxDep, settings: SettingsDep
) -> JSONResponse:
    """Creates the account and its professional persona, or adopts a self-registered account
    with the same email. Provisioned people sign in through single sign-on; the account gets
    an unusable random password. An adopted account keeps its password only if its owner proved
    the address; pending (unconfirmed) registrations of the address are dropped."""
    resource = scim.parse(await _json(request), Context.RESOURCE_CREATION_REQUEST)
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
    return _response(request, _render(request, row, account), 201)


@router.get("/Users/{user_id}", summary="A provisioned user", responses=SCIM_RESPONSES)
async def get_user(user_id: str, request: Request, session: SessionDep) -> JSONResponse:
    row, account, _ = await _load(session, user_id)
    params = _params(dict(request.query_params))
    return _response(request, _render(request, row, account), params=params)


@router.put("/Users/{user_id}", summary="Replace a provisioned user", responses=SCIM_RESPONSES)
async def replace_user(
    user_id: str, request: Request, session: SessionDep, outbox: OutboxDep, settings: SettingsDep
) -> JSONResponse:
    row, account, persona = await _load(session, user_id)
    resource = scim.parse(await _json(request), Context.RESOURCE_REPLACEMENT_REQUEST)
    row.version += 1
    await _apply(session, outbox, settings, resource, row, account, persona)
    await session.commit()
    return _response(request, _render(request, row, account))


@router.patch("/Users/{user_id}", summary="Change attributes of a provisioned user", responses=SCIM_RESPONSES)
async def patch_user(
    user_id: str, request: Request, session: SessionDep, outbox: OutboxDep, settings: SettingsDep
) -> Response:
    row, account, persona = await _load(session, user_id)
    current = _render(request, row, account)
    try:
        patch = PatchOp[UserResource].model_validate(
            await _json(request), scim_ctx=Context.RESOURCE_PATCH_REQUEST
        )
        patch.patch(current)
        resource = UserResource.model_validate(
            current.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE),
            scim_ctx=Context.RESOURCE_QUERY_RESPONSE,
        )
    except ScimError:
        raise
    except ValidationError as exc:
        raise ScimError(400, str(exc.errors()[0].get("msg", "invalid"))[:500], "invalidValue") from None
    except Exception as exc:  # scim2-models signals patch problems with its own exception family
        status = int(getattr(exc, "status", 400) or 400)
        scim_type = getattr(exc, "scim_type", None) or "invalidValue"
        raise ScimError(
            status if 400 <= status < 500 else 400, str(exc)[:500] or "invalid patch", scim_type
        ) from None
    row.version += 1
    await _apply(session, outbox, settings, resource, row, account, persona)
    await session.commit()
    return _response(request, _render(request, row, account))


@router.delete("/Users/{user_id}", status_code=204, summary="Deprovision a user", responses=SCIM_RESPONSES)
async def delete_user(
    user_id: str, session: SessionDep, outbox: OutboxDep, settings: SettingsDep
) -> Response:
    """Deactivates the account (content handling follows the identity rules) and removes it
    from SCIM: a later GET is a 404."""
    row, account, _ = await _load(session, user_id)
    if account.status != "deactivated":
        await accounts.set_status(session, outbox, settings, account, "deactivated")
    await session.delete(row)
    await session.commit()
    return Response(status_code=204)


def _params(query: dict[str, Any]) -> SearchRequest[UserResource]:
    try:
        return SearchRequest[UserResource].model_validate(query)
    except ValidationError as exc:
        message = str(exc.errors()[0].get("msg", "invalid"))
        scim_type = "invalidFilter" if "filter" in str(exc.errors()[0].get("loc", "")) else "invalidValue"
        raise ScimError(400, message[:500], scim_type) from None


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


async def _search(request: Request, session: SessionDep, params: SearchRequest[UserResource]) -> JSONResponse:
    query = select(ScimUser, Account).join(Account, col(Account.id) == ScimUser.account_id)
    narrowed = _indexed_lookup(params)
    if narrowed is not None:
        query = query.where(narrowed)  # HR's "does this user exist?" runs on the index
    else:
        total_rows = await session.scalar(select(func.count()).select_from(ScimUser))
        if (total_rows or 0) > 50_000:
            raise ScimError(400, "Too many users to filter in memory; narrow the query.", "tooMany")
    rows = (await session.execute(query)).all()
    resources = [_render(request, row, account) for row, account in rows]
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
    return scim_json(listing.model_dump(scim_ctx=Context.SEARCH_RESPONSE, response_parameters=params))


@router.get("/Users", summary="List and filter provisioned users", responses=SCIM_RESPONSES)
async def list_users(request: Request, session: SessionDep) -> JSONResponse:
    """`filter` (eq, ne, co, sw, ew, pr, gt, ge, lt, le, and, or, not), `sortBy`/`sortOrder`,
    `startIndex`/`count` (at most 200), `attributes`/`excludedAttributes`."""
    return await _search(request, session, _params(dict(request.query_params)))


@router.post("/Users/.search", summary="Search provisioned users (POST)", responses=SCIM_RESPONSES)
@router.post("/.search", summary="Search every resource type (POST); here, users", responses=SCIM_RESPONSES)
async def search_users(request: Request, session: SessionDep) -> JSONResponse:
    body = await _json(request)
    if not isinstance(body, dict):
        raise ScimError(400, "The body must be a SearchRequest.", "invalidSyntax")
    return await _search(request, session, _params(body))
