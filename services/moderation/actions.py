"""The actions of decision 0032 ("Actions"): who may take each, on what, the events that tell
the owners to apply it, the notices it gives, and its undo.

Moderation applies nothing itself: feed, groups and identity apply each action to their own
rows from its event. Every event's data carries the context (webhooks filter on it), the
report, the action, the target, the persona concerned and ``until``, and never a reporter, a
moderator, an account or text. What a moderator did, and why, goes to identity's audit log
as ``internal.moderation.audit``, which never reaches a webhook.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from kit.errors import Forbidden, Unprocessable
from kit.outbox import Outbox
from kit.timeutil import utcnow
from services.moderation.models import Action, GroupRoleReplica, Notice, Report
from services.moderation.staff import Actor

CONTENT = ("post", "comment")
PERSONA_ACTIONS = ("warn", "limit", "suspend_persona")
STAFF_ONLY = ("warn", "limit", "suspend_persona", "revert")
NO_NOTICE = ("none", "release", "revert")

# What each action applies to: the report's target types, and the kinds of report.
APPLIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "none": (("post", "comment", "persona", "group"), ("report", "system", "appeal")),
    "hide": (("post", "comment", "group"), ("report", "system")),
    "remove": (("post", "comment", "group"), ("report", "system")),
    "lock": (("post",), ("report", "system")),
    "warn": (("post", "comment", "persona", "group"), ("report", "system")),
    "limit": (("post", "comment", "persona"), ("report", "system")),
    "suspend_persona": (("post", "comment", "persona"), ("report", "system")),
    "release": (("post", "comment"), ("system",)),
    "revert": (("post", "comment", "persona", "group"), ("appeal",)),
}

# The event of each action on each kind of target, and the event that undoes it.
_CONTENT_EVENTS = {"hide": "hidden", "remove": "removed", "release": "released"}
_GROUP_EVENTS = {"hide": "hidden", "remove": "removed"}
_PERSONA_EVENTS = {"warn": "warned", "limit": "limited", "suspend_persona": "suspended"}
_UNDO = {
    ("hide", "content"): "moderation.content.restored",
    ("remove", "content"): "moderation.content.restored",
    ("hide", "group"): "moderation.group.restored",
    ("remove", "group"): "moderation.group.restored",
    ("lock", "post"): "moderation.post.unlocked",
    ("limit", "persona"): "moderation.persona.unlimited",
    ("suspend_persona", "persona"): "moderation.persona.reinstated",
}


def check(actor: Actor, report: Report, kind: str, until: datetime | None) -> None:
    """Refuses an action the actor may not take (403 ``action-not-allowed``), one that does not
    apply to the report (422 ``action-not-applicable``), and a wrong ``until`` (422
    ``duration-required``, or ``validation``)."""
    staff_only = kind in STAFF_ONLY or (kind in ("hide", "remove") and report.target_type == "group")
    if staff_only and not actor.is_staff:
        raise Forbidden(
            "A group's owners and moderators cannot {action}.",
            params={"action": kind.replace("_", " ")},
            slug="action-not-allowed",
        )
    targets, kinds = APPLIES[kind]
    if report.target_type not in targets or report.kind not in kinds:
        raise Unprocessable(
            "The action {action} does not apply to a {kind} on a {target}.",
            params={"action": kind, "kind": report.kind, "target": report.target_type},
            slug="action-not-applicable",
        )
    if kind in PERSONA_ACTIONS and report.subject_id is None and report.target_type != "group":
        raise Unprocessable("The report names no persona to act on.", slug="action-not-applicable")
    if kind == "limit" and until is None:
        raise Unprocessable("A limit needs its end: `until`.", slug="duration-required")
    if until is not None:
        if kind not in ("limit", "suspend_persona"):
            raise _until_error("Only a limit or a suspension has an end.")
        if until <= utcnow():
            raise _until_error("`until` must be in the future.")


def _until_error(message: str) -> Unprocessable:
    return Unprocessable(
        "The request has invalid fields.",
        errors=[{"location": "body.until", "message": message, "code": "value_error"}],
    )


def new_action(
    actor: Actor, report: Report, kind: str, reason: str, until: datetime | None, post_id: uuid.UUID | None
) -> Action:
    """The action row: a persona action acts on the persona concerned, any other on the
    report's target (a revert on the appealed action's)."""
    target_type, target_id = report.target_type, report.target_id
    if kind in ("limit", "suspend_persona") or (kind == "warn" and report.target_type != "group"):
        assert report.subject_id is not None
        target_type, target_id = "persona", report.subject_id
    return Action(
        report_id=report.id,
        moderator_id=actor.persona_id,
        as_role=actor.as_role,
        group_id=actor.group_id,
        kind=kind,
        target_type=target_type,
        target_id=target_id,
        post_id=post_id if target_type == "comment" else None,
        subject_id=report.subject_id,
        context=report.context,
        reason=reason,
        until=until,
    )


def _common(
    action: Action, target_type: str, target_id: uuid.UUID, subject_id: uuid.UUID | None
) -> dict[str, Any]:
    return {
        "context": action.context,
        "report_id": str(action.report_id),
        "action_id": str(action.id),
        "target_type": target_type,
        "target_id": str(target_id),
        "subject_id": None if subject_id is None else str(subject_id),
        "until": None if action.until is None else action.until.isoformat(),
    }


def report_event(report: Report, action: Action | None = None) -> dict[str, Any]:
    """``moderation.report.created`` / ``.resolved``: no reporter, no moderator, no text."""
    return {
        "context": report.context,
        "report_id": str(report.id),
        "action_id": None if action is None else str(action.id),
        "target_type": report.target_type,
        "target_id": str(report.target_id),
        "subject_id": None if report.subject_id is None else str(report.subject_id),
        "until": None if action is None or action.until is None else action.until.isoformat(),
        "kind": report.kind,
        "category": report.category,
        "action": None if action is None else action.kind,
    }


async def group_owners(session: AsyncSession, group_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await session.scalars(
        select(col(GroupRoleReplica.persona_id))
        .where(col(GroupRoleReplica.group_id) == group_id, col(GroupRoleReplica.role) == "owner")
        .order_by(col(GroupRoleReplica.persona_id))
    )
    return list(rows.all())


async def affected(session: AsyncSession, action: Action) -> list[uuid.UUID]:
    """The personas an action concerns: the author or the persona, or a group's owners."""
    if action.target_type == "group":
        return await group_owners(session, action.target_id)
    return [action.subject_id] if action.subject_id is not None else []


