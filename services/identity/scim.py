"""SCIM 2.0 (RFC 7643/7644) provisioning from HR, on top of scim2-models.

HR's User resources map to an account and its professional persona only: userName and the
primary email to the account, name/displayName, title and the enterprise extension's
department and manager to the persona's HR-owned fields, ``active`` to the account's status.
The resource HR last sent is kept as it was sent (minus any password), so attributes this
service does not use still round-trip. SCIM never sees or touches a personal persona.
"""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    EnterpriseUser,
    ETag,
    Filter,
    Patch,
    PatchOp,
    ResourceType,
    ScimProvider,
    SearchRequest,
    ServiceProviderConfig,
    Sort,
    User,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from starlette.exceptions import HTTPException

from kit.errors import APIError, validation_errors
from kit.errors import http_error_handler as problem_handler
from kit.errors import validation_error_handler as problem_validation_handler
from services.identity.models import Persona

SCIM_JSON = "application/scim+json"
UserResource = User[EnterpriseUser]
MAX_RESULTS = 200
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
PROVIDER = ScimProvider(
    models=[User, EnterpriseUser], resource_types=[ResourceType.from_resource(UserResource)]
)


class ScimError(APIError):
    """An error in SCIM's own format (RFC 7644 §3.12)."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.scim_type = scim_type
        if status == 401:
            self.headers["WWW-Authenticate"] = 'Bearer realm="SCIM"'


def scim_json(
    payload: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(payload, status_code=status, media_type=SCIM_JSON, headers=headers)


async def scim_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ScimError)
    body: dict[str, Any] = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": str(exc.status),
        "detail": exc.detail,
    }
    if exc.scim_type:
        body["scimType"] = exc.scim_type
    return scim_json(body, exc.status, exc.headers)


def base_url(public_url: str | None) -> str:
    """Where SCIM's resources are, as clients name them: the configured public address, never
    the request's (behind the gateway that is identity's own, and a Host header is the client's)."""
    return (public_url or "").rstrip("/") + "/scim/v2"


