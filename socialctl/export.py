"""A persona's own data in one JSON document: the person's right of access."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from socialctl.api import Api, ApiError

# Lists of the signed-in persona's own content, tried in order; the first the API serves wins.
# The feed publishes a per-persona timeline as it grows; until then the home timeline holds
# every own post, filtered here by author.
POST_SOURCES = ("/api/v1/timelines/personas/{persona_id}", "/api/v1/timelines/home")
ACCOUNT_FIELDS = ("account_id", "email", "status", "roles", "created_at")


async def optional_list(
    api: Api, path: str, params: dict[str, Any] | None = None
) -> list[dict[str, Any]] | None:
    """Every item of a list, or None when this API has no such list (404)."""
    try:
        return await api.collect(path, params)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def own_persona(me: dict[str, Any]) -> dict[str, Any]:
    """The signed-in persona in a ``/api/v1/me`` answer: the one its ``context`` names."""
    persona = me.get(str(me.get("context")))
    if not isinstance(persona, dict):
        raise ApiError("Unexpected answer", "GET /api/v1/me did not show the signed-in persona.")
    return persona


async def export(api: Api, step: Callable[[str], None] = lambda what: None) -> dict[str, Any]:
    """Only the signed-in persona's data: the account too for the professional persona, never
    anything of the other persona."""
    step("account and persona")
    me: dict[str, Any] = await api.call("GET", "/api/v1/me")
    current = own_persona(me)
    persona_id = str(current["id"])
    context = current.get("kind")
    account = {k: me.get(k) for k in ACCOUNT_FIELDS} if context == "professional" else None
    unavailable: list[str] = []

    async def listing(name: str, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        step(name)
        items = await optional_list(api, path, params)
        if items is None:
            unavailable.append(path)
            return []
        return items

    groups = await listing("groups", "/api/v1/groups", {"mine": "true"})
    following = await listing("following", "/api/v1/following")
    followers = await listing("followers", "/api/v1/followers")
    posts: list[dict[str, Any]] = []
    posts_source = None
    for template in POST_SOURCES:
        step("posts")
        path = template.format(persona_id=persona_id)
        items = await optional_list(api, path)
        if items is not None:
            posts = [p for p in items if str((p.get("author") or {}).get("id")) == persona_id]
            posts_source = path
            break
        unavailable.append(path)
    return {
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "api": api.config.url,
        "persona_id": persona_id,
        "context": context,
        "account": account,
        "persona": current,
        "memberships": [
            {"group_id": g["id"], "handle": g.get("handle"), "name": g.get("name"), "role": g.get("my_role")}
            for g in groups
        ],
        "groups": groups,
        "following": following,
        "followers": followers,
        "posts": posts,
        "sources": {"posts": posts_source, "unavailable": unavailable},
    }
