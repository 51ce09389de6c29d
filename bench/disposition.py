"""Disposition under load: ``python -m bench.disposition [--posts N] [--seconds S] ...``.

What the home timeline's p99 becomes while records disposes of a million expired posts
(decision 0033, "Disposition"). PostgreSQL only (``BENCH_DATABASE_URL``, as ``python -m bench``).

1. Fresh ``gs_bench_*`` databases, migrations, and bench's dataset (``bench/dataset.py``) with
   ``--posts`` posts spread over the 399 days before today, so that about 85 % of them are
   older than the policy's cut-off (``--keep-days``, 60): 1,200,000 posts leave 1,022,556
   past it.
2. The records copy of every post written straight into records' ``item`` and
   ``item_version`` (one item and one version each, its class from ``classes.klass``), by
   asyncpg's COPY in chunks streamed from feed's ``post``, so memory stays bounded; then an
   officer (records' ``persona_replica`` and ``staff_replica``, role ``records``), and a week
   of delivered events in feed's outbox (``--outbox-history``), as a live deployment's has.
3. The suite started as real processes (bench's ``Suite``), disposition's schedule an hour
   away (``RECORDS_DISPOSITION_INTERVAL_SECONDS``; its first tick at startup finds no policy
   that disposes); on a server without autovacuum, a stand-in for it (``Autovacuum``); the
   dense reader's inbox built (and ``--inboxes`` other readers'); the
   **baseline**: ``GET /api/v1/timelines/home`` through the gateway, 32 connections, three
   runs of ``--seconds`` after 30 s of the same load (the processes' startup work settles).
4. The policies of ``organisation_posts``, ``followers_posts`` and ``group_posts`` set to
   ``keep_days`` and ``dispose``, written straight into records' ``policy``; then an officer's
   ``POST /api/v1/records/dispositions`` through the gateway, which answers the ``running``
   certificate while the run goes on in the records process. Everything after is the real
   path: records deletes its copy in batches of ``disposition_batch`` and publishes
   ``internal.records.dispose``; its relay delivers to feed, which destroys the posts (their
   inbox entries included) and announces ``post.deleted`` to groups and identity. Records'
   relay sends ``--relay-batch`` events a delivery (``RECORDS_RELAY_BATCH_SIZE``): at its
   default of 100, a delivery of dispose events is larger than feed accepts (bench/README.md).
5. Back-to-back windows of ``--window`` seconds of the same load until feed holds none of the
   disposed posts (with ``--drain``, until the relays of records and feed have delivered
   everything too: feed's ``post.deleted`` take far longer). After each: p50, p99,
   requests/s, posts left in feed, items left in the copy, deliveries pending at each relay,
   the certificate's status and counts so far (``GET /api/v1/records/dispositions/{id}``),
   the CPU each process spent, and what the busy database backends were doing
   (``pg_stat_activity``, sampled every 0.5 s). Then a post written by the dense reader, and
   the **after** runs, the same as the baseline (feed's relay still delivering the
   ``post.deleted``: how many deliveries are ahead of that post's record, and how fast they
   go); the certificate as the list gives it (``GET /api/v1/records/dispositions``); and
   the plan of feed's inbox deletion for a batch (``inbox.forget``), rolled back.

Writes ``bench/results/disposition-postgres.json`` and drops the databases (``--keep`` keeps
them). See bench/README.md, "Disposition under load"."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from bench import cpu, dataset, report
from bench.__main__ import HOME, RESULTS, ROOT, SERVICES, Suite, database_urls, deep_cursor, wrk
from kit.ids import new_id
from kit.migrations import upgrade
from services.records.classes import PROFESSIONAL_POST_CLASSES, klass
from services.records.models import Policy, PolicySet, RecordsModel

DISPOSITIONS = "/api/v1/records/dispositions"
DISPOSE = "internal.records.dispose"
COPY_CHUNK = 10_000
SAMPLE_SECONDS = 0.5
RUNS = 3  # baseline and after: three runs each, the median reported
WARM_UP = 30  # seconds of load before the baseline
STUCK = 12  # windows without a post destroyed, once records has finished: the relay is stuck
ITEM_COLUMNS = (
    "id",
    "kind",
    "klass",
    "context",
    "author_id",
    "group_id",
    "audience",
    "created_at",
    "last_activity_at",
    "versions",
    "changed_at",
    "recorded_at",
)
VERSION_COLUMNS = (
    "id",
    "item_id",
    "version",
    "change",
    "body",
    "links",
    "mentions",
    "tags",
    "at",
    "recorded_at",
)


def _dsn(url: str) -> str:
    """An asyncpg DSN from a ``postgresql+asyncpg://`` URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def copy_records(feed_url: str, records_url: str) -> int:
    """Writes the records copy of every post of feed: an item and its one version each,
    ``COPY_CHUNK`` posts at a time read by a server-side cursor."""
    feed = await asyncpg.connect(_dsn(feed_url))
    records = await asyncpg.connect(_dsn(records_url))
    recorded = datetime.now(UTC)
    copied = 0
    try:
        async with feed.transaction():
            cursor = await feed.cursor(
                "SELECT id, author_id, context, audience, group_id, body, created_at FROM post ORDER BY id"
            )
            while rows := await cursor.fetch(COPY_CHUNK):
                items = [
                    (
                        r["id"],
                        "post",
                        klass("post", r["context"], audience=r["audience"], group_id=r["group_id"]),
                        r["context"],
                        r["author_id"],
                        r["group_id"],
                        r["audience"],
                        r["created_at"],
                        r["created_at"],
                        1,
                        r["created_at"],
                        recorded,
                    )
                    for r in rows
                ]
                # The dataset's posts have no links, mentions or tags.
                versions = [
                    (new_id(), r["id"], 1, "created", r["body"], "[]", "[]", "[]", r["created_at"], recorded)
                    for r in rows
                ]
                await records.copy_records_to_table("item", records=items, columns=ITEM_COLUMNS)
                await records.copy_records_to_table("item_version", records=versions, columns=VERSION_COLUMNS)
                copied += len(rows)
    finally:
        await feed.close()
        await records.close()
    return copied