def _events(action: Action, personas: list[uuid.UUID]) -> list[tuple[str, str, dict[str, Any]]]:
    """(type, subject, data) of the events that tell the owners to apply ``action``."""
    kind = action.kind
    if kind in PERSONA_ACTIONS:
        return [
            (f"moderation.persona.{_PERSONA_EVENTS[kind]}", str(p), _common(action, "persona", p, p))
            for p in personas
        ]
    target = str(action.target_id)
    if action.target_type in CONTENT and kind in _CONTENT_EVENTS:
        data = {
            **_common(action, action.target_type, action.target_id, action.subject_id),
            "post_id": _post_id(action),
        }
        return [(f"moderation.content.{_CONTENT_EVENTS[kind]}", target, data)]
    if action.target_type == "group" and kind in _GROUP_EVENTS:
        data = _common(action, "group", action.target_id, None)
        return [(f"moderation.group.{_GROUP_EVENTS[kind]}", target, data)]
    if kind == "lock":
        return [
            ("moderation.post.locked", target, _common(action, "post", action.target_id, action.subject_id))
        ]
    return []


def _post_id(action: Action) -> str | None:
    return None if action.target_type != "comment" or action.post_id is None else str(action.post_id)


def undo_events(action: Action) -> list[tuple[str, str, dict[str, Any]]]:
    """The events that undo ``action`` (none for a warning, a release or a dismissal)."""
    family = "content" if action.target_type in CONTENT and action.kind != "lock" else action.target_type
    event_type = _UNDO.get((action.kind, family))
    if event_type is None:
        return []
    target = str(action.target_id)
    if family == "content":
        data = {
            **_common(action, action.target_type, action.target_id, action.subject_id),
            "post_id": _post_id(action),
        }
    elif family == "persona":
        data = _common(action, "persona", action.target_id, action.target_id)
    elif family == "group":
        data = _common(action, "group", action.target_id, None)
    else:
        data = _common(action, "post", action.target_id, action.subject_id)
    return [(event_type, target, data)]


