"""``/scim/v2``: HR provisioning of accounts and their professional personas
(services/identity/provisioning.py holds the flows, services/identity/scim.py the format)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from scim2_models import Context, SearchRequest

from services.identity import provisioning, scim
from services.identity.deps import OutboxDep, ScimBaseDep, SessionDep, SettingsDep, scim_client
from services.identity.scim import ScimError, UserResource, scim_json

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
    dependencies=[Depends(scim_client)],
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
    headers = {"Location": str(resource.meta.location), "ETag": str(resource.meta.version)}
    return scim_json(payload, status, headers)


@router.get("/ServiceProviderConfig", summary="What this SCIM service supports", responses=SCIM_RESPONSES)
async def get_service_provider_config(base: ScimBaseDep) -> JSONResponse:
    return scim_json(scim.service_provider_config(base))


@router.get("/ResourceTypes", summary="SCIM resource types", responses=SCIM_RESPONSES)
async def list_resource_types(base: ScimBaseDep) -> JSONResponse:
    return scim_json(scim.list_message(scim.resource_types(base)))


@router.get("/ResourceTypes/{name}", summary="One SCIM resource type", responses=SCIM_RESPONSES)
async def get_resource_type(name: str, base: ScimBaseDep) -> JSONResponse:
    found = [r for r in scim.resource_types(base) if r["id"] == name]
    if not found:
        raise ScimError(404, "No such resource type.")
    return scim_json(found[0])


@router.get("/Schemas", summary="SCIM schemas", responses=SCIM_RESPONSES)
async def list_schemas(base: ScimBaseDep) -> JSONResponse:
    return scim_json(scim.list_message(scim.schemas(base)))


@router.get("/Schemas/{schema_id}", summary="One SCIM schema", responses=SCIM_RESPONSES)
async def get_schema(schema_id: str, base: ScimBaseDep) -> JSONResponse:
    found = [s for s in scim.schemas(base) if s["id"] == schema_id]
    if not found:
        raise ScimError(404, "No such schema.")
    return scim_json(found[0])


@router.post(
    "/Users",
    status_code=201,
    summary="Provision a user",
    responses={**SCIM_RESPONSES, 201: {"description": "Created", "content": {scim.SCIM_JSON: SCIM_OBJECT}}},
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


@router.get("/Users/{user_id}", summary="A provisioned user", responses=SCIM_RESPONSES)
async def get_user(user_id: str, request: Request, session: SessionDep, base: ScimBaseDep) -> JSONResponse:
    user = await provisioning.load(session, user_id)
    params = scim.search_request(dict(request.query_params))
    return _response(provisioning.render(user.row, user.account, base), params=params)


@router.put("/Users/{user_id}", summary="Replace a provisioned user", responses=SCIM_RESPONSES)
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


@router.patch("/Users/{user_id}", summary="Change attributes of a provisioned user", responses=SCIM_RESPONSES)
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


@router.delete("/Users/{user_id}", status_code=204, summary="Deprovision a user", responses=SCIM_RESPONSES)
async def delete_user(
    user_id: str, session: SessionDep, outbox: OutboxDep, settings: SettingsDep
) -> Response:
    """Deactivates the account (content handling follows the identity rules) and removes it
    from SCIM: a later GET is a 404."""
    await provisioning.deprovision(session, outbox, settings, await provisioning.load(session, user_id))
    return Response(status_code=204)


@router.get("/Users", summary="List and filter provisioned users", responses=SCIM_RESPONSES)
async def list_users(request: Request, session: SessionDep, base: ScimBaseDep) -> JSONResponse:
    """`filter` (eq, ne, co, sw, ew, pr, gt, ge, lt, le, and, or, not), `sortBy`/`sortOrder`,
    `startIndex`/`count` (at most 200), `attributes`/`excludedAttributes`."""
    params = scim.search_request(dict(request.query_params))
    return scim_json(await provisioning.search(session, params, base))


@router.post("/Users/.search", summary="Search provisioned users (POST)", responses=SCIM_RESPONSES)
@router.post("/.search", summary="Search every resource type (POST); here, users", responses=SCIM_RESPONSES)
async def search_users(request: Request, session: SessionDep, base: ScimBaseDep) -> JSONResponse:
    body = await _json(request)
    if not isinstance(body, dict):
        raise ScimError(400, "The body must be a SearchRequest.", "invalidSyntax")
    return scim_json(await provisioning.search(session, scim.search_request(body), base))
