"""``/scim/v2``: HR provisioning of accounts and their professional personas
(services/identity/provisioning.py holds the flows, services/identity/scim.py the format,
services/identity/scim_schemas.py the messages as the OpenAPI document names them)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request, Response, Security
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from scim2_models import Context, SearchRequest

from domain.principal import oauth2_scheme
from kit.service import documented_body
from services.identity import provisioning, scim
from services.identity import scim_schemas as docs
from services.identity.deps import OutboxDep, ScimBaseDep, SessionDep, SettingsDep, scim_client
from services.identity.scim import ScimError, UserResource, scim_json

ERRORS = {
    400: "SCIM error: invalidSyntax, invalidValue, invalidFilter, …",
    401: "No valid token, or the client is revoked",
    403: "Not an integrator client's token with the scim scope",
    404: "No such resource",
    409: "uniqueness: the userName or externalId is taken",
}


def _answers(status: int, model: type[BaseModel] | None, text: str, *errors: int) -> dict[int | str, Any]:
    """An operation's answers: its success, and its errors (400, 401, 403 on every operation,
    and ``errors``), all in SCIM's format (RFC 7644 §3.12)."""
    success: dict[str, Any] = {"description": text} | ({"model": model} if model else {})
    answers: dict[int | str, Any] = {status: success}
    for code in (400, 401, 403, *errors):
        answers[code] = {"description": ERRORS[code], "model": docs.ScimError}
    return answers


def _body(model: type[BaseModel]) -> dict[str, Any]:
    """A body the route reads itself (SCIM's lenient rules), as the document names it. The
    route also takes `application/json`; only SCIM's own type is published, as two types of
    one schema make openapi-python-client write a body parameter that does not compile."""
    return documented_body(model, scim.SCIM_JSON)


class ScimJSONResponse(JSONResponse):
    media_type = scim.SCIM_JSON


router = APIRouter(
    prefix="/scim/v2",
    tags=["provisioning"],
    # The scheme's declaration is for the document: scim_client reads and checks the token.
    dependencies=[Depends(scim_client), Security(oauth2_scheme, scopes=["scim"])],
    default_response_class=ScimJSONResponse,
)


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (ValueError, RecursionError):
        raise ScimError(400, "The body is not valid JSON.", "invalidSyntax") from None


def _response(
    resource: UserResource,
    status: int = 200,
    params: SearchRequest[UserResource] | None = None,
) -> JSONResponse:
    payload = resource.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=params)
    assert resource.meta is not None
    # No ETag: the version moves with HR's changes only, not with an administrator's suspension,
    # so it cannot stand for the representation (ServiceProviderConfig: etag unsupported).
    headers = {"Location": str(resource.meta.location)}
    return scim_json(payload, status, headers)


@router.get(
    "/ServiceProviderConfig",
    summary="What this SCIM service supports",
    responses=_answers(200, docs.ServiceProviderConfig, "The service's configuration"),
)
async def get_service_provider_config(base: ScimBaseDep) -> JSONResponse:
    return scim_json(scim.service_provider_config(base))


@router.get(
    "/ResourceTypes",
    summary="SCIM resource types",
    responses=_answers(200, docs.ResourceTypeListResponse, "Every resource type"),
)
async def list_resource_types(base: ScimBaseDep) -> JSONResponse:
    return scim_json(scim.list_message(scim.resource_types(base)))


@router.get(
    "/ResourceTypes/{name}",
    summary="One SCIM resource type",
    responses=_answers(200, docs.ResourceType, "The resource type", 404),
)
async def get_resource_type(name: str, base: ScimBaseDep) -> JSONResponse:
    found = [r for r in scim.resource_types(base) if r["id"] == name]
    if not found:
        raise ScimError(404, "No such resource type.")
    return scim_json(found[0])


@router.get(
    "/Schemas", summary="SCIM schemas", responses=_answers(200, docs.SchemaListResponse, "Every schema")
)
async def list_schemas(base: ScimBaseDep) -> JSONResponse:
    return scim_json(scim.list_message(scim.schemas(base)))


@router.get(
    "/Schemas/{schema_id}", summary="One SCIM schema", responses=_answers(200, docs.Schema, "The schema", 404)
)
async def get_schema(schema_id: str, base: ScimBaseDep) -> JSONResponse:
    found = [s for s in scim.schemas(base) if s["id"] == schema_id]
    if not found:
        raise ScimError(404, "No such schema.")
    return scim_json(found[0])