def audit_event(action: Action) -> dict[str, Any]:
    """``internal.moderation.audit``: identity records it with the staff persona as actor, or
    ``group:<id>`` for a group's role, never a personal persona."""
    return {
        "context": action.context,
        "report_id": str(action.report_id),
        "action_id": str(action.id),
        "kind": action.kind,
        "reason": action.reason,
        "target_type": action.target_type,
        "target_id": str(action.target_id),
        "subject_id": None if action.subject_id is None else str(action.subject_id),
        "moderator_id": str(action.moderator_id)
        if action.as_role == "staff" and action.moderator_id
        else None,
        "group_id": str(action.group_id) if action.as_role == "group" and action.group_id else None,
    }


async def take(
    session: AsyncSession,
    outbox: Outbox,
    action: Action,
    report: Report,
    rules: list[int],
    appeal_days: int,
) -> None:
    """Adds the action, its events, its audit entry and its notices to the caller's
    transaction (the report is already resolved by it)."""
    session.add(action)
    await session.flush()
    personas = await affected(session, action)
    events = _events(action, personas)
    events.append(("internal.moderation.audit", str(action.id), audit_event(action)))
    events.append(("moderation.report.resolved", str(report.id), report_event(report, action)))
    await outbox.publish_many(session, events)
    if action.kind in NO_NOTICE:
        return
    appeal_by = action.created_at + timedelta(days=appeal_days)
    for persona_id in personas:
        session.add(
            Notice(
                persona_id=persona_id,
                action_id=action.id,
                category=report.category,
                rules=rules,
                kind=action.kind,
                target_type=report.target_type,
                target_id=report.target_id,
                until=action.until,
                context=report.context,
                appeal_by=appeal_by,
            )
        )


async def revert(session: AsyncSession, outbox: Outbox, action_id: uuid.UUID, by: uuid.UUID) -> bool:
    """Marks the appealed action reverted and publishes its undo, unless it was reverted
    already or has lifted at its ``until`` (then nothing is left to undo). One conditional
    UPDATE, so that two upheld appeals of one action undo it once."""
    now = utcnow()
    result: Any = await session.execute(
        update(Action)
        .where(col(Action.id) == action_id, col(Action.reverted_at).is_(None))
        .values(reverted_at=now, reverted_by=by)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:
        return False
    action = await session.get(Action, action_id, populate_existing=True)
    assert action is not None
    if action.lifted_at is None:
        await outbox.publish_many(session, undo_events(action))
    return True


async def lift(session: AsyncSession, outbox: Outbox, action: Action) -> None:
    """Ends a limit or a suspension at its ``until``: marks it lifted and publishes its undo
    (``moderation.persona.unlimited`` / ``.reinstated``). A conditional UPDATE: an action
    lifted or reverted meanwhile is left alone. The caller commits."""
    result: Any = await session.execute(
        update(Action)
        .where(
            col(Action.id) == action.id, col(Action.lifted_at).is_(None), col(Action.reverted_at).is_(None)
        )
        .values(lifted_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount:
        await outbox.publish_many(session, undo_events(action))