def outbox_history(engine: Engine, events: int) -> None:
    """A week of events feed's relay has delivered to groups and identity, as a live
    deployment's outbox holds (``outbox_retention_days``): the relay's cached plan for its
    claim is then made on the statistics of a table with a history, not of an empty one."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO outbox_event (id, type, subject, data, occurred_at) "
                "SELECT gen_random_uuid(), 'post.created', gen_random_uuid()::text, '{}', "
                "now() - interval '6 days' + n * interval '6 days' / :events "
                "FROM generate_series(1, :events) AS n"
            ),
            {"events": events},
        )
        conn.execute(
            text(
                "INSERT INTO outbox_delivery (event_seq, subscriber, status, attempt_count, "
                "next_attempt_at, delivered_at) SELECT seq, s, 'delivered', 0, occurred_at, occurred_at "
                "FROM outbox_event, (VALUES ('groups'), ('identity')) AS v(s) ORDER BY seq, s"
            )
        )
    dataset.analyze(engine, "outbox_event", "outbox_delivery")


def add_officer(engine: Engine) -> uuid.UUID:
    """A records officer, as identity's events would have left it in records' replicas."""
    officer = new_id()
    now = datetime.now(UTC)
    tables = RecordsModel.metadata.tables
    with engine.begin() as conn:
        conn.execute(
            tables["persona_replica"].insert(),
            {
                "id": officer,
                "context": "professional",
                "handle": "records_officer",
                "display_name": "Records Officer",
                "status": "active",
                "updated_at": now,
            },
        )
        conn.execute(
            tables["staff_replica"].insert(), {"persona_id": officer, "roles": ["records"], "updated_at": now}
        )
    return officer


def write_policies(engine: Engine, keep_days: int, officer: uuid.UUID) -> None:
    """The three professional post classes disposed of after ``keep_days`` days from creation:
    version 1 of the policy set."""
    policy: Any = Policy.__table__  # type: ignore[attr-defined]
    policy_set: Any = PolicySet.__table__  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(policy.delete())
        conn.execute(
            policy.insert(),
            [
                {
                    "klass": name,
                    "keep_days": keep_days,
                    "counted_from": "created",
                    "then": "dispose",
                    "overrides": {},
                    "version": 1,
                    "updated_by": officer,
                    "updated_at": now,
                }
                for name in PROFESSIONAL_POST_CLASSES
            ],
        )
        conn.execute(policy_set.delete())
        conn.execute(policy_set.insert(), {"id": 1, "version": 1})


def scalar(engine: Engine, statement: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(statement), params).scalar()


def pending(engine: Engine) -> int:
    """Deliveries a service's relay has yet to make."""
    return int(scalar(engine, "SELECT count(*) FROM outbox_delivery WHERE status = 'pending'"))


