"""The directory and persona profiles, each seen only from the persona's own context."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError
from sqlalchemy import String, cast, func, or_
from sqlmodel import col, select

from kit.db import SessionDep
from kit.errors import Conflict, Forbidden, NotFound, unprocessable_from
from kit.outbox import OutboxDep
from kit.pagination import Cursor, Limit, Page, decode_cursor, paginate
from kit.text import LIKE_ESCAPE, like_escape
from services.identity import personas
from services.identity.deps import CallerDep
from services.identity.models import Persona
from services.identity.schemas import PersonalUpdate, PersonaPublic, ProfessionalUpdate

router = APIRouter(prefix="/api/v1/personas", tags=["personas"])
HR_OWNED_FIELDS = {"display_name", "job_title", "department"}


@router.get("", summary="Search the directory of the caller's context")
async def list_personas(
    request: Request,
    response: Response,
    session: SessionDep,
    caller: CallerDep,
    q: Annotated[
        str | None, Query(min_length=2, max_length=100, description="Name, handle, skill or department")
    ] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[PersonaPublic]:
    """Only active personas of the caller's own context; personal personas that are not
    discoverable never appear. Sorted by handle."""
    after = decode_cursor("personas", cursor, arity=1)
    query = select(Persona).where(
        col(Persona.kind) == caller.persona.kind,
        col(Persona.status) == "active",
        col(Persona.discoverable).is_(True),
    )
    if q:
        pattern = f"%{like_escape(q.strip())}%"
        query = query.where(
            or_(
                func.lower(Persona.handle).like(pattern, escape=LIKE_ESCAPE),
                func.lower(Persona.display_name).like(pattern, escape=LIKE_ESCAPE),
                func.lower(func.coalesce(Persona.department, "")).like(pattern, escape=LIKE_ESCAPE),
                func.lower(cast(Persona.skills, String)).like(pattern, escape=LIKE_ESCAPE),
            )
        )
    if after:
        query = query.where(Persona.handle > str(after[0]))
    rows = (await session.scalars(query.order_by(Persona.handle).limit(limit + 1))).all()
    page = paginate(request, response, rows, limit=limit, scope="personas", key=lambda p: [p.handle])
    return Page[PersonaPublic](items=[personas.public(p) for p in page.items], next_cursor=page.next_cursor)


async def _visible(session: SessionDep, caller: CallerDep, persona_id: uuid.UUID) -> Persona:
    """A persona of another context answers exactly as one that does not exist: the statement
    itself leaves it out, so both come back as no row, on the same path and in the same time."""
    persona = await session.scalar(
        select(Persona).where(
            col(Persona.id) == persona_id,
            col(Persona.kind) == caller.persona.kind,
            col(Persona.status) == "active",
        )
    )
    if persona is None:
        raise NotFound("No persona with this id.")
    return persona


@router.get("/{persona_id}", summary="A persona's profile")
async def get_persona(persona_id: uuid.UUID, session: SessionDep, caller: CallerDep) -> PersonaPublic:
    return personas.public(await _visible(session, caller, persona_id))


@router.patch(
    "/{persona_id}",
    summary="Edit the caller's own persona",
    responses={
        403: {"description": "Not the caller's persona"},
        409: {"description": "Fields of the other persona kind"},
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": {
                        "anyOf": [
                            {"$ref": "#/components/schemas/ProfessionalUpdate"},
                            {"$ref": "#/components/schemas/PersonalUpdate"},
                        ]
                    }
                }
            }
        }
    },
)
async def update_persona(
    persona_id: uuid.UUID,
    body: ProfessionalUpdate | PersonalUpdate,
    session: SessionDep,
    caller: CallerDep,
    outbox: OutboxDep,
) -> PersonaPublic:
    """Only the token's own persona can be edited; its fields depend on its kind."""
    persona = await _visible(session, caller, persona_id)
    if persona.id != caller.persona.id:
        raise Forbidden("Only the persona's owner, with that persona's token, can edit it.")
    model = ProfessionalUpdate if persona.kind == "professional" else PersonalUpdate
    sent = body.model_dump(exclude_unset=True)
    foreign = sorted(sent.keys() - model.model_fields.keys())
    if foreign:
        # a valid body of the other kind: it conflicts with this persona, it is not malformed
        raise Conflict(f"A {persona.kind} persona has no {', '.join(foreign)}.")
    try:
        changes = model.model_validate(sent).model_dump(exclude_unset=True)
    except ValidationError as exc:
        raise unprocessable_from(exc) from None
    hr_owned = HR_OWNED_FIELDS & changes.keys()
    if persona.kind == "professional" and caller.account.provisioned and hr_owned:
        raise Forbidden(f"HR provisioning owns {', '.join(sorted(hr_owned))}; ask HR to change them.")
    for field, value in changes.items():
        setattr(persona, field, value)
    personas.touch(persona)
    await outbox.publish(session, "persona.updated", str(persona.id), personas.event_data(persona))
    await session.commit()
    return personas.public(persona)
