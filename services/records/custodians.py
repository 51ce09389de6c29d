"""The calls records makes to identity (decision 0033, "Custodians"): the one resolution of an
account to both its personas, which identity audits with the officer, the matter and the
reason; and, for a persona's own export, the personas of its owner it may export.

Identity answers behind the internal token (``/internal/records/...``). An account identity
does not know is a 422 ``unknown-custodian`` naming it; identity not answering, or answering
anything unexpected, is a 503 ``identity-unavailable`` with ``Retry-After``: nothing is written
without the resolution.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kit.errors import ServiceUnavailable, Unprocessable
from services.records.settings import RecordsSettings

log = logging.getLogger("services.records.custodians")

Purpose = Literal["hold", "export"]


class Profile(BaseModel):
    """A persona as identity holds it: what an export's ``profiles`` file lists."""

    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    context: Literal["professional", "personal"]
    handle: str = Field(max_length=30)
    display_name: str = Field(max_length=100)
    job_title: str | None = None
    department: str | None = None
    location: str | None = None
    bio: str | None = None
    pronouns: str | None = None
    skills: list[str] = Field(default_factory=list)
    interests: list[str] = Field(default_factory=list)
    discoverable: bool = True
    status: str = "active"


class Custodian(BaseModel):
    model_config = ConfigDict(extra="ignore")

    account_id: uuid.UUID
    personas: list[Profile] = Field(max_length=2)


class _Custodians(BaseModel):
    model_config = ConfigDict(extra="ignore")

    custodians: list[Custodian]
    unknown: list[uuid.UUID] = Field(default_factory=list)


class _Own(BaseModel):
    model_config = ConfigDict(extra="ignore")

    personas: list[Profile] = Field(min_length=1, max_length=2)


M = TypeVar("M", bound=BaseModel)


def identity_unavailable() -> ServiceUnavailable:
    error = ServiceUnavailable("Identity did not answer; try again.", retry_after=1)
    error.slug = "identity-unavailable"
    return error


@dataclass(frozen=True, slots=True)
class Identity:
    """The calls to identity, through the app's HTTP client."""

    client: httpx.AsyncClient
    settings: RecordsSettings

    async def custodians(
        self,
        account_ids: list[uuid.UUID],
        *,
        matter_id: uuid.UUID,
        officer_id: uuid.UUID,
        reason: str,
        purpose: Purpose,
    ) -> list[Custodian]:
        """Each account with its personas (one or two), in the order asked. Identity writes
        ``records.custodians.resolved`` to its audit log before it answers."""
        body = {
            "account_ids": [str(a) for a in account_ids],
            "matter_id": str(matter_id),
            "officer_id": str(officer_id),
            "reason": reason,
            "purpose": purpose,
        }
        answer = await self._call("POST", "/internal/records/custodians", _Custodians, json=body)
        if answer.unknown:
            raise Unprocessable(
                "Identity knows no account with these ids.",
                slug="unknown-custodian",
                errors=[
                    {"location": "body.custodians", "message": str(a), "code": "unknown-custodian"}
                    for a in answer.unknown
                ],
            )
        by_id = {c.account_id: c for c in answer.custodians}
        if set(by_id) != set(account_ids):
            log.warning("identity answered other accounts than asked")
            raise identity_unavailable()
        return [by_id[a] for a in account_ids]

    async def own_personas(self, persona_id: uuid.UUID) -> list[Profile]:
        """The personas a persona's own export covers: from a professional persona, both of
        its owner's; from a personal one, itself alone (identity decides, by the persona's
        kind)."""
        answer = await self._call("GET", f"/internal/records/owners/{persona_id}", _Own)
        if persona_id not in {p.id for p in answer.personas}:
            log.warning("identity answered another persona than asked")
            raise identity_unavailable()
        return answer.personas

    async def _call(self, method: str, path: str, model: type[M], **kwargs: Any) -> M:
        token = self.settings.internal_token.get_secret_value()
        try:
            resp = await self.client.request(
                method,
                self.settings.identity_url.rstrip("/") + path,
                headers={"Authorization": f"Bearer {token}"},
                timeout=self.settings.call_timeout_seconds,
                **kwargs,
            )
        except httpx.HTTPError as exc:
            log.warning("identity call failed: %s", type(exc).__name__)
            raise identity_unavailable() from exc
        if resp.status_code != 200:
            log.warning("identity answered %d", resp.status_code)
            raise identity_unavailable()
        try:
            return model.model_validate_json(resp.content)
        except ValidationError as exc:
            log.warning("identity answered an unexpected body")
            raise identity_unavailable() from exc
