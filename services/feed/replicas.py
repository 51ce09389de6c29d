"""Feed's replicas of groups and memberships when they lag behind groups: read-your-writes.

Feed decides who posts to a group and who reads its timeline from its replicas
(``GroupReplica``, ``MembershipReplica``), which groups' events fill through the outbox a moment
after each change. Until they arrive (up to a second or so), a group just created, or a member
just let in (a join approved, an invitation accepted), is missing from them, and the post or the
read would be a 404 or a 403 that the next try does not get.

So on such a miss (``lagging``: no group row, or no membership row where one would change the
answer) the flow asks groups once (``Groups.fetch``: ``GET /internal/feed/groups/{id}``, behind
the internal token) for the group and the caller's membership, as their events describe them.
``Groups.catch_up`` applies the answer with the event handlers themselves
(``events.on_group_changed``, ``events.on_membership_changed``), so the stale-update rule is
theirs (a row as new as the answer is left alone) and the events that arrive later change
nothing; it commits at once, so that the rows stay even when the request is refused later on.
Then the flow decides again. A replica that answers positively, or a group it knows to be of
the other context or under moderation, costs no call: at most one call per request, only on a
miss.

The question carries the group's id, the caller's persona id and that persona's context, and
groups answers a group of the other context as a missing one: it never pairs a persona with a
group of its other context (``docs/boundary.md``). A group groups does not know stays a 404.
Groups not answering within ``groups_timeout_seconds`` (a few hundred milliseconds), or
answering anything unexpected, leaves the replicas as they are: the answer is the one they give
(404 or 403, never a 500), and a line is logged.

Cost: a post or a read naming a group id feed does not know makes one internal call, so a
flood of posts to random group ids is a flood of calls to groups, bounded by what bounds the
requests themselves: the gateway's rate limit per caller (``gateway.ratelimit``, 600 requests a
minute per token by default). Each call is two primary-key reads at groups, and a refusal (404)
writes nothing at feed.

A group deleted, or a member removed, in the few milliseconds between groups' answer and this
commit, whose event feed has already applied, would leave the row this wrote until the next
event about it: the removal handlers keep no trace of what they removed.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from domain.principal import Principal
from kit.ids import new_id
from kit.outbox import IdEvent
from kit.timeutil import utcnow
from services.feed.events import GroupChanged, MembershipChanged, on_group_changed, on_membership_changed
from services.feed.models import GroupReplica, MembershipReplica
from services.feed.settings import FeedSettings

Data = TypeVar("Data", bound=BaseModel)

log = logging.getLogger(__name__)

LOOKUP_PATH = "/internal/feed/groups/{group_id}"


class GroupAnswer(BaseModel):
    """Groups' answer: the data of the group's and the membership's latest events."""

    model_config = ConfigDict(extra="ignore")

    group: GroupChanged
    membership: MembershipChanged | None = None


class Groups:
    """Feed's one question to groups, through the app's HTTP client, behind the internal token."""

    def __init__(self, client: httpx.AsyncClient, settings: FeedSettings) -> None:
        self.client = client
        self.settings = settings

    async def fetch(self, group_id: uuid.UUID, reader: Principal) -> GroupAnswer | None:
        """The group and ``reader``'s membership of it, as groups has them now; None when groups
        knows no such group in the reader's context, or did not answer as expected (logged)."""
        assert reader.persona_id is not None and reader.context is not None
        token = self.settings.internal_token.get_secret_value()
        timeout = self.settings.groups_timeout_seconds
        try:
            async with asyncio.timeout(timeout):  # the whole call, whatever the transport
                resp = await self.client.get(
                    self.settings.groups_url.rstrip("/") + LOOKUP_PATH.format(group_id=group_id),
                    params={"persona": str(reader.persona_id), "context": reader.context},
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=timeout,
                )
        except (TimeoutError, httpx.HTTPError) as exc:
            log.warning("groups did not answer a group lookup: %s", type(exc).__name__)
            return None
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            log.warning("groups answered a group lookup with %d", resp.status_code)
            return None
        try:
            answer = GroupAnswer.model_validate_json(resp.content)
        except ValidationError:
            log.warning("groups answered a group lookup with an unexpected body")
            return None
        membership = answer.membership
        if answer.group.context != reader.context or (
            membership is not None
            and (membership.persona_id != reader.persona_id or membership.group_id not in (None, group_id))
        ):
            log.warning("groups answered a group lookup about another group or persona")
            return None
        return answer

    async def catch_up(
        self,
        session: AsyncSession,
        reader: Principal,
        group_id: uuid.UUID,
        group: GroupReplica | None,
        member: MembershipReplica | None,
        *,
        members_only: bool,
    ) -> bool:
        """When the replicas miss the group or ``reader``'s membership of it (``lagging``),
        asks groups once, applies the answer as its events would be applied, and commits.
        Returns whether there was an answer to apply: then the caller reads the rows again."""
        if not lagging(group, member, reader, members_only=members_only):
            return False
        answer = await self.fetch(group_id, reader)
        if answer is None:
            return False
        # The handlers of groups' own events: the stale-update rule is theirs.
        await on_group_changed(session, _as_event(GroupChanged, "group.updated", group_id, answer.group))
        if answer.membership is not None:
            await on_membership_changed(
                session, _as_event(MembershipChanged, "membership.updated", group_id, answer.membership)
            )
        await session.commit()
        return True


def lagging(
    group: GroupReplica | None, member: MembershipReplica | None, reader: Principal, *, members_only: bool
) -> bool:
    """Whether the replicas may be behind groups for this decision: no row for the group, or
    none for the reader's membership where one would change the answer (in every group when
    ``members_only``, as for posting; else in a group that is not open). A group of the other
    context, or under moderation, is refused whatever groups would add."""
    if group is None:
        return True
    if member is not None or group.context != reader.context or group.moderation is not None:
        return False
    return members_only or group.visibility != "open"


def _as_event(model: type[Data], event_type: str, group_id: uuid.UUID, data: Data) -> IdEvent[Data]:
    """Groups' answer as the event that would have carried it, for feed's own handlers."""
    return IdEvent[model](  # type: ignore[valid-type]
        id=new_id(), type=event_type, source="groups", time=utcnow(), subject=group_id, data=data
    )
