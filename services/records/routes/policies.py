"""Records routes: the retention policies of every class (decision 0033, "Classes and
policies"); services/records/policies.py holds their rules."""

from __future__ import annotations

from fastapi import APIRouter

from services.records import policies
from services.records.deps import CurrentOfficer, SessionDep
from services.records.schemas import PolicyChange, PolicySetPublic

router = APIRouter(
    prefix="/api/v1/records/policies",
    tags=["records"],
    responses={
        403: {
            "description": "`not-an-officer`: not a records officer or administrator acting through a "
            "professional persona that still holds the role; `forbidden`: a client's token"
        }
    },
)


@router.get("", summary="Every retention class's policy (records officers)")
async def get_policies(session: SessionDep, officer: CurrentOfficer) -> PolicySetPublic:
    """A class never changed has the default: `keep_forever`. Audited."""
    return await policies.read(session, officer)


@router.put(
    "",
    summary="Change the policies of some classes (records officers)",
    responses={
        409: {
            "description": "`version-conflict`: the policies changed since `version`; "
            "`policy-within-hold`: an active hold starts before a disposing policy's cut-off "
            "(send `acknowledge_holds`)"
        },
        422: {
            "description": "`validation`: an unknown class, `keep_days` outside 0 to 36500, `dispose` "
            "without `keep_days`, overrides outside `group_posts` or over 1000, `last_activity` for a "
            "class that is not of posts, a class named twice"
        },
    },
)
async def put_policies(body: PolicyChange, session: SessionDep, officer: CurrentOfficer) -> PolicySetPublic:
    """Replaces the classes named, as one new version; the others stay. Audited. A hold always
    wins over a policy: what it covers is never disposed of."""
    return await policies.change(session, officer, body)