class Records:
    """The officer's calls through the gateway: start a run, read its certificate."""

    def __init__(self, suite: Suite, officer: uuid.UUID) -> None:
        self.suite = suite
        self.officer = officer

    def _client(self) -> httpx.Client:
        token = self.suite.token(self.officer, roles=["records"])
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.Client(base_url=self.suite.url, headers=headers, timeout=30)

    def start(self) -> dict[str, Any]:
        with self._client() as client:
            resp = client.post(DISPOSITIONS)
        if resp.status_code != 202:
            raise SystemExit(f"the disposition did not start: {resp.status_code} {resp.text}")
        answer: dict[str, Any] = resp.json()
        return answer

    def certificate(self, run_id: str) -> dict[str, Any]:
        with self._client() as client:
            resp = client.get(f"{DISPOSITIONS}/{run_id}")
        resp.raise_for_status()
        answer: dict[str, Any] = resp.json()
        return answer

    def listed(self, run_id: str) -> dict[str, Any]:
        with self._client() as client:
            resp = client.get(DISPOSITIONS)
        resp.raise_for_status()
        return next(c for c in resp.json()["items"] if c["id"] == run_id)


class Autovacuum(threading.Thread):
    """Stands in for PostgreSQL's autovacuum when the server runs without it (``autovacuum =
    off``, as on a test machine): without it the outbox tables keep the statistics of the
    empty tables the dataset's ``VACUUM ANALYZE`` saw, and a relay's cached plan, made while
    its queue was short, goes on being used when a million deliveries are pending (a claim
    then runs for minutes on a core of its own). Every ``autovacuum_naptime`` it finds, in
    each bench database, the tables past autovacuum's thresholds (the server's settings) and
    vacuums or analyzes them as autovacuum would: ``autovacuum_max_workers`` at a time, with
    its cost delay."""

    def __init__(self, urls: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.engines = {
            name: create_engine(
                make_url(url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
            )
            for name, url in urls.items()
        }
        with next(iter(self.engines.values())).connect() as conn:
            rows = conn.execute(
                text("SELECT name, setting FROM pg_settings WHERE name LIKE 'autovacuum%%' OR name = :limit"),
                {"limit": "vacuum_cost_limit"},
            ).all()
        found: dict[str, str] = {str(name): str(value) for name, value in rows}
        self.server = found["autovacuum"] == "on"
        self.settings = {
            name: float(value)
            for name, value in found.items()
            if value.lstrip("-").replace(".", "", 1).isdigit()
        }
        self.stopping = threading.Event()
        self.started = time.monotonic()
        self.done: list[dict[str, Any]] = []
        self.busy: set[tuple[str, str]] = set()
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(int(self.settings["autovacuum_max_workers"]))

    def run(self) -> None:
        while not self.stopping.wait(self.settings["autovacuum_naptime"]):
            for name, engine in self.engines.items():
                for table, work in self._due(engine):
                    with self.lock:
                        if (name, table) in self.busy:
                            continue
                        self.busy.add((name, table))
                    self.pool.submit(self._work, name, table, work)

    def _due(self, engine: Engine) -> list[tuple[str, str]]:
        """Tables past autovacuum's thresholds, and whether to vacuum (and analyze) or analyze."""
        s = self.settings
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT t.relname, greatest(c.reltuples, 0), t.n_dead_tup, t.n_ins_since_vacuum, "
                    "t.n_mod_since_analyze FROM pg_stat_user_tables t JOIN pg_class c ON c.oid = t.relid"
                )
            ).all()
        due = []
        for table, tuples, dead, inserted, modified in rows:
            vacuum = dead > s["autovacuum_vacuum_threshold"] + s[
                "autovacuum_vacuum_scale_factor"
            ] * tuples or (
                inserted
                > s["autovacuum_vacuum_insert_threshold"]
                + s["autovacuum_vacuum_insert_scale_factor"] * tuples
            )
            analyze = (
                modified > s["autovacuum_analyze_threshold"] + s["autovacuum_analyze_scale_factor"] * tuples
            )
            if vacuum or analyze:
                due.append(
                    (table, "VACUUM (ANALYZE)" if vacuum and analyze else "VACUUM" if vacuum else "ANALYZE")
                )
        return due

    def _work(self, name: str, table: str, work: str) -> None:
        s = self.settings
        limit = (
            s["autovacuum_vacuum_cost_limit"]
            if s["autovacuum_vacuum_cost_limit"] > 0
            else s["vacuum_cost_limit"]
        )
        started = time.monotonic()
        try:
            with self.engines[name].connect() as conn:
                conn.execute(text(f"SET vacuum_cost_delay = '{s['autovacuum_vacuum_cost_delay']}ms'"))
                conn.execute(text(f"SET vacuum_cost_limit = {int(limit)}"))
                conn.execute(text(f'{work} "{table}"'))
            with self.lock:
                self.done.append(
                    {
                        "at_s": round(started - self.started, 1),
                        "database": name,
                        "table": table,
                        "work": work,
                        "seconds": round(time.monotonic() - started, 1),
                    }
                )
        except Exception as exc:  # a database dropped at the end, a table locked: skipped, as autovacuum does
            if not self.stopping.is_set():
                print(f"autovacuum stand-in: {work} {name}.{table}: {type(exc).__name__}", flush=True)
        finally:
            with self.lock:
                self.busy.discard((name, table))

    def stop(self) -> list[dict[str, Any]]:
        self.stopping.set()
        self.join(10)
        # a vacuum under way is ended by the databases' drop
        self.pool.shutdown(wait=False, cancel_futures=True)
        for engine in self.engines.values():
            engine.dispose()
        return self.done


