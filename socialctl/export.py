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


async def export(api: Api, step: Callable[[str], None] = lambda what: None) -> dict[str, Any]:
    step("account and personas")
    me: dict[str, Any] = await api.call("GET", "/api/v1/me")
    persona_id = api.config.persona_id
    current = next(
        (p for p in (me.get("professional"), me.get("personal")) if p and str(p.get("id")) == persona_id),
        me.get("professional"),
    )
    assert current is not None
    persona_id = str(current["id"])
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
        "context": current.get("kind"),
        "account": {k: v for k, v in me.items() if k not in ("professional", "personal")},
        "personas": {"professional": me.get("professional"), "personal": me.get("personal")},
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
