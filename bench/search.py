"""The search benchmark: full-text search of posts and of people through the gateway, for the
dense reader, against the query it replaced (a ``LIKE`` over the posts' text).

At each size ``python -m bench`` measures, with wrk (same connections and seconds as the
timelines, after a 2 s warm-up):

- ``common``: ``GET /api/v1/search/posts?q=accessibility``, a word in about 5 % of posts;
- ``rare``: ``q=zeppelin``, a word in one post in 10,000;
- ``phrase``: ``q="carbon neutral"`` (quoted), a phrase whose words also appear apart;
- ``people``: ``GET /api/v1/search/people?q=Margret Smyth``, a misspelled name;
- ``deep``: the 10th page of ``common`` (the 9 cursors before it walked first);
- ``like``: the **baseline**, the statement the feed ran for ``GET /api/v1/posts?q=`` before
  full-text search (``lower(post.body) LIKE '%zeppelin%'`` within the reader's visible posts,
  newest first, 21 rows), run straight on PostgreSQL by asyncpg over as many connections, for
  as long (and at least ``LIKE_MIN_EACH`` statements on each connection): no gateway, no HTTP,
  no JSON, so its ratio to ``rare`` understates what search gained.

The dataset's vocabulary is in ``bench.dataset`` (``SEARCH_WORDS``, ``PEOPLE_QUERY``).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy.engine import make_url

from bench import dataset, report

POSTS = "/api/v1/search/posts"
PEOPLE = "/api/v1/search/people"
LIMIT = 20
DEEP_PAGE = 10  # the page of ``common`` that ``deep`` reads
KINDS = ("common", "rare", "phrase", "people", "deep")
LIKE_MIN_EACH = 3  # statements on each connection at least, however slow
TARGETS: dict[str, tuple[str, float]] = {
    "p99_at_largest_ms": ("<=", 50.0),  # each kind
    "p99_largest_vs_smallest": ("<=", 2.0),  # each kind
    "rare_vs_like_rps": (">=", 20.0),
    "deep_vs_first_p99": ("<=", 2.0),
}

# The statement ``services.feed.reading.search`` ran before full-text search (``page_statement``
# over ``visible_posts`` with ``func.lower(Post.body).like(...)``), as SQLAlchemy's asyncpg
# dialect sent it for a first page of 20 (21 rows: one more tells whether a next page exists).
# Parameters: those of ``like_arguments``.
LIKE_SQL = """\
SELECT post.id, post.author_id, post.context, post.audience, post.group_id, post.body, post.mentions, \
post.tags, post.links, post.pinned_until, post.group_pinned_at, post.like_count, post.celebrate_count, \
post.support_count, post.insightful_count, post.curious_count, post.comment_count, post.created_at, \
post.updated_at, post.edited_at, post.deleted_at, post.moderation, post.moderated_at, post.locked_at, \
persona_replica.handle, persona_replica.display_name, (SELECT coalesce(sum(CASE \
WHEN (reaction.kind = $1::VARCHAR) THEN $2::INTEGER WHEN (reaction.kind = $3::VARCHAR) THEN $4::INTEGER \
WHEN (reaction.kind = $5::VARCHAR) THEN $6::INTEGER WHEN (reaction.kind = $7::VARCHAR) THEN $8::INTEGER \
WHEN (reaction.kind = $9::VARCHAR) THEN $10::INTEGER ELSE $11::INTEGER END), $12::INTEGER) AS coalesce_1
FROM reaction
WHERE reaction.post_id = post.id AND reaction.persona_id = $13::UUID) AS mine
FROM post LEFT OUTER JOIN persona_replica ON persona_replica.id = post.author_id
WHERE post.deleted_at IS NULL AND (persona_replica.status IS NULL OR persona_replica.status = $14::VARCHAR) \
AND (post.moderation IS NULL OR post.moderation IN ($29::VARCHAR, $30::VARCHAR) \
AND post.author_id = $15::UUID) AND (post.group_id IS NULL OR (post.group_id NOT IN (SELECT group_replica.id
FROM group_replica
WHERE group_replica.moderation IS NOT NULL))) AND post.context = $16::VARCHAR \
AND (post.audience = $17::VARCHAR AND ((post.author_id NOT IN (SELECT persona_replica.id
FROM persona_replica
WHERE persona_replica.limited)) OR post.author_id = $18::UUID OR post.author_id IN (SELECT follow.followee_id
FROM follow
WHERE follow.follower_id = $19::UUID)) OR post.audience = $20::VARCHAR \
AND (post.author_id = $21::UUID OR post.author_id IN (SELECT follow.followee_id
FROM follow
WHERE follow.follower_id = $22::UUID)) OR post.audience = $23::VARCHAR \
AND (post.group_id IN (SELECT membership_replica.group_id
FROM membership_replica
WHERE membership_replica.persona_id = $24::UUID) OR post.group_id IN (SELECT group_replica.id
FROM group_replica
WHERE group_replica.visibility = $25::VARCHAR AND group_replica.context = $26::VARCHAR))) \
AND lower(post.body) LIKE $27::VARCHAR ESCAPE '\\' ORDER BY post.id DESC
 LIMIT $28::INTEGER"""


def like_arguments(reader: uuid.UUID, context: str, word: str, rows: int = LIMIT + 1) -> list[Any]:
    """``LIKE_SQL``'s 30 parameters, in order, for ``reader`` of ``context`` looking for
    ``word`` (letters only: nothing to escape)."""
    kinds = ["like", 1, "celebrate", 2, "support", 4, "insightful", 8, "curious", 16, 0, 0]
    return [
        *kinds,
        reader,  # 13: the reader's reactions
        "active",
        reader,  # 15: the author of a hidden or held post sees it
        context,
        "organisation",
        reader,
        reader,
        "followers",
        reader,
        reader,
        "group",
        reader,
        "open",
        context,
        f"%{word}%",
        rows,
        "hidden",
        "held",
    ]


def paths() -> dict[str, str]:
    """The first page of each kind but ``deep``, as a path with its query string."""
    words = dataset.SEARCH_WORDS

    def search(path: str, q: str) -> str:
        return f"{path}?{urlencode({'q': q, 'limit': LIMIT})}"

    return {
        "common": search(POSTS, words["common"]),
        "rare": search(POSTS, words["rare"]),
        "phrase": search(POSTS, f'"{words["phrase"]}"'),
        "people": search(PEOPLE, dataset.PEOPLE_QUERY),
    }


def first_page(client: httpx.Client, path: str) -> dict[str, Any]:
    """The answer to ``path``; the run stops on anything but a 200, whose body says why."""
    resp = client.get(path)
    if resp.status_code != 200:
        raise SystemExit(f"GET {path}: {resp.status_code} {resp.text[:500]}")
    body: dict[str, Any] = resp.json()
    return body


def probe(base: str, token: str) -> dict[str, Any]:
    """Each kind's path (``deep``: the common word's page ``DEEP_PAGE``, reached by walking the
    cursors before it) and what its page holds: the items, and whether a next page follows."""
    found: dict[str, Any] = {}
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        for kind, path in paths().items():
            page = first_page(client, path)
            found[kind] = {"path": path, "items": len(page["items"]), "more": bool(page.get("next_cursor"))}
        path, depth, page = paths()["common"], 1, first_page(client, paths()["common"])
        while depth < DEEP_PAGE and page.get("next_cursor"):
            path = f"{paths()['common']}&{urlencode({'cursor': page['next_cursor']})}"
            page, depth = first_page(client, path), depth + 1
        found["deep"] = {
            "path": path,
            "items": len(page["items"]),
            "more": bool(page.get("next_cursor")),
            "page": depth,
        }
    return found


async def _like_run(
    dsn: str, arguments: list[Any], connections: int, seconds: float, least: int
) -> dict[str, Any]:
    import asyncpg

    from kit.db import SERVER_SETTINGS  # as the services' connections (JIT off)

    pool = await asyncpg.create_pool(
        dsn, min_size=connections, max_size=connections, server_settings=SERVER_SETTINGS
    )
    latencies: list[float] = []
    rows: list[int] = []
    errors = 0
    try:
        # warm-up, discarded: each connection prepares the statement and reads the pages once
        async def warm(conn: Any) -> None:
            await conn.fetch(LIKE_SQL, *arguments)

        held = [await pool.acquire() for _ in range(connections)]
        await asyncio.gather(*(warm(conn) for conn in held))
        started = time.perf_counter()
        deadline = started + seconds

        async def worker(conn: Any) -> None:
            nonlocal errors
            done = 0
            while time.perf_counter() < deadline or done < least:
                begin = time.perf_counter()
                try:
                    found = await conn.fetch(LIKE_SQL, *arguments)
                except Exception:  # counted, as wrk counts a failed request
                    errors += 1
                else:
                    latencies.append(time.perf_counter() - begin)
                    rows.append(len(found))
                done += 1

        await asyncio.gather(*(worker(conn) for conn in held))
        elapsed = time.perf_counter() - started
        for conn in held:
            await pool.release(conn)
    finally:
        await pool.close()
    latencies.sort()

    def percentile(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] * 1000, 2)

    return {
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": percentile(50),
        "p99_ms": percentile(99),
        "requests": len(latencies),
        "errors": errors,
        "seconds": round(elapsed, 2),
        "rows": statistics.median(rows) if rows else 0,
    }


def like_baseline(url: str, reader: uuid.UUID, connections: int, seconds: float) -> dict[str, Any]:
    """The old statement for the rare word, straight on feed's PostgreSQL database (``url``)."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    arguments = like_arguments(reader, "professional", dataset.RARE_WORD)
    return asyncio.run(_like_run(dsn, arguments, connections, seconds, LIKE_MIN_EACH))