def list_message(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A complete (one-page) ListResponse of ``resources``."""
    return {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": len(resources),
        "startIndex": 1,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


def service_provider_config(base_url: str) -> dict[str, Any]:
    config = ServiceProviderConfig(
        documentation_uri="https://datatracker.ietf.org/doc/html/rfc7644",
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=True),
        etag=ETag(supported=False),
        authentication_schemes=[
            AuthenticationScheme(
                type="oauthbearertoken",
                name="OAuth Bearer Token",
                description="An access token of an integrator client with the scim scope "
                "(client_credentials grant at /api/v1/auth/token).",
                primary=True,
            )
        ],
    )
    payload: dict[str, Any] = config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    payload["meta"] = {
        "resourceType": "ServiceProviderConfig",
        "location": f"{base_url}/ServiceProviderConfig",
    }
    return payload


def resource_types(base_url: str) -> list[dict[str, Any]]:
    out = []
    for resource_type in PROVIDER.resource_types:
        payload: dict[str, Any] = resource_type.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        payload["meta"] = {
            "resourceType": "ResourceType",
            "location": f"{base_url}/ResourceTypes/{resource_type.id}",
        }
        out.append(payload)
    return out


def schemas(base_url: str) -> list[dict[str, Any]]:
    out = []
    for schema in PROVIDER.schemas:
        payload: dict[str, Any] = schema.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        payload["meta"] = {"resourceType": "Schema", "location": f"{base_url}/Schemas/{schema.id}"}
        out.append(payload)
    return out


def parse(payload: Any, context: Context) -> UserResource:
    if not isinstance(payload, dict):
        raise ScimError(400, "The body must be a JSON object.", "invalidSyntax")
    try:
        return UserResource.model_validate(payload, scim_ctx=context)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise ScimError(400, f"{where}: {first.get('msg', 'invalid')}"[:500], "invalidValue") from None


def stored(resource: UserResource) -> dict[str, Any]:
    """What is kept of a resource HR sent: everything but id, meta and any password."""
    data: dict[str, Any] = resource.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    for key in ("id", "meta", "password"):
        data.pop(key, None)
    return data


def render(
    data: dict[str, Any],
    account_id: uuid.UUID,
    active: bool,
    created: datetime,
    modified: datetime,
    version: int,
    base_url: str,
) -> UserResource:
    payload = {
        **data,
        "id": str(account_id),
        "meta": {
            "resourceType": "User",
            "created": created.isoformat(),
            "lastModified": modified.isoformat(),
            "location": f"{base_url}/Users/{account_id}",
            "version": f'W/"{version}"',
        },
    }
    if "active" in data:  # HR's flag, as the account's status now says (an admin may suspend)
        payload["active"] = active
    return UserResource.model_validate(payload, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)


def search_request(query: dict[str, Any]) -> SearchRequest[UserResource]:
    """A search's parameters (a GET's query or a POST's body), or a SCIM 400."""
    try:
        return SearchRequest[UserResource].model_validate(query)
    except ValidationError as exc:
        message = str(exc.errors()[0].get("msg", "invalid"))
        scim_type = "invalidFilter" if "filter" in str(exc.errors()[0].get("loc", "")) else "invalidValue"
        raise ScimError(400, message[:500], scim_type) from None


def patched(current: UserResource, payload: Any) -> UserResource:
    """``current`` with a PatchOp message applied, or a SCIM 400 (4xx) saying what is wrong."""
    try:
        patch = PatchOp[UserResource].model_validate(payload, scim_ctx=Context.RESOURCE_PATCH_REQUEST)
        patch.patch(current)
        return UserResource.model_validate(
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


def email_of(resource: UserResource, account_id: uuid.UUID) -> str:
    """The primary (else first) email, else an email-shaped userName; an HR record without
    either gets a placeholder under the reserved .invalid domain (such people sign in through
    single sign-on linked by externalId)."""
    emails = resource.emails or []
    primary = next((e for e in emails if e.primary), emails[0] if emails else None)
    for value in (
        str(primary.value) if primary is not None and primary.value else "",
        resource.user_name or "",
    ):
        if EMAIL.fullmatch(value.strip()) and len(value) <= 254:
            return value.strip().lower()
    return f"scim-{account_id}@users.invalid"


def persona_fields(resource: UserResource) -> dict[str, Any]:
    name = resource.name
    display = (
        resource.display_name
        or (name.formatted if name else None)
        or " ".join(p for p in ((name.given_name, name.family_name) if name else ()) if p)
        or resource.user_name
        or "Unnamed"
    )
    enterprise = (
        resource[EnterpriseUser]
        if EnterpriseUser in (resource.get_extension_models() or {}).values()
        else None
    )
    manager = enterprise.manager.value if enterprise and enterprise.manager else None
    return {
        "display_name": _clean(display, 100) or "Unnamed",
        "job_title": _clean(resource.title, 100),
        "department": _clean(enterprise.department if enterprise else None, 100),
        "manager_id": _clean(manager, 255),
    }


def _clean(value: str | None, limit: int) -> str | None:
    if not value:
        return None
    value = re.sub(r"[\x00-\x1f\x7f]", " ", value).strip()
    return value[:limit] or None


async def free_handle(session: AsyncSession, user_name: str) -> str:
    base = re.sub(r"[^a-z0-9_]", "_", user_name.split("@")[0].lower()).strip("_")[:24] or "user"
    base = base if len(base) >= 3 else f"{base}_hr"
    candidate = base
    while await session.scalar(
        select(col(Persona.id)).where(col(Persona.kind) == "professional", col(Persona.handle) == candidate)
    ):
        candidate = f"{base}_{secrets.randbelow(10**5):05d}"
    return candidate


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Unknown paths and wrong methods under /scim answer in SCIM's format; elsewhere, as
    every other error does."""
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/scim/"):
        detail = "No such resource." if exc.status_code == 404 else str(exc.detail)
        error = ScimError(exc.status_code, detail)
        error.headers.update(exc.headers or {})
        return await scim_error_handler(request, error)
    return await problem_handler(request, exc)


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """A request refused before a SCIM route reads it (a NUL character, kit.inputs) answers in
    SCIM's format too."""
    if request.url.path.startswith("/scim/"):
        assert isinstance(exc, RequestValidationError)
        where = ", ".join(e["location"] for e in validation_errors(exc))
        return await scim_error_handler(request, ScimError(400, f"Invalid value: {where}.", "invalidValue"))
    return await problem_validation_handler(request, exc)