class WaitSampler(threading.Thread):
    """Samples ``pg_stat_activity`` every ``SAMPLE_SECONDS``: per database, what its active
    backends wait on (``CPU`` when nothing) and which statements they run; ``take`` returns
    the tallies since the last call."""

    def __init__(self, admin_url: str) -> None:
        super().__init__(daemon=True)
        self.engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.samples = 0
        self.waits: Counter[str] = Counter()
        self.statements: Counter[str] = Counter()

    def run(self) -> None:
        query = text(
            "SELECT datname, wait_event_type, wait_event, query FROM pg_stat_activity "
            "WHERE datname LIKE 'gs_bench_%' AND state = 'active' AND pid <> pg_backend_pid()"
        )
        with self.engine.connect() as conn:
            while not self.stopping.wait(SAMPLE_SECONDS):
                rows = conn.execute(query).all()
                with self.lock:
                    self.samples += 1
                    for datname, kind, event, statement in rows:
                        service = datname.removeprefix("gs_bench_")
                        self.waits[f"{service} {kind}:{event}" if kind else f"{service} CPU"] += 1
                        self.statements[f"{service} {' '.join(statement.split())[:70]}"] += 1
        self.engine.dispose()

    def take(self) -> dict[str, Any]:
        """Average active backends per sample, by wait and by statement (the largest)."""
        with self.lock:
            samples = max(self.samples, 1)
            found = {
                "samples": self.samples,
                "waits": {k: round(v / samples, 2) for k, v in self.waits.most_common(8)},
                "statements": {k: round(v / samples, 2) for k, v in self.statements.most_common(6)},
            }
            self.samples = 0
            self.waits.clear()
            self.statements.clear()
        return found

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)


