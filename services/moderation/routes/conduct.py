"""Moderation's HTTP routes: the code of conduct, read by anyone signed in and set by an
administrator (services/moderation/conduct.py holds its rules)."""

from __future__ import annotations

from fastapi import APIRouter

from domain.principal import CurrentPrincipal
from kit.errors import Forbidden
from services.moderation import conduct
from services.moderation.conduct import CodeOfConduct, ConductUpdate
from services.moderation.deps import Admin, SessionDep, is_notices_token

router = APIRouter(tags=["code of conduct"])


@router.get(
    "/api/v1/code-of-conduct",
    summary="The organisation's code of conduct",
    responses={
        403: {"description": "`notices-only`: a `notices` token, which reads a persona's notices only"}
    },
)
async def get_code_of_conduct(session: SessionDep, caller: CurrentPrincipal) -> CodeOfConduct:
    """The version in force and its numbered rules, which reports cite. Version 0, with no
    rules, until an administrator sets the first. Any persona's or client's token reads it."""
    if is_notices_token(caller):
        raise Forbidden("A notices token only reads the persona's notices.", slug="notices-only")
    return await conduct.read(session)


@router.put(
    "/api/v1/admin/code-of-conduct",
    summary="Set the code of conduct (administrators)",
    responses={
        403: {
            "description": "`not-an-admin`: not an administrator acting through a professional persona that "
            "still holds the role; `notices-only`: a `notices` token; `forbidden`: a client's token"
        },
        409: {"description": "`stale-version`: `base_version` is not the version in force"},
        422: {
            "description": "`validation`: over 100 rules, a number given twice or not positive, "
            "a title over 200 or a text over 4000 characters"
        },
    },
)
async def put_code_of_conduct(body: ConductUpdate, session: SessionDep, admin: Admin) -> CodeOfConduct:
    """Replaces the whole code with ``rules`` as a new version (``base_version + 1``), kept in
    the order of their numbers. Earlier versions stay, for the reports that cited them."""
    return await conduct.replace(session, admin.persona_id, body)
