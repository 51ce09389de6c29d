"""The one synchronous call moderation makes: at filing, it asks the reported content's owner
whether the reporter sees it, and what it says (decision 0032, "The lookup").

Feed answers for posts and comments, groups for groups, each behind the internal token and by
its own visibility rule, so a missing target and one the reporter may not see come back as the
same 404, which moderation passes on as its own ``not-found``. An owner that does not answer
in ``lookup_timeout_seconds``, or answers anything else, makes filing a 503
``target-unavailable`` with ``Retry-After: 1``: nothing is written without the evidence.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kit.errors import NotFound, ServiceUnavailable
from services.moderation.settings import ModerationSettings

log = logging.getLogger("services.moderation.lookup")

NOT_FOUND = "No such post, comment, persona or group."
"""The one answer for a target that is missing, of the other context, or not visible to the
reporter, wherever the refusal comes from."""


def not_found() -> NotFound:
    return NotFound(NOT_FOUND)


def target_unavailable() -> ServiceUnavailable:
    error = ServiceUnavailable("The reported content's service did not answer; try again.", retry_after=1)
    error.slug = "target-unavailable"
    return error


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")


A = TypeVar("A", bound=_Answer)


class ContentAnswer(_Answer):
    """Feed's answer for a post or a comment."""

    item_type: Literal["post", "comment"]
    item_id: uuid.UUID
    post_id: uuid.UUID
    author_id: uuid.UUID
    context: Literal["professional", "personal"]
    group_id: uuid.UUID | None = None
    body: str = Field(max_length=100_000)
    links: list[str] = Field(default_factory=list, max_length=1000)
    created_at: datetime


class GroupAnswer(_Answer):
    """Groups' answer for a group."""

    group_id: uuid.UUID
    context: Literal["professional", "personal"]
    name: str = Field(max_length=1000)
    purpose: str = Field(max_length=10_000)
    owner_ids: list[uuid.UUID] = Field(default_factory=list)
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Item:
    """A reported item as its owner described it: what the evidence keeps."""

    item_type: str
    item_id: uuid.UUID
    context: str
    author_id: uuid.UUID | None
    post_id: uuid.UUID | None
    group_id: uuid.UUID | None
    body: str
    links: tuple[str, ...]
    created_at: datetime | None


class Lookup:
    """The calls at filing, through the app's HTTP client."""

    def __init__(self, client: httpx.AsyncClient, settings: ModerationSettings) -> None:
        self.client = client
        self.settings = settings

    async def content(
        self, item_type: Literal["post", "comment"], item_id: uuid.UUID, reader: uuid.UUID
    ) -> Item:
        path = f"/internal/moderation/{item_type}s/{item_id}"
        answer = await self._get(self.settings.feed_url, path, reader, ContentAnswer)
        if answer.item_type != item_type or answer.item_id != item_id:
            log.warning("feed answered a %s lookup with another item", item_type)
            raise target_unavailable()
        return Item(
            item_type=answer.item_type,
            item_id=answer.item_id,
            context=answer.context,
            author_id=answer.author_id,
            post_id=answer.post_id,
            group_id=answer.group_id,
            body=answer.body,
            links=tuple(answer.links),
            created_at=answer.created_at,
        )

    async def group(self, group_id: uuid.UUID, reader: uuid.UUID) -> Item:
        answer = await self._get(
            self.settings.groups_url, f"/internal/moderation/groups/{group_id}", reader, GroupAnswer
        )
        if answer.group_id != group_id:
            log.warning("groups answered a group lookup with another group")
            raise target_unavailable()
        return Item(
            item_type="group",
            item_id=answer.group_id,
            context=answer.context,
            author_id=None,
            post_id=None,
            group_id=answer.group_id,
            body=f"{answer.name}\n\n{answer.purpose}",
            links=(),
            created_at=answer.created_at,
        )

    async def _get(self, base: str, path: str, reader: uuid.UUID, model: type[A]) -> A:
        token = self.settings.internal_token.get_secret_value()
        try:
            resp = await self.client.get(
                base.rstrip("/") + path,
                params={"reader": str(reader)},
                headers={"Authorization": f"Bearer {token}"},
                timeout=self.settings.lookup_timeout_seconds,
            )
        except httpx.HTTPError as exc:
            log.warning("lookup %s failed: %s", path.rsplit("/", 2)[-2], type(exc).__name__)
            raise target_unavailable() from exc
        if resp.status_code == 404:
            raise not_found()
        if resp.status_code != 200:
            log.warning("lookup %s answered %d", path.rsplit("/", 2)[-2], resp.status_code)
            raise target_unavailable()
        try:
            return model.model_validate_json(resp.content)
        except ValidationError as exc:
            log.warning("lookup %s answered an unexpected body", path.rsplit("/", 2)[-2])
            raise target_unavailable() from exc