def cpu_shares(start: cpu.Snapshot, end: cpu.Snapshot, seconds: float) -> dict[str, float]:
    """Cores each labelled process kept busy over ``seconds`` (1.0: one core throughout), and
    the machine's."""
    shares = {
        label: round(
            sum(max(s - start.pids[label].get(pid, 0.0), 0.0) for pid, s in by_pid.items()) / seconds, 2
        )
        for label, by_pid in end.pids.items()
    }
    shares["wrk"] = round((end.children - start.children) / seconds, 2)
    machine = (end.busy - start.busy) / seconds
    # the kernel's share of loopback traffic, this benchmark's own queries, anything else running
    shares["other"] = round(max(machine - sum(shares.values()), 0.0), 2)
    shares["machine"] = round(machine, 2)
    return shares


def drop_databases() -> None:
    base = make_url(
        os.environ.get("BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    )
    admin = create_engine(base.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in SERVICES:
            conn.execute(text(f'DROP DATABASE IF EXISTS "gs_bench_{name}" WITH (FORCE)'))
    admin.dispose()


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    urls = database_urls("postgres", work)
    for name in SERVICES:
        upgrade(ROOT / "services" / name, urls[name])
    started = time.monotonic()
    world = dataset.populate(urls["feed"])
    spacing = timedelta(days=399) / args.posts
    dataset.add_posts(urls["feed"], world, args.posts, spacing=spacing)
    print(f"dataset: {args.posts:,} posts in {time.monotonic() - started:.0f} s", flush=True)
    started = time.monotonic()
    copied = asyncio.run(copy_records(urls["feed"], urls["records"]))
    feed_db, records_db = dataset.engine_for(urls["feed"]), dataset.engine_for(urls["records"])
    dataset.analyze(records_db)
    print(f"records copy: {copied:,} items in {time.monotonic() - started:.0f} s", flush=True)
    with records_db.connect() as conn:  # not the loading's checkpoint during the baseline
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("CHECKPOINT"))
    officer = add_officer(records_db)
    if args.outbox_history:
        outbox_history(feed_db, args.outbox_history)

    os.environ["RECORDS_DISPOSITION_INTERVAL_SECONDS"] = str(args.interval)
    if args.batch:
        os.environ["RECORDS_DISPOSITION_BATCH"] = str(args.batch)
    if args.relay_batch:
        os.environ["RECORDS_RELAY_BATCH_SIZE"] = str(args.relay_batch)
    suite = Suite(urls, work)
    admin_url = make_url(urls["feed"]).set(drivername="postgresql+psycopg", database="postgres")
    sampler = WaitSampler(admin_url.render_as_string(hide_password=False))
    autovacuum = Autovacuum(urls)
    if not autovacuum.server:
        autovacuum.start()
    results: dict[str, Any] = {
        "backend": "postgres",
        "posts": args.posts,
        "keep_days": args.keep_days,
        "connections": args.connections,
        "seconds_per_run": args.seconds,
        "window_seconds": args.window,
        "inboxes_built": 1 + args.inboxes,
        "feed_outbox_history": args.outbox_history,
        "disposition_batch": args.batch or "default",
        "records_relay_batch": args.relay_batch or "default",
    }
    try:
        children = cpu.children_by_port(suite.process.pid, suite.ports)
        meter = cpu.CPUMeter(children, by_name={"postgres": "postgres"})
        dense = suite.token(world.dense)
        deep_cursor(suite.feed, dense, 1)  # builds the dense reader's inbox
        if args.inboxes:
            started = time.monotonic()
            build_inboxes(suite, world.personas[: args.inboxes])
            print(f"{args.inboxes:,} inboxes built in {time.monotonic() - started:.0f} s", flush=True)
        dataset.analyze_inboxes(urls["feed"])
        results["home_entries"] = int(scalar(feed_db, "SELECT count(*) FROM home_entry"))
        home = suite.url + HOME
        sampler.start()

        def load(seconds: int) -> dict[str, Any]:
            """The home timeline's first page for ``seconds``, with the CPU of each process
            and what the database was doing meanwhile."""
            sampler.take()
            begin, opened = meter.snapshot(), time.monotonic()
            figure = wrk(home, suite.token(world.dense), args.connections, seconds)
            end = meter.snapshot()
            figure["cpu"] = meter.per_request(begin, end, figure["requests"])
            figure["cpu_cores"] = cpu_shares(begin, end, time.monotonic() - opened)
            figure["database"] = sampler.take()
            return figure

        wrk(home, dense, args.connections, WARM_UP)  # discarded: the processes' startup work settles
        baseline: list[dict[str, Any]] = []
        results["baseline"] = baseline
        for _ in range(RUNS):
            baseline.append(figure := load(args.seconds))
            print(f"baseline               {report.line(figure)}\n    {report.cpu_line(figure)}", flush=True)

        cutoff = datetime.now(UTC) - timedelta(days=args.keep_days)
        posts_before = int(scalar(feed_db, "SELECT count(*) FROM post"))
        expired = int(scalar(feed_db, "SELECT count(*) FROM post WHERE created_at < :c", c=cutoff))
        items_before = int(scalar(records_db, "SELECT count(*) FROM item"))
        results["before"] = {"feed_posts": posts_before, "expired": expired, "records_items": items_before}
        print(f"before: {posts_before:,} posts in feed, {expired:,} past the cut-off", flush=True)
        write_policies(records_db, args.keep_days, officer)

        officer_calls = Records(suite, officer)
        triggered_at = datetime.now(UTC)
        t0 = time.monotonic()
        run_id = officer_calls.start()["id"]
        windows: list[dict[str, Any]] = []
        target: int | None = None  # feed's posts once the certificate's are gone
        feed_done: float | None = None
        status = "running"
        while True:
            phase = "records running" if status == "running" else "feed catching up"
            if feed_done is not None:
                phase = "relays draining"
            figure = load(args.window)
            at = time.monotonic() - t0
            window = {"t_s": round(at, 1), "phase": phase, **figure}
            certificate = officer_calls.certificate(run_id)
            status = certificate["status"]
            window["certificate"] = {"status": status, "counts": certificate["counts"]}
            window["feed_posts"] = int(scalar(feed_db, "SELECT count(*) FROM post"))
            window["records_items"] = int(scalar(records_db, "SELECT count(*) FROM item"))
            window["records_pending"] = pending(records_db)
            window["feed_pending"] = pending(feed_db)
            windows.append(window)
            print(
                f"{at:>7.0f} s {phase:<17} {report.line(figure)}  feed {window['feed_posts']:>9,}"
                f"  records {window['records_items']:>9,}  pending {window['records_pending']:,}"
                f"/{window['feed_pending']:,}",
                flush=True,
            )
            if status not in ("running", "finished"):
                raise SystemExit(f"the disposition ended {status}: {certificate}")
            if status == "finished" and target is None:
                counts = certificate["counts"]
                target = posts_before - sum(counts.get(k, 0) for k in PROFESSIONAL_POST_CLASSES)
            if target is not None and feed_done is None and window["feed_posts"] <= target:
                feed_done = at
            drained = window["records_pending"] == 0 and window["feed_pending"] == 0
            if feed_done is not None and (not args.drain or drained):
                break
            still = [w["feed_posts"] for w in windows[-STUCK:]]
            if status == "finished" and len(still) == STUCK and len(set(still)) == 1:
                results["stopped"] = f"feed's posts unchanged for {STUCK} windows"
                break
            if at > args.max_minutes * 60:
                results["stopped"] = f"after {args.max_minutes} minutes"
                break
        results["windows"] = windows
        probe = Probe(suite, world.dense, feed_db, records_db)
        after: list[dict[str, Any]] = []
        results["after"] = after
        for _ in range(RUNS):
            after.append(figure := load(args.seconds))
            print(f"after                  {report.line(figure)}\n    {report.cpu_line(figure)}", flush=True)
        sampler.stop()
        results["new_post_to_records"] = probe.read()

        certificate = officer_calls.listed(run_id)
        results["certificate"] = certificate
        results["timing"] = timing(feed_db, records_db, run_id, triggered_at, certificate)
        results["records_relay_errors"] = relay_errors(records_db)
        results["forget_plan"] = explain_forget(feed_db)
        results["summary"] = summarise(results, target)
    finally:
        if sampler.is_alive():
            sampler.stop()
        results["autovacuum"] = {
            "server": autovacuum.server,
            "stand_in": autovacuum.stop() if autovacuum.is_alive() else [],
        }
        suite.stop()
        feed_db.dispose()
        records_db.dispose()
    results["dataset"] = dataset.describe(world)
    results["dataset"]["records_items"] = copied
    return results


def timing(
    feed_db: Engine, records_db: Engine, run_id: str, triggered_at: datetime, certificate: dict[str, Any]
) -> dict[str, Any]:
    """When each part ended, in seconds after the officer's request: records' run (its
    certificate), feed's last ``internal.records.dispose`` applied (its ``processed_event``),
    and the last event feed's relay delivered."""
    with records_db.connect() as conn:
        ids = [
            row[0]
            for row in conn.execute(
                text("SELECT id FROM outbox_event WHERE type = :t AND subject = :s"),
                {"t": DISPOSE, "s": run_id},
            )
        ]
    with feed_db.connect() as conn:
        applied = conn.execute(
            text("SELECT min(processed_at), max(processed_at) FROM processed_event WHERE id = ANY(:ids)"),
            {"ids": ids},
        ).one()
        relayed = conn.execute(
            text("SELECT max(delivered_at) FROM outbox_delivery WHERE status = 'delivered'")
        ).scalar()

    def since(at: Any) -> float | None:
        if at is None:
            return None
        moment = datetime.fromisoformat(at) if isinstance(at, str) else at
        return round((moment - triggered_at).total_seconds(), 1)

    return {
        "records_started_s": since(certificate["started_at"]),
        "records_finished_s": since(certificate["finished_at"]),
        "dispose_events": len(ids),
        "feed_first_applied_s": since(applied[0]),
        "feed_last_applied_s": since(applied[1]),
        "feed_relay_last_delivered_s": since(relayed),
    }


class Probe:
    """A post written once feed has destroyed the disposed ones: how many of feed's pending
    deliveries are ahead of its ``internal.records.post`` to records (the relay delivers in
    order), how fast they went meanwhile, and whether records had it when read."""

    def __init__(self, suite: Suite, author: uuid.UUID, feed_db: Engine, records_db: Engine) -> None:
        self.feed_db, self.records_db = feed_db, records_db
        resp = httpx.post(
            suite.url + "/api/v1/posts",
            json={"body": "Written after the disposition.", "audience": "organisation"},
            headers={"Authorization": f"Bearer {suite.token(author)}"},
            timeout=30,
        )
        resp.raise_for_status()
        self.post_id = resp.json()["id"]
        self.delivery = scalar(
            feed_db,
            "SELECT min(d.id) FROM outbox_delivery d JOIN outbox_event e ON e.seq = d.event_seq "
            "WHERE e.subject = :s AND d.subscriber = 'records'",
            s=self.post_id,
        )
        self.started = time.monotonic()
        self.ahead = self._ahead()

    def _ahead(self) -> int:
        statement = "SELECT count(*) FROM outbox_delivery WHERE status = 'pending' AND id < :d"
        return int(scalar(self.feed_db, statement, d=self.delivery))

    def read(self) -> dict[str, Any]:
        ahead, seconds = self._ahead(), time.monotonic() - self.started
        rate = (self.ahead - ahead) / seconds
        arrived = scalar(self.records_db, "SELECT count(*) FROM item WHERE id = :i", i=self.post_id)
        return {
            "post_id": self.post_id,
            "deliveries_ahead": self.ahead,
            "deliveries_ahead_later": ahead,
            "seconds_between": round(seconds, 1),
            "delivered_per_s": round(rate, 1),
            "in_records": bool(arrived),
            "expected_wait_s": round(ahead / rate) if rate > 0 else None,
        }


def build_inboxes(suite: Suite, readers: list[uuid.UUID]) -> None:
    """Each reader's first page, read on feed: it builds the reader's inbox, as a reader's
    first visit of the day does."""

    def read(reader: uuid.UUID) -> None:
        headers = {"Authorization": f"Bearer {suite.token(reader)}"}
        httpx.get(suite.feed + HOME, headers=headers, timeout=60).raise_for_status()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(read, readers))


def explain_forget(engine: Engine) -> dict[str, Any]:
    """The plan and time of the statement feed's ``inbox.forget`` runs for a batch of 500
    posts (the newest, whose entries the inboxes hold), rolled back."""
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(text("SELECT id FROM post ORDER BY id DESC LIMIT 500"))]
        plan = conn.execute(
            text("EXPLAIN (ANALYZE, BUFFERS) DELETE FROM home_entry WHERE post_id = ANY(:ids)"), {"ids": ids}
        ).all()
        conn.rollback()
    lines = [re.sub(r"'\{[^}]*\}'", "'{...500 ids...}'", r[0]) for r in plan]
    return {"statement": "DELETE FROM home_entry WHERE post_id = ANY(:500 ids)", "plan": lines}


