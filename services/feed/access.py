"""Who may read, write, moderate and pin: the checks the flows and routes share."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Uuid, and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.contexts import CONTEXTS, Context
from domain.principal import Principal
from kit.errors import Forbidden, NotFound
from services.feed.content import Writer, writer_columns, written_by
from services.feed.disclosure import SEEN_BY_STRANGER, stranger
from services.feed.models import GroupReplica, MembershipReplica, PersonaReplica, Post
from services.feed.timelines import rows_seen_by

STAFF_ROLES = ("admin", "moderator")
ANNOUNCER_ROLES = ("admin", "communications")


# The statements of every write's checks, built once with bound parameters (as the timelines'
# are): building the visibility rule's expression and its cache key anew for each request cost
# about as much CPU as running the statement (decision 0049).
_READER: Any = bindparam("reader", type_=Uuid())
_CONTEXT: Any = bindparam("context")
_POST: Any = bindparam("post", type_=Uuid())
_GROUP: Any = bindparam("group", type_=Uuid())
_VISIBLE_POST = rows_seen_by(_READER, _CONTEXT).where(col(Post.id) == _POST)
_VISIBLE_POST_DISCLOSED = _VISIBLE_POST.add_columns(SEEN_BY_STRANGER)
_VISIBLE_POST_WRITTEN = _VISIBLE_POST_DISCLOSED.add_columns(*writer_columns(_READER, _CONTEXT))
_GROUP_AND_MEMBER = (
    select(GroupReplica, MembershipReplica)
    .outerjoin(
        MembershipReplica,
        and_(
            col(MembershipReplica.group_id) == col(GroupReplica.id),
            col(MembershipReplica.persona_id) == _READER,
        ),
    )
    .where(col(GroupReplica.id) == _GROUP)
    .execution_options(populate_existing=True)
)
_GROUP_AND_MEMBER_SHARED = _GROUP_AND_MEMBER.with_for_update(read=True, of=GroupReplica)
_GROUP_AND_MEMBER_WRITTEN = _GROUP_AND_MEMBER_SHARED.add_columns(*writer_columns(_READER, _CONTEXT))


def is_staff(caller: Principal) -> bool:
    return any(caller.has_role(role) for role in STAFF_ROLES)


def can_announce(caller: Principal) -> bool:
    return any(caller.has_role(role) for role in ANNOUNCER_ROLES)


async def visible_post(
    session: AsyncSession,
    caller: Principal,
    post_id: uuid.UUID,
    *,
    disclosed: bool = False,
    written: bool = False,
) -> Any:
    """The post as a ``timelines.visible_posts`` row, or 404 for a post the caller may not see
    (of the other context, in a group they cannot read, not shown: deleted, by an inactive
    author, or moderated: hidden or held but from its author, removed, in a moderated group).
    ``disclosed``: the row has ``seen_by_stranger`` (``disclosure.SEEN_BY_STRANGER``), for a
    write whose event may tell the post's content; ``written`` (with ``disclosed``): it ends
    with the caller as a writer (``content.written_by``), for a write that would read that in
    a statement of its own (decision 0054)."""
    assert caller.persona_id is not None and caller.context is not None
    params = {"reader": caller.persona_id, "context": caller.context, "post": post_id}
    if disclosed:
        params |= stranger(caller.context)
    query = _VISIBLE_POST_WRITTEN if written else _VISIBLE_POST_DISCLOSED if disclosed else _VISIBLE_POST
    row = (await session.execute(query, params)).first()
    if row is None:
        raise NotFound("No post with this id.")
    return row


async def as_reader(session: AsyncSession, persona_id: uuid.UUID) -> Principal:
    """A persona as a reader, from the replica, as its token would make it (roles aside: the
    rule of who sees what takes none), for another service's question of what that persona
    sees (moderation's lookups, media's files); 404 for a persona unknown or not active, who
    sees nothing."""
    persona = await session.get(PersonaReplica, persona_id)
    if persona is None or persona.status != "active" or persona.context not in CONTEXTS:
        raise NotFound("No such item.")
    context: Context = "personal" if persona.context == "personal" else "professional"
    return Principal(
        subject=str(persona_id),
        persona_id=persona_id,
        context=context,
        scopes=frozenset(),
        roles=frozenset(),
        token_id="",
        issued_at=0,
        expires_at=0,
    )


async def group_role(session: AsyncSession, persona_id: uuid.UUID, group_id: uuid.UUID | None) -> str | None:
    if group_id is None:
        return None
    membership = await session.get(MembershipReplica, (persona_id, group_id))
    return membership.role if membership is not None else None


async def ensure_writable(session: AsyncSession, post: Post) -> None:
    """An archived group is read-only: no edits, comments or reactions on its posts."""
    if post.group_id is None:
        return
    group = await session.get(GroupReplica, post.group_id)
    if group is not None and group.archived:
        raise Forbidden("The group is archived and read-only.", slug="group-archived")


async def may_moderate(session: AsyncSession, caller: Principal, post: Post) -> bool:
    """Staff anywhere, and a group's owners and moderators for that group's posts."""
    if is_staff(caller):
        return True
    assert caller.persona_id is not None
    return await group_role(session, caller.persona_id, post.group_id) in ("owner", "moderator")


async def group_and_member(
    session: AsyncSession, persona_id: uuid.UUID, group_id: uuid.UUID, *, share: bool = False
) -> tuple[GroupReplica | None, MembershipReplica | None]:
    """Feed's replica of a group and of ``persona_id``'s membership of it, in one statement,
    read afresh (``Groups.catch_up`` may just have changed them). ``share``: the group's row
    stays locked, shared, until the transaction ends."""
    query = _GROUP_AND_MEMBER_SHARED if share else _GROUP_AND_MEMBER
    row = (await session.execute(query, {"reader": persona_id, "group": group_id})).first()
    return (row[0], row[1]) if row is not None else (None, None)


async def group_member_and_writer(
    session: AsyncSession, writer: Principal, group_id: uuid.UUID
) -> tuple[GroupReplica | None, MembershipReplica | None, Writer | None]:
    """``group_and_member`` for a write to the group (its row stays locked, shared), with the
    writer (``content.written_by``) in the same statement (decision 0054); all None when there
    is no such group."""
    assert writer.persona_id is not None and writer.context is not None
    params = {"reader": writer.persona_id, "group": group_id, "context": writer.context}
    row = (await session.execute(_GROUP_AND_MEMBER_WRITTEN, params)).first()
    return (row[0], row[1], written_by(row)) if row is not None else (None, None, None)
