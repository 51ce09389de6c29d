"""One export of a large matter, measured: ``python -m bench.records_export --database-url URL
--posts 100000``.

Fills a records database (SQLite or PostgreSQL; migrated here) with ``--posts`` posts of one
custodian, each with three versions (created, edited, edited again), and ``--comments`` comments
by others on each post; then queues one matter export of everything and runs it in a child
process, as the service's worker would (``exports.Exporter``). Prints how long it took, the
package's size and the child's peak memory (its ``VmHWM``, and ``ru_maxrss`` of the waited-for
child), with its memory before the export began: the export is written page by page, so the
peak should not grow with the number of posts.

Standalone: it starts no service. The database must hold no items yet (``--reuse`` exports
what is there instead of filling it). Not a test: ``make bench`` does not run it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Table, create_engine, func, select
from sqlalchemy.engine import Engine

from bench import dataset
from kit.ids import new_id
from kit.migrations import upgrade
from services.records.models import Export
from services.records.packaging import ITEM, VERSION

EXPORT: Table = Export.__table__  # type: ignore[attr-defined]

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 5_000
WORDS = ("budget", "draft", "review", "policy", "service", "delivery", "risk", "plan", "report", "data")
START = datetime(2026, 1, 1, tzinfo=UTC)


def sync_url(url: str) -> str:
    return url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")


def _insert(engine: Engine, table: Table, rows: Iterator[dict[str, Any]]) -> int:
    """Inserts in batches, as the feed's dataset does (a column this file does not set gets
    its default or an empty value)."""
    return dataset.insert_rows(engine, table.name, rows, chunk=CHUNK, metadata=table.metadata)


def _text(rng: random.Random, words: int = 30) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def fill(engine: Engine, posts: int, comments: int, seed: int = 5) -> tuple[uuid.UUID, int]:
    """Writes the custodian's posts (three versions each) and the comments on them; returns
    the custodian's persona id and the rows written."""
    rng = random.Random(seed)
    custodian = uuid.uuid4()
    others = [uuid.uuid4() for _ in range(1000)]
    recorded = datetime.now(UTC) - timedelta(minutes=1)
    step = timedelta(days=300) / max(posts, 1)
    post_ids = [new_id() for _ in range(posts)]

    def item(
        kind: str, item_id: uuid.UUID, author: uuid.UUID, at: datetime, post_id: uuid.UUID | None
    ) -> dict[str, Any]:
        return {
            "id": item_id,
            "kind": kind,
            "klass": "organisation_posts" if kind == "post" else "comments",
            "context": "professional",
            "author_id": author,
            "group_id": None,
            "post_id": post_id,
            "parent_id": None,
            "audience": "organisation" if kind == "post" else None,
            "reaction": None,
            "created_at": at,
            "last_activity_at": at,
            "deleted_at": None,
            "moderation": None,
            "versions": 3 if kind == "post" else 1,
            "changed_at": at,
            "recorded_at": recorded,
        }

    def version(item_id: uuid.UUID, number: int, change: str, at: datetime) -> dict[str, Any]:
        return {
            "id": new_id(),
            "item_id": item_id,
            "version": number,
            "change": change,
            "body": _text(rng),
            "links": [],
            "mentions": [],
            "tags": [],
            "at": at,
            "recorded_at": recorded,
        }

    def items() -> Iterator[dict[str, Any]]:
        for n, post_id in enumerate(post_ids):
            at = START + step * n
            yield item("post", post_id, custodian, at, None)
            for c in range(comments):
                yield item("comment", new_id(), rng.choice(others), at + timedelta(minutes=c + 1), post_id)

    def versions() -> Iterator[dict[str, Any]]:
        for n, post_id in enumerate(post_ids):
            at = START + step * n
            for number, change in ((1, "created"), (2, "edited"), (3, "edited")):
                yield version(post_id, number, change, at + timedelta(minutes=number))

    written = _insert(engine, ITEM, items())
    written += _insert(engine, VERSION, versions())
    # the comments' versions, one each
    with engine.connect() as conn:
        comment_rows = conn.execute(
            select(ITEM.c.id, ITEM.c.created_at).where(ITEM.c.kind == "comment")
        ).all()
    written += _insert(engine, VERSION, (version(i, 1, "created", at) for i, at in comment_rows))
    return custodian, written