def relay_errors(engine: Engine) -> list[dict[str, Any]]:
    """Records' deliveries that were refused at least once, by subscriber, status and error."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT subscriber, status, last_error, count(*), max(attempt_count) FROM outbox_delivery "
                "WHERE attempt_count > 0 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
            )
        ).all()
    return [
        {"subscriber": r[0], "status": r[1], "error": r[2], "deliveries": r[3], "most_attempts": r[4]}
        for r in rows
    ]


def _median(figures: list[dict[str, Any]], key: str) -> float:
    return round(float(statistics.median(f[key] for f in figures)), 2)


def summarise(results: dict[str, Any], target: int | None) -> dict[str, Any]:
    windows = results["windows"]
    during = [w for w in windows if w["phase"] != "relays draining"] or windows
    p99s = [w["p99_ms"] for w in during]
    posts = sum(results["certificate"]["counts"].get(k, 0) for k in PROFESSIONAL_POST_CLASSES)
    done = results["timing"]["feed_last_applied_s"]
    return {
        "baseline_p99_ms": _median(results["baseline"], "p99_ms"),
        "baseline_p99_ms_runs": [f["p99_ms"] for f in results["baseline"]],
        "baseline_rps": _median(results["baseline"], "rps"),
        "during_p99_max_ms": max(p99s),
        "during_p99_median_ms": round(statistics.median(p99s), 2),
        "during_rps_median": round(statistics.median(w["rps"] for w in during), 1),
        "during_windows": len(during),
        "during_errors": sum(w["errors"] for w in during),
        "after_p99_ms": _median(results["after"], "p99_ms"),
        "after_p99_ms_runs": [f["p99_ms"] for f in results["after"]],
        "posts_disposed": posts,
        "feed_posts_left": windows[-1]["feed_posts"],
        "feed_target": target,
        "records_run_s": results["timing"]["records_finished_s"],
        "disposal_s": done,
        "posts_per_s": round(posts / done, 1) if done else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.disposition", description=__doc__)
    parser.add_argument("--posts", type=int, default=1_200_000, help="posts in the dataset")
    parser.add_argument("--keep-days", type=int, default=60, help="the policy's keep_days")
    parser.add_argument("--seconds", type=int, default=10, help="length of the baseline and after runs")
    parser.add_argument("--window", type=int, default=10, help="length of each window during disposition")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--inboxes", type=int, default=0, help="readers' inboxes to build besides the dense reader's"
    )
    parser.add_argument(
        "--outbox-history", type=int, default=100_000, help="delivered events already in feed's outbox"
    )
    parser.add_argument("--batch", type=int, default=0, help="RECORDS_DISPOSITION_BATCH (0: the service's)")
    parser.add_argument("--interval", type=float, default=3600, help="RECORDS_DISPOSITION_INTERVAL_SECONDS")
    parser.add_argument("--max-minutes", type=float, default=120, help="stop measuring after this long")
    parser.add_argument(
        "--relay-batch",
        type=int,
        default=10,
        help="RECORDS_RELAY_BATCH_SIZE (0: the service's; see bench/README.md on why 10)",
    )
    parser.add_argument(
        "--drain", action="store_true", help="go on until the relays of records and feed have delivered all"
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases and logs under var/")
    parser.add_argument("--output", type=Path, default=RESULTS / "disposition-postgres.json")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    (ROOT / "var").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-disposition-", dir=ROOT / "var"))
    try:
        results = measure(args, work)
    finally:
        if not args.keep:
            drop_databases()
            shutil.rmtree(work, ignore_errors=True)
    results["machine"] = {
        "cpus": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(json.dumps(results["summary"], indent=2), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
