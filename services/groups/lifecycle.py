"""A group's life: creating it with its charter, changing it, archiving and restoring it, and
deleting it for good. Each flow checks who may act, changes the rows, publishes the group's
event and its record for the records service (``records``) in the same transaction and (but
for a create, which the idempotent-create mechanism commits) commits."""

from __future__ import annotations

import uuid

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from domain.principal import Principal
from kit.errors import APIError, Forbidden, NotFound
from kit.idempotency import Created, Taken
from kit.outbox import Outbox
from kit.search import language
from kit.timeutil import utcnow
from services.groups import membership, records, search
from services.groups.access import Access
from services.groups.models import Group, PersonaReplica
from services.groups.schemas import GroupCreate, GroupPublic, GroupUpdate, group_public

HANDLE_TAKEN = "A group with this handle exists in this context."


class PreconditionFailed(APIError):
    status, title, slug = 412, "Precondition Failed", "precondition-failed"


def etag(group: Group) -> str:
    """The group's version as an entity tag: it changes whenever ``updated_at`` does."""
    return f'"{group.id.hex[:8]}-{int(group.updated_at.timestamp() * 1_000_000):x}"'


def etag_matches(tag: str, header: str) -> bool:
    """Whether an ``If-Match`` or ``If-None-Match`` header names ``tag`` (or is ``*``)."""
    return header.strip() == "*" or tag in {t.strip() for t in header.split(",")}


def location(group: Group) -> str:
    return f"/api/v1/groups/{group.id}"


async def check_stewards(
    session: AsyncSession, stewards: list[uuid.UUID], context: str, known: uuid.UUID
) -> list[str]:
    """Stewards are active personas of the group's context; any other id answers as a
    persona that does not exist."""
    others = [s for s in stewards if s != known]
    if others:
        found = set(
            (
                await session.scalars(
                    select(PersonaReplica.id).where(
                        col(PersonaReplica.id).in_(others),
                        col(PersonaReplica.context) == context,
                        col(PersonaReplica.status) == "active",
                    )
                )
            ).all()
        )
        missing = [s for s in others if s not in found]
        if missing:
            raise NotFound("No persona with id {id} in this context.", params={"id": missing[0]})
    return [str(s) for s in dict.fromkeys(stewards)]


def normal_tags(tags: list[str]) -> list[str]:
    """Lower case, each once, in the order given."""
    return list(dict.fromkeys(t.lower() for t in tags))


async def create(
    session: AsyncSession, outbox: Outbox, caller: Principal, body: GroupCreate
) -> Created[GroupPublic]:
    """Makes the group in ``session`` without committing (kit.idempotency commits it with the
    key's answer). The group's context is the caller's; the caller becomes its owner and,
    unless the charter names others, its steward. A taken handle raises ``Taken``. Its
    language is the one declared, else the one its purpose and charter are written in."""
    assert caller.persona_id is not None and caller.context is not None
    charter = body.charter
    lang = search.group_language(
        body.lang,
        search.text_of(body.purpose, charter.objective, charter.audience, charter.success_indicators),
    )
    stewards = await check_stewards(
        session, body.charter.stewards or [caller.persona_id], caller.context, caller.persona_id
    )
    taken = await session.scalar(
        select(Group.id).where(col(Group.context) == caller.context, col(Group.handle) == body.handle)
    )
    if taken is not None:
        raise Taken
    group = Group(
        context=caller.context,
        name=body.name,
        handle=body.handle,
        purpose=body.purpose,
        description=body.description,
        tags=normal_tags(body.tags),
        visibility=body.visibility,
        objective=body.charter.objective,
        audience=body.charter.audience,
        success_indicators=body.charter.success_indicators,
        review_at=body.charter.review_at,
        stewards=stewards,
        lang=lang,
        member_count=0,
        created_by=caller.persona_id,
    )
    session.add(group)
    await session.flush()
    await outbox.publish(session, "group.created", str(group.id), membership.group_event(group))
    await records.publish_group(session, outbox, group, "created")
    await membership.add(session, outbox, group, caller.persona_id, "owner")
    await session.refresh(group)
    return Created(group_public(group, "owner"), location(group))


async def update(
    session: AsyncSession, outbox: Outbox, access: Access, body: GroupUpdate, if_match: str | None
) -> Group:
    """Owners (and administrators) only; the context and handle never change. With
    ``if_match``, a change based on a stale copy is refused with 412. A ``lang`` given is
    checked and kept (``null``: detected again); a new text without one may change the
    language detected (``search.redetected``)."""
    declared = language(body.lang)
    access.require("owner", admin=True, action="change its settings")
    await access.relock(session)
    access.require("owner", admin=True, action="change its settings")
    access.require_writable()
    group = access.group
    if if_match is not None and not etag_matches(etag(group), if_match):
        raise PreconditionFailed("The group changed since it was read; read it again.")
    text_before = search.group_text(group)
    changes = body.model_dump(exclude_unset=True, exclude={"charter", "lang"})
    if "tags" in changes:
        changes["tags"] = normal_tags(changes["tags"])
    for name, value in changes.items():
        setattr(group, name, value)
    if body.charter is not None:
        charter = body.charter.model_dump(exclude_unset=True)
        if "stewards" in charter:
            charter["stewards"] = await check_stewards(
                session, body.charter.stewards or [], group.context, access.persona_id
            )
        for name, value in charter.items():
            setattr(group, name, value)
    if "lang" in body.model_fields_set:
        group.lang = declared or search.group_language(None, search.group_text(group))
    elif search.group_text(group) != text_before:
        group.lang = search.redetected(group.lang, search.group_text(group))
    group.updated_at = utcnow()
    session.add(group)
    await session.flush()
    await outbox.publish(session, "group.updated", str(group.id), membership.group_event(group))
    await records.publish_group(session, outbox, group, "updated")
    await session.commit()
    return group


async def delete_for_good(session: AsyncSession, outbox: Outbox, access: Access) -> None:
    """Administrators only: the group and its memberships go. Not a group under moderation,
    which is kept for the record until moderation restores it."""
    group = access.group
    if not access.is_admin:
        raise Forbidden("Only administrators delete a group for good.")
    access.require_unmoderated()
    now = utcnow()
    data = {"id": str(group.id), "context": group.context, "updated_at": now.isoformat()}
    await records.publish_group(session, outbox, group, "deleted", now)  # the row's last state
    await session.execute(delete(Group).where(col(Group.id) == group.id))
    await outbox.publish(session, "group.deleted", str(group.id), data)
    await session.commit()


async def archive(session: AsyncSession, outbox: Outbox, access: Access) -> None:
    """Owners (and administrators) make the group read-only; archiving again changes nothing."""
    access.require("owner", admin=True, action="archive it")
    access.require_unmoderated()
    group = access.group
    if group.archived_at is not None:
        return
    group.archived_at = group.updated_at = utcnow()
    session.add(group)
    await session.flush()
    await outbox.publish(session, "group.archived", str(group.id), membership.group_event(group))
    await records.publish_group(session, outbox, group, "archived")
    await session.commit()


async def restore(session: AsyncSession, outbox: Outbox, access: Access) -> Group:
    """Owners (and administrators) make an archived group writable again."""
    access.require("owner", admin=True, action="restore it")
    access.require_unmoderated()
    group = access.group
    if group.archived_at is not None:
        group.archived_at = None
        group.updated_at = utcnow()
        session.add(group)
        await session.flush()
        await outbox.publish(session, "group.restored", str(group.id), membership.group_event(group))
        await records.publish_group(session, outbox, group, "restored")
        await session.commit()
    return group