def queue(engine: Engine, custodian: uuid.UUID) -> uuid.UUID:
    """One matter export of everything the custodian wrote."""
    now = datetime.now(UTC)
    export_id = new_id()
    scope = {
        "kind": "matter",
        "custodians": [str(uuid.uuid4())],
        "personas": [
            {"persona_id": str(custodian), "account_id": str(uuid.uuid4()), "context": "professional"}
        ],
        "profiles": [],
        "group_ids": [],
        "date_from": (START - timedelta(days=1)).isoformat(),
        "date_to": (START + timedelta(days=400)).isoformat(),
        "terms": [],
        "contexts": ["professional", "personal"],
        "classes": [
            "organisation_posts",
            "followers_posts",
            "group_posts",
            "comments",
            "reactions",
            "edit_history",
        ],
        "include_versions": True,
        "redact": False,
    }
    with engine.begin() as conn:
        conn.execute(
            EXPORT.insert(),
            [
                {
                    "id": export_id,
                    "matter_id": uuid.uuid4(),
                    "owner_id": None,
                    "requested_by": uuid.uuid4(),
                    "scope": scope,
                    "as_of": now,
                    "status": "queued",
                    "counted": 0,
                    "total": None,
                    "attempts": 0,
                    "manifest": {},
                    "redacted": {},
                    "created_at": now,
                }
            ],
        )
    return export_id


def _memory() -> dict[str, int]:
    """This process's resident memory now and at its peak, in kB (Linux)."""
    found: dict[str, int] = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0])
    return found


async def _child(url: str, export_dir: str) -> dict[str, Any]:
    """Runs the worker once, in this (child) process."""
    import httpx

    from kit.db import Database
    from services.records.exports import Exporter
    from services.records.settings import RecordsSettings

    settings = RecordsSettings(
        database_url=url, internal_token=secrets.token_urlsafe(), export_dir=export_dir
    )
    database = Database(url)
    before = _memory()
    started = time.perf_counter()
    async with httpx.AsyncClient() as client:
        ran = await Exporter(database, settings, client).run_once()
    seconds = time.perf_counter() - started
    async with database.sessionmaker() as session:
        export = (await session.scalars(select(Export))).one()
    await database.dispose()
    return {
        "ran": ran,
        "seconds": seconds,
        "status": export.status,
        "error": export.error,
        "items": export.counted,
        "bytes": export.size,
        "memory_before_kb": before,
        "memory_after_kb": _memory(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.records_export", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--database-url", required=True, help="sqlite+aiosqlite:///… or postgresql+asyncpg://…"
    )
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--comments", type=int, default=1, help="Comments on each post (by others).")
    parser.add_argument(
        "--export-dir", default=None, help="Where the package goes (a temporary folder by default)."
    )
    parser.add_argument("--reuse", action="store_true", help="Export what the database holds; fill nothing.")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    export_dir = args.export_dir or tempfile.mkdtemp(prefix="records-export-bench-")

    if args.child:
        print(json.dumps(asyncio.run(_child(args.database_url, export_dir))))
        return 0

    upgrade(ROOT / "services" / "records", args.database_url)
    engine = create_engine(sync_url(args.database_url))
    with engine.connect() as conn:
        held = conn.scalar(select(func.count()).select_from(ITEM))
    if held and not args.reuse:
        print(f"The database holds {held} items already: give an empty one, or --reuse.", file=sys.stderr)
        return 2
    if not args.reuse:
        started = time.perf_counter()
        custodian, rows = fill(engine, args.posts, args.comments)
        print(f"filled {rows} rows in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    else:
        with engine.connect() as conn:
            found = conn.scalar(select(ITEM.c.author_id).where(ITEM.c.kind == "post").limit(1))
        if found is None:
            print("The database holds no post to export.", file=sys.stderr)
            return 2
        custodian = uuid.UUID(str(found))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    with engine.begin() as conn:
        conn.execute(EXPORT.delete())
    queue(engine, custodian)
    engine.dispose()

    command = [sys.executable, "-m", "bench.records_export", "--child", "--database-url", args.database_url]
    started = time.perf_counter()
    child = subprocess.run(
        [*command, "--export-dir", export_dir], capture_output=True, text=True, cwd=ROOT, check=False
    )
    wall = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if child.returncode != 0:
        print(child.stderr, file=sys.stderr)
        return 1
    result = json.loads(child.stdout.strip().splitlines()[-1])
    report = {
        "database": args.database_url.split(":", 1)[0],
        "posts": args.posts,
        "comments_per_post": args.comments,
        "status": result["status"],
        "error": result["error"],
        "items": result["items"],
        "package_bytes": result["bytes"],
        "export_seconds": round(result["seconds"], 2),
        "child_wall_seconds": round(wall, 2),
        # the exporting process's peak (VmHWM), and its size before the export began
        "peak_rss_mb": round(result["memory_after_kb"]["VmHWM"] / 1024, 1),
        "rss_before_export_mb": round(result["memory_before_kb"]["VmRSS"] / 1024, 1),
        # getrusage(RUSAGE_CHILDREN): counts the child from its fork, this process's pages included
        "ru_maxrss_children_mb": round(peak_kb / 1024, 1),
    }
    print(json.dumps(report, indent=2))
    if args.export_dir is None:
        for name in os.listdir(export_dir):
            os.unlink(os.path.join(export_dir, name))
        os.rmdir(export_dir)
    return 0 if result["status"] == "ready" else 1


if __name__ == "__main__":
    sys.exit(main())