@router.post(
    "/Users",
    status_code=201,
    summary="Provision a user",
    responses=_answers(201, docs.ScimUser, "Provisioned", 409),
    openapi_extra=_body(docs.ScimUser),
)
async def create_user(
    request: Request, session: SessionDep, outbox: OutboxDep, settings: SettingsDep, base: ScimBaseDep
) -> JSONResponse:
    """Creates the account and its professional persona, or adopts a self-registered account
    with the same email. Provisioned people sign in through single sign-on; the account gets
    an unusable random password. An adopted account keeps its password only if its owner proved
    the address; pending (unconfirmed) registrations of the address are dropped."""
    resource = scim.parse(await _json(request), Context.RESOURCE_CREATION_REQUEST)
    row, account = await provisioning.create(session, outbox, settings, resource)
    return _response(provisioning.render(row, account, base), 201)


@router.get(
    "/Users/{user_id}", summary="A provisioned user", responses=_answers(200, docs.ScimUser, "The user", 404)
)
async def get_user(user_id: str, request: Request, session: SessionDep, base: ScimBaseDep) -> JSONResponse:
    user = await provisioning.load(session, user_id)
    params = scim.search_request(dict(request.query_params))
    return _response(provisioning.render(user.row, user.account, base), params=params)


@router.put(
    "/Users/{user_id}",
    summary="Replace a provisioned user",
    responses=_answers(200, docs.ScimUser, "Replaced", 404, 409),
    openapi_extra=_body(docs.ScimUser),
)
async def replace_user(
    user_id: str,
    request: Request,
    session: SessionDep,
    outbox: OutboxDep,
    settings: SettingsDep,
    base: ScimBaseDep,
) -> JSONResponse:
    user = await provisioning.load(session, user_id)
    resource = scim.parse(await _json(request), Context.RESOURCE_REPLACEMENT_REQUEST)
    await provisioning.replace(session, outbox, settings, user, resource)
    return _response(provisioning.render(user.row, user.account, base))


@router.patch(
    "/Users/{user_id}",
    summary="Change attributes of a provisioned user",
    responses=_answers(200, docs.ScimUser, "Changed", 404, 409),
    openapi_extra=_body(docs.ScimPatchOp),
)
async def patch_user(
    user_id: str,
    request: Request,
    session: SessionDep,
    outbox: OutboxDep,
    settings: SettingsDep,
    base: ScimBaseDep,
) -> Response:
    user = await provisioning.load(session, user_id)
    current = provisioning.render(user.row, user.account, base)
    resource = scim.patched(current, await _json(request))
    await provisioning.replace(session, outbox, settings, user, resource)
    return _response(provisioning.render(user.row, user.account, base))


@router.delete(
    "/Users/{user_id}",
    status_code=204,
    summary="Deprovision a user",
    responses=_answers(204, None, "Deprovisioned", 404),
)
async def delete_user(
    user_id: str, session: SessionDep, outbox: OutboxDep, settings: SettingsDep
) -> Response:
    """Deactivates the account (content handling follows the identity rules) and removes it
    from SCIM: a later GET is a 404."""
    await provisioning.deprovision(session, outbox, settings, await provisioning.load(session, user_id))
    return Response(status_code=204)


@router.get(
    "/Users",
    summary="List and filter provisioned users",
    responses=_answers(200, docs.ScimListResponse, "A page of users"),
)
async def list_users(request: Request, session: SessionDep, base: ScimBaseDep) -> JSONResponse:
    """`filter` (eq, ne, co, sw, ew, pr, gt, ge, lt, le, and, or, not), `sortBy`/`sortOrder`,
    `startIndex`/`count` (at most 200), `attributes`/`excludedAttributes`."""
    params = scim.search_request(dict(request.query_params))
    return scim_json(await provisioning.search(session, params, base))


@router.post(
    "/Users/.search",
    summary="Search provisioned users (POST)",
    responses=_answers(200, docs.ScimListResponse, "A page of users"),
    openapi_extra=_body(docs.ScimSearchRequest),
)
@router.post(
    "/.search",
    summary="Search every resource type (POST); here, users",
    responses=_answers(200, docs.ScimListResponse, "A page of users"),
    openapi_extra=_body(docs.ScimSearchRequest),
)
async def search_users(request: Request, session: SessionDep, base: ScimBaseDep) -> JSONResponse:
    body = await _json(request)
    if not isinstance(body, dict):
        raise ScimError(400, "The body must be a SearchRequest.", "invalidSyntax")
    return scim_json(await provisioning.search(session, scim.search_request(body), base))