def measure(
    base: str,
    token: str,
    run: Callable[[str, str], dict[str, Any]],
    *,
    say: Callable[[str, dict[str, Any]], None],
) -> dict[str, Any]:
    """One size: the figure of each kind (``run`` measures a path through the gateway at
    ``base``, given the kind and its path) with what its page held. The LIKE baseline is
    measured apart (``like_baseline``)."""
    found = probe(base, token)
    figures: dict[str, Any] = {}
    for kind in KINDS:
        figure = run(kind, found[kind]["path"])
        figure["page"] = {k: v for k, v in found[kind].items() if k != "path"}
        figures[kind] = figure
        say(kind, figure)
    return figures


def explain(urls: dict[str, str], reader: uuid.UUID) -> dict[str, Any]:
    """``EXPLAIN (ANALYZE, BUFFERS)`` of every statement each kind runs, for ``reader``: the
    services' own search functions are called in this process over their databases (``urls``),
    their statements recorded as sent, then each run again under EXPLAIN with the same
    parameters, after the settings the search made for its transaction; and again as the
    generic plan a prepared statement ends up with (``_generic_plan``). ``call_ms``: the
    search's time in this process, its first connection included."""
    return asyncio.run(_explain(urls, reader))


async def _explain(urls: dict[str, str], reader: uuid.UUID) -> dict[str, Any]:
    from sqlalchemy import event

    from domain.principal import Principal
    from kit.db import Database
    from services.feed import search as posts
    from services.identity import search as people

    principal = Principal(
        subject=str(reader),
        persona_id=reader,
        context="professional",
        scopes=frozenset(),
        roles=frozenset(),
        token_id=uuid.uuid4().hex,
        issued_at=0.0,
        expires_at=0.0,
    )
    words = dataset.SEARCH_WORDS
    queries = {"common": words["common"], "rare": words["rare"], "phrase": f'"{words["phrase"]}"'}
    plans: dict[str, Any] = {}
    for kind in KINDS:
        database = Database(urls["identity" if kind == "people" else "feed"])
        try:
            cursor = None
            if kind == "deep":
                for _ in range(DEEP_PAGE - 1):
                    async with database.sessionmaker() as session:
                        cursor = (
                            await posts.posts(
                                session, database, principal, words["common"], cursor=cursor, limit=LIMIT
                            )
                        ).after
            sent: list[tuple[str, Any]] = []

            def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
                sent.append((statement, parameters))  # noqa: B023 - removed before the next kind

            event.listen(database.engine.sync_engine, "before_cursor_execute", record)
            database.raw = _recording(database.raw, sent)  # type: ignore[method-assign]
            started = time.perf_counter()
            async with database.sessionmaker() as session:
                if kind == "people":
                    q = dataset.PEOPLE_QUERY
                    await people.people(session, database, "professional", q, cursor=None, limit=LIMIT)
                else:
                    q = queries.get(kind, words["common"])
                    await posts.posts(session, database, principal, q, cursor=cursor, limit=LIMIT)
            took = time.perf_counter() - started
            event.remove(database.engine.sync_engine, "before_cursor_execute", record)
            del database.raw
            statements = []
            async with database.engine.connect() as conn:
                for statement, parameters in sent:
                    if statement.lstrip().upper().startswith("SET") or "set_config" in statement:
                        await conn.exec_driver_sql(statement, parameters)  # the transaction's settings
                        statements.append({"statement": statement, "parameters": _shown(parameters)})
                        continue
                    rows = await conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters)
                    plan = [row[0] for row in rows]
                    generic = await _generic_plan(conn, statement, parameters)
                    statements.append(
                        {
                            "statement": statement,
                            "parameters": _shown(parameters),
                            "plan": plan,
                            "total": _execution_time(plan),
                            "generic_plan": generic,
                            "generic_total": _execution_time(generic),
                        }
                    )
                await conn.rollback()
            plans[kind] = {"call_ms": round(took * 1000, 2), "statements": statements}
        finally:
            await database.dispose()
    return plans


