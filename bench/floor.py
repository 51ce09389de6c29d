"""The floor: a FastAPI endpoint that returns 20 post-shaped objects from memory, no database
and no token. Whatever the suite serves is measured against what this serves on the same
stack (uvicorn, one worker, same machine, same run).

The same page is also served at feed's home timeline path, and identity's published keys
(read from ``BENCH_JWKS``) at its JWKS path, so that a gateway pointed at this process measures
the gateway's own cost: token check, rate limit, proxying."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from pydantic import BaseModel


class Author(BaseModel):
    id: uuid.UUID
    handle: str
    display_name: str


class PostShape(BaseModel):
    id: uuid.UUID
    author: Author
    context: str
    audience: str
    group_id: uuid.UUID | None
    body: str
    tags: list[str]
    reactions: dict[str, int]
    my_reactions: list[str]
    comment_count: int
    created_at: datetime
    updated_at: datetime


class PageShape(BaseModel):
    items: list[PostShape]
    next_cursor: str | None


def _page() -> PageShape:
    now = datetime.now(UTC)
    items = [
        PostShape(
            id=uuid.uuid4(),
            author=Author(id=uuid.uuid4(), handle=f"person_{i}", display_name=f"Person {i}"),
            context="professional",
            audience="organisation",
            group_id=None,
            body="A short update about the work of the week, with a few words more. " * 2,
            tags=["update"],
            reactions={"like": 3, "celebrate": 1, "support": 0, "insightful": 0, "curious": 0},
            my_reactions=[],
            comment_count=2,
            created_at=now - timedelta(minutes=i),
            updated_at=now - timedelta(minutes=i),
        )
        for i in range(20)
    ]
    return PageShape(items=items, next_cursor="eyJpZCI6ICIwMTkzIn0")


PAGE = _page()
app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/floor")
@app.get("/api/v1/timelines/home")
async def floor() -> PageShape:
    return PAGE


@app.get("/.well-known/jwks.json")
async def jwks() -> dict[str, object]:
    keys: dict[str, object] = json.loads(os.environ.get("BENCH_JWKS", '{"keys": []}'))
    return keys


@app.get("/health/ready")
async def ready() -> dict[str, str]:
    return {"status": "ready"}