def _recording(raw: Any, sent: list[tuple[str, Any]]) -> Any:
    """``Database.raw`` whose connections record each statement they fetch, as sent, after
    the settings of their pool (as ``set_config`` statements, for the replay)."""

    class Recorded:
        def __init__(self, connection: Any) -> None:
            self.connection = connection

        async def fetch(self, sql: str, *args: Any) -> Any:
            sent.append((sql, args))
            return await self.connection.fetch(sql, *args)

    @contextlib.asynccontextmanager
    async def recording(plan: Any = "auto", settings: Any = None) -> Any:
        for name, value in (settings or {}).items():
            sent.append((f"SELECT set_config('{name}', '{value}', true)", None))
        async with raw(plan, settings) as connection:
            yield Recorded(connection)

    return recording


async def _generic_plan(conn: Any, statement: str, parameters: Any) -> list[str]:
    """The plan PostgreSQL runs for ``statement`` once its plan cache has chosen the generic
    plan (by default after five executions of a prepared statement, as the services' drivers
    prepare each statement: a plan made without the values, for every value alike), with
    these values, by ``PREPARE`` and ``EXPLAIN EXECUTE`` under ``force_generic_plan``."""
    raw = (await conn.get_raw_connection()).driver_connection
    values = ", ".join(_literal(value) for value in (parameters or ()))
    arguments = f"({values})" if values else ""
    await raw.execute("SAVEPOINT bench_generic; SET LOCAL plan_cache_mode = force_generic_plan")
    prepared = False
    try:
        await raw.execute(f"PREPARE bench_generic AS {statement}")
        prepared = True
        rows = await raw.fetch(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_generic{arguments}")
        plan = [row[0] for row in rows]
    except Exception as error:  # a plan the run can do without: said, not fatal
        plan = [f"no generic plan: {error}"]
    await raw.execute("ROLLBACK TO SAVEPOINT bench_generic")  # plan_cache_mode as it was
    if prepared:  # a prepared statement outlives the savepoint
        await raw.execute("DEALLOCATE bench_generic")
    return plan


def _literal(value: Any) -> str:
    """``value`` as an SQL literal for ``EXECUTE`` (the statement's casts give its type)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):  # an array of ids, for ``= ANY(...)``
        return "'{" + ",".join(str(item) for item in value) + "}'"
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return "'" + text.replace("'", "''") + "'"


def _execution_time(plan: list[str]) -> str:
    return next((line for line in reversed(plan) if line.startswith("Execution Time")), "")


def _shown(parameters: Any) -> list[str]:
    return [str(p) for p in parameters] if isinstance(parameters, list | tuple) else [str(parameters)]


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("inf")


def judge(search: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The ratios the targets are about, and each target met or not, at the largest size
    against the smallest."""
    sizes = sorted(search["sizes"], key=int)
    small, large = search["sizes"][sizes[0]], search["sizes"][sizes[-1]]
    ratios: dict[str, Any] = {
        "p99_largest_vs_smallest": {k: _ratio(large[k]["p99_ms"], small[k]["p99_ms"]) for k in KINDS},
        "deep_vs_first_p99": _ratio(large["deep"]["p99_ms"], large["common"]["p99_ms"]),
    }
    if "like" in large:
        ratios["rare_vs_like_rps"] = _ratio(large["rare"]["rps"], large["like"]["rps"])
        ratios["like_vs_rare_p99"] = _ratio(large["like"]["p99_ms"], large["rare"]["p99_ms"])
    targets: dict[str, dict[str, Any]] = {}

    def check(name: str, value: float, rule: str) -> None:
        op, limit = TARGETS[rule]
        met = value >= limit if op == ">=" else value <= limit
        targets[name] = {"value": value, "target": f"{op} {limit:g}", "met": met}

    for kind in KINDS:
        check(f"p99_at_largest_ms.{kind}", large[kind]["p99_ms"], "p99_at_largest_ms")
    for kind in KINDS:
        check(
            f"p99_largest_vs_smallest.{kind}",
            ratios["p99_largest_vs_smallest"][kind],
            "p99_largest_vs_smallest",
        )
    if "rare_vs_like_rps" in ratios:
        check("rare_vs_like_rps", ratios["rare_vs_like_rps"], "rare_vs_like_rps")
    check("deep_vs_first_p99", ratios["deep_vs_first_p99"], "deep_vs_first_p99")
    errors = sum(f["errors"] for runs in search["sizes"].values() for f in runs.values())
    targets["no_failed_requests"] = {"value": errors, "target": "== 0", "met": errors == 0}
    return ratios, targets


def line(figure: dict[str, Any]) -> str:
    errors = f"  ERRORS {figure['errors']}{report.error_kinds(figure)}" if figure["errors"] else ""
    page = figure.get("page")
    held = f"  ({page['items']} items{', more' if page['more'] else ''})" if page else ""
    return (
        f"{figure['rps']:>9.1f} req/s  p50 {figure['p50_ms']:>8.2f} ms  p99 {figure['p99_ms']:>8.2f} ms"
        f"{held}{errors}"
    )


def table(search: dict[str, Any]) -> str:
    rows = [
        f"\n== search ({search['backend']}): the dense reader, {search['connections']} connections, "
        f"{search['seconds_per_run']} s per run; like = the old LIKE statement on PostgreSQL, no gateway"
    ]
    for size, runs in sorted(search["sizes"].items(), key=lambda kv: int(kv[0])):
        rows.append(f"-- {int(size):,} posts")
        rows += [f"   {kind:<8} {line(figure)}" for kind, figure in runs.items()]
    rows.append("-- targets")
    for name, target in search["targets"].items():
        mark = "met" if target["met"] else "NOT MET"
        rows.append(f"   {name:<40} {target['value']!s:>9}  (target {target['target']})  {mark}")
    return "\n".join(rows)


def chart(search: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(search["sizes"], key=int)
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for kind in (*KINDS, "like"):
        points = [(int(s), search["sizes"][s][kind]["p99_ms"]) for s in sizes if kind in search["sizes"][s]]
        if not points:
            continue
        label = "LIKE baseline (PostgreSQL, no gateway)" if kind == "like" else kind
        style = "--" if kind == "like" else "-"
        ax.plot([p[0] for p in points], [p[1] for p in points], style, marker="o", label=label)
    limit = TARGETS["p99_at_largest_ms"][1]
    ax.axhline(limit, color="grey", linestyle=":", linewidth=1, label=f"target at 1M: {limit:g} ms")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("posts in the dataset")
    ax.set_ylabel("p99 latency (ms, log scale)")
    ax.set_title(
        f"Search p99 against dataset size ({search['backend']}, {search['connections']} connections)"
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
