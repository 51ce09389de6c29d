"""A matter's exports (decision 0033, "Exports"): the scope's checks, one job per matter, the
package (its entries, manifest, versions and snapshot), determinism, redaction, the signed
link, the worker's lease and failures, and the expiry of old packages.

The records copy is filled here by inserting its rows, as its event consumers would; one test
goes through real posts and the suite's event delivery."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import os
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import func, select, update
from sqlmodel import col

from kit.ids import new_id
from services.identity.manage import grant_role
from services.records import exports
from services.records.models import AuditEntry, Download, Export, Item, ItemVersion, MembershipEvent
from tests.helpers import auth, create_group, login, register, unique, with_personal

MATTERS = "/api/v1/records/matters"
FROM = "2026-01-01T00:00:00+00:00"
TO = "2026-12-31T00:00:00+00:00"
INSIDE = datetime(2026, 6, 1, tzinfo=UTC)


# --- helpers -------------------------------------------------------------------------------


async def officer(suite: Any) -> tuple[str, str]:
    """A records officer's (token, persona id): the role granted as an operator does."""
    email = await register(suite.client, unique("officer"))
    db, outbox = suite.identity.state.database, suite.identity.state.outbox
    assert await grant_role(db, email, "records", outbox)
    tokens = await login(suite.client, email)
    await suite.deliver()
    return tokens["access_token"], tokens["persona_id"]


async def someone(suite: Any, handle: str) -> dict[str, str]:
    """A person: token, professional persona id, account id and handle."""
    handle = unique(handle)
    email = await register(suite.client, handle)
    tokens = await login(suite.client, email)
    me = (await suite.client.get("/api/v1/me", headers=auth(tokens["access_token"]))).json()
    await suite.deliver()  # records' persona replica knows them
    return {
        "token": tokens["access_token"],
        "id": tokens["persona_id"],
        "account": me["account_id"],
        "handle": handle,
        "email": email,
    }


async def matter(suite: Any, token: str) -> str:
    body = {
        "name": "Request 42",
        "reference": unique("ATI-2026"),
        "reason": "An access-to-information request.",
    }
    resp = await suite.client.post(MATTERS, json=body, headers=auth(token))
    assert resp.status_code == 201, resp.text
    matter_id: str = resp.json()["id"]
    return matter_id


def scope(**fields: Any) -> dict[str, Any]:
    return {"date_from": FROM, "date_to": TO, **fields}


async def ask(suite: Any, token: str, matter_id: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = await suite.client.post(f"{MATTERS}/{matter_id}/exports", json=body, headers=auth(token))
    assert resp.status_code == 202, resp.text
    assert resp.headers["location"] == f"{MATTERS}/{matter_id}/exports/{resp.json()['id']}"
    created: dict[str, Any] = resp.json()
    return created


async def read(suite: Any, token: str, matter_id: str, export_id: str) -> dict[str, Any]:
    resp = await suite.client.get(f"{MATTERS}/{matter_id}/exports/{export_id}", headers=auth(token))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def produce(suite: Any, token: str, matter_id: str, export_id: str) -> dict[str, Any]:
    """Runs the worker once and reads the export, which must be ready."""
    assert await exports.run_once(suite.records)
    body = await read(suite, token, matter_id, export_id)
    assert body["status"] == "ready", body
    return body


async def download(suite: Any, token: str, export: dict[str, Any]) -> zipfile.ZipFile:
    resp = await suite.client.get(export["download"]["url"], headers=auth(token))
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/zip"
    assert "attachment" in resp.headers["content-disposition"]
    assert hashlib.sha256(resp.content).hexdigest() == export["sha256"]
    assert len(resp.content) == export["size"]
    return zipfile.ZipFile(io.BytesIO(resp.content))


def jsonl(package: zipfile.ZipFile, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in package.read(name).decode().splitlines()]


async def add(suite: Any, *rows: Any) -> None:
    async with suite.records.state.database.sessionmaker() as session:
        session.add_all(rows)
        await session.commit()


def item(kind: str, author: str, *, created: datetime = INSIDE, **fields: Any) -> Item:
    context = fields.pop("context", "professional")
    klass = fields.pop(
        "klass",
        "personal_content"
        if context == "personal"
        else {"post": "organisation_posts", "comment": "comments", "reaction": "reactions"}[kind],
    )
    return Item(
        id=fields.pop("id", new_id()),
        kind=kind,
        klass=klass,
        context=context,
        author_id=uuid.UUID(author),
        created_at=created,
        last_activity_at=created,
        changed_at=created,
        **fields,
    )


def version(of: Item, number: int, change: str, body: str | None = None, **fields: Any) -> ItemVersion:
    return ItemVersion(
        item_id=of.id,
        version=number,
        change=change,
        body=body,
        at=fields.pop("at", of.created_at + timedelta(minutes=number)),
        **fields,
    )


async def export_rows(suite: Any) -> list[Export]:
    async with suite.records.state.database.sessionmaker() as session:
        return list((await session.scalars(select(Export))).all())


# --- asking for an export ----------------------------------------------------------------


async def test_the_scope_is_checked_and_nothing_is_written_on_refusal(suite):
    token, _ = await officer(suite)
    ada = await someone(suite, "ada")
    matter_id = await matter(suite, token)
    url = f"{MATTERS}/{matter_id}/exports"

    async def refused(
        body: dict[str, Any], status: int, slug: str, path: str = url, who: str = token
    ) -> None:
        resp = await suite.client.post(path, json=body, headers=auth(who))
        assert resp.status_code == status, resp.text
        assert resp.json()["type"].endswith("/" + slug), resp.json()

    await refused(scope(), 422, "empty-scope")
    await refused({"custodians": [ada["account"]]}, 422, "unbounded-scope")
    await refused({"custodians": [ada["account"]], "date_from": FROM}, 422, "unbounded-scope")
    await refused(scope(custodians=[ada["account"]], date_to=FROM), 422, "validation")
    await refused(
        scope(custodians=[ada["account"]], date_from="0001-01-01T00:00:00+05:00"), 422, "validation"
    )
    await refused(scope(custodians=[ada["account"]], contexts=[]), 422, "validation")
    await refused(scope(custodians=[ada["account"]], classes=["audit_log"]), 422, "validation")
    await refused(scope(custodians=[ada["account"]], terms=["x" * 101]), 422, "validation")
    await refused(scope(custodians=[str(uuid.uuid4()) for _ in range(101)]), 422, "validation")
    await refused(scope(custodians=[str(uuid.uuid4())]), 422, "unknown-custodian")
    await refused(
        scope(custodians=[ada["account"]]), 404, "not-found", path=f"{MATTERS}/{uuid.uuid4()}/exports"
    )
    await refused(scope(custodians=[ada["account"]]), 403, "not-an-officer", who=ada["token"])
    resp = await suite.client.post(
        f"{MATTERS}/{matter_id}/close", json={"reason": "Answered."}, headers=auth(token)
    )
    assert resp.status_code == 200, resp.text
    await refused(scope(custodians=[ada["account"]]), 409, "matter-closed")
    assert await export_rows(suite) == []


async def test_two_requests_at_once_make_one_job(suite):
    token, _ = await officer(suite)
    ada = await someone(suite, "ada")
    matter_id = await matter(suite, token)
    url = f"{MATTERS}/{matter_id}/exports"
    body = scope(custodians=[ada["account"]])
    answers = await asyncio.gather(
        *(suite.client.post(url, json=body, headers=auth(token)) for _ in range(2))
    )
    assert sorted(r.status_code for r in answers) == [202, 409], [r.text for r in answers]
    refused = next(r for r in answers if r.status_code == 409)
    assert refused.json()["type"].endswith("/export-running")
    again = await suite.client.post(url, json=body, headers=auth(token))
    assert again.status_code == 409
    rows = await export_rows(suite)
    assert len(rows) == 1 and rows[0].status == "queued"
    # Once it is written, another may be asked for.
    assert await exports.run_once(suite.records)
    assert (await suite.client.post(url, json=body, headers=auth(token))).status_code == 202


# --- the package ----------------------------------------------------------------------------


async def test_a_full_export_from_the_copy(suite):
    token, officer_id = await officer(suite)
    ada, bob = await someone(suite, "ada"), await someone(suite, "bob")
    matter_id = await matter(suite, token)
    group_id = str(uuid.uuid4())
    # Ada's post: created, edited, deleted, and edited once more after the export was asked.
    post = item("post", ada["id"])
    outside = item("post", ada["id"], created=datetime(2025, 6, 1, tzinfo=UTC))
    bobs = item("post", bob["id"])
    comment = item("comment", bob["id"], post_id=post.id, created=datetime(2027, 1, 5, tzinfo=UTC))
    reaction = item("reaction", bob["id"], post_id=post.id, reaction="like")
    await add(
        suite,
        post,
        outside,
        bobs,
        comment,
        reaction,
        version(post, 1, "created", "Budget draft v1", mentions=[bob["id"]], tags=["budget"]),
        version(post, 2, "edited", "Budget draft v2"),
        version(post, 3, "deleted"),
        version(outside, 1, "created", "Before the range"),
        version(bobs, 1, "created", "Not a custodian's"),
        version(comment, 1, "created", "A comment, outside the range but on Ada's post"),
        version(reaction, 1, "added"),
        MembershipEvent(
            id=uuid.uuid4(),
            group_id=uuid.UUID(group_id),
            persona_id=uuid.UUID(ada["id"]),
            context="professional",
            role="member",
            change="added",
            at=INSIDE,
        ),
    )
    created = await ask(suite, token, matter_id, scope(custodians=[ada["account"]]))
    assert created["status"] == "queued" and created["download"] is None and created["percent"] == 0
    assert created["scope"]["personas"] == [
        {"persona_id": ada["id"], "account_id": ada["account"], "context": "professional"}
    ]
    # A version recorded after the export was asked for is not in it.
    await add(
        suite, version(post, 4, "edited", "Too late", recorded_at=datetime.now(UTC) + timedelta(hours=1))
    )

    export = await produce(suite, token, matter_id, created["id"])
    assert export["percent"] == 100 and export["counted"] == export["total"] == 3
    assert export["redacted"] == {} and export["error"] is None and export["attempts"] == 1
    package = await download(suite, token, export)
    names = package.namelist()
    assert names == [
        "posts.jsonl",
        "posts.csv",
        "comments.jsonl",
        "comments.csv",
        "reactions.jsonl",
        "reactions.csv",
        "memberships.jsonl",
        "memberships.csv",
        "groups.jsonl",
        "profiles.jsonl",
        "custody.jsonl",
        "manifest.json",
    ]
    posts = jsonl(package, "posts.jsonl")
    assert [(p["id"], p["version"], p["change"]) for p in posts] == [
        (str(post.id), 1, "created"),
        (str(post.id), 2, "edited"),
        (str(post.id), 3, "deleted"),
    ]
    assert [p["body"] for p in posts] == ["Budget draft v1", "Budget draft v2", "Budget draft v2"]
    assert [p["text_version"] for p in posts] == [1, 2, 2]
    assert posts[0]["mentions"] == [bob["id"]] and posts[0]["tags"] == ["budget"]
    assert posts[0]["author_id"] == ada["id"] and posts[0]["class"] == "organisation_posts"
    rows = list(csv.DictReader(io.StringIO(package.read("posts.csv").decode())))
    assert [(r["id"], r["version"], r["body"]) for r in rows] == [
        (p["id"], str(p["version"]), p["body"]) for p in posts
    ]
    assert [c["id"] for c in jsonl(package, "comments.jsonl")] == [str(comment.id)]
    assert [(r["id"], r["author_id"]) for r in jsonl(package, "reactions.jsonl")] == [
        (str(reaction.id), bob["id"])
    ]
    assert [m["group_id"] for m in jsonl(package, "memberships.jsonl")] == [group_id]
    profiles = jsonl(package, "profiles.jsonl")
    assert [(p["id"], p["handle"]) for p in profiles] == [(ada["id"], ada["handle"])]
    (custody,) = jsonl(package, "custody.jsonl")
    assert custody["by"] == officer_id and custody["matter_id"] == matter_id
    assert custody["scope"]["custodians"] == [ada["account"]] and "profiles" not in custody["scope"]

    manifest = json.loads(package.read("manifest.json"))
    assert manifest["as_of"] == datetime.fromisoformat(export["as_of"]).isoformat()
    assert [e["name"] for e in manifest["entries"]] == names[:-1]
    for entry in manifest["entries"]:
        data = package.read(entry["name"])
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["bytes"] == len(data)
    counts = {e["name"]: e["items"] for e in manifest["entries"]}
    assert counts["posts.jsonl"] == counts["posts.csv"] == 1 and counts["comments.jsonl"] == 1
    assert (
        counts["reactions.jsonl"] == 1 and counts["memberships.jsonl"] == 1 and counts["profiles.jsonl"] == 1
    )
    assert manifest["items"] == 3 and manifest["scope"]["group_ids"] == []
    for info in package.infolist():
        assert info.date_time == (1980, 1, 1, 0, 0, 0) and info.compress_type == zipfile.ZIP_DEFLATED

    # The download is in the custody and in the audit log, as is every call.
    again = await read(suite, token, matter_id, created["id"])
    assert again["custody"]["downloads_total"] == 1
    assert [d["by"] for d in again["custody"]["downloads"]] == [officer_id]
    listed = await suite.client.get(f"{MATTERS}/{matter_id}/exports", headers=auth(token))
    assert [e["id"] for e in listed.json()["items"]] == [created["id"]]
    async with suite.records.state.database.sessionmaker() as session:
        entries = (
            await session.scalars(select(AuditEntry).where(col(AuditEntry.matter_id) == uuid.UUID(matter_id)))
        ).all()
    actions = [e.action for e in entries]
    for action in ("export.requested", "export.read", "export.downloaded", "exports.listed"):
        assert action in actions, actions
    assert all(e.officer_id == uuid.UUID(officer_id) for e in entries)


async def test_latest_versions_only_leave_deleted_items_out(suite):
    token, _ = await officer(suite)
    ada = await someone(suite, "ada")
    matter_id = await matter(suite, token)
    kept, deleted = item("post", ada["id"]), item("post", ada["id"])
    await add(
        suite,
        kept,
        deleted,
        version(kept, 1, "created", "First"),
        version(kept, 2, "edited", "Second"),
        version(kept, 3, "moderated"),
        version(deleted, 1, "created", "Gone"),
        version(deleted, 2, "deleted"),
    )
    created = await ask(suite, token, matter_id, scope(custodians=[ada["account"]], include_versions=False))
    package = await download(suite, token, await produce(suite, token, matter_id, created["id"]))
    assert [(p["id"], p["version"], p["body"]) for p in jsonl(package, "posts.jsonl")] == [
        (str(kept.id), 3, "Second")
    ]


async def test_groups_terms_contexts_and_classes_choose_the_items(suite):
    token, _ = await officer(suite)
    ada, bob = await someone(suite, "ada"), await someone(suite, "bob")
    matter_id = await matter(suite, token)
    group = uuid.uuid4()
    in_group = item("post", bob["id"], group_id=group, klass="group_posts")
    elsewhere = item("post", bob["id"])
    mentions_term = item("post", ada["id"], group_id=group, klass="group_posts")
    await add(
        suite,
        in_group,
        elsewhere,
        mentions_term,
        version(in_group, 1, "created", "Nothing here"),
        version(elsewhere, 1, "created", "The PROCUREMENT file"),
        version(mentions_term, 1, "created", "First text"),
        version(mentions_term, 2, "edited", "Now about procurement_2026"),
    )
    by_group = await ask(suite, token, matter_id, scope(group_ids=[str(group)], terms=["Procurement_"]))
    package = await download(suite, token, await produce(suite, token, matter_id, by_group["id"]))
    assert [p["id"] for p in jsonl(package, "posts.jsonl")] == [str(mentions_term.id)] * 2
    assert by_group["scope"]["personas"] == []
    no_posts = await ask(suite, token, matter_id, scope(group_ids=[str(group)], classes=["comments"]))
    package = await download(suite, token, await produce(suite, token, matter_id, no_posts["id"]))
    assert "posts.jsonl" not in package.namelist() and "comments.jsonl" in package.namelist()
    personal = await ask(suite, token, matter_id, scope(group_ids=[str(group)], contexts=["personal"]))
    package = await download(suite, token, await produce(suite, token, matter_id, personal["id"]))
    assert jsonl(package, "posts.jsonl") == []


async def test_two_exports_of_one_scope_at_one_instant_are_the_same_bytes(suite):
    token, _ = await officer(suite)
    ada, bob = await someone(suite, "ada"), await someone(suite, "bob")
    matter_id = await matter(suite, token)
    rows: list[Any] = []
    for n in range(5):
        post = item("post", ada["id"])
        comment = item("comment", bob["id"], post_id=post.id)
        rows += [
            post,
            comment,
            version(post, 1, "created", f"Post {n} é"),
            version(post, 2, "edited", f"=Post {n}"),
        ]
        rows += [version(comment, 1, "created", f"Comment {n}", mentions=[ada["id"]])]
    await add(suite, *rows)
    first = await ask(suite, token, matter_id, scope(custodians=[ada["account"]]))
    one = await download(suite, token, await produce(suite, token, matter_id, first["id"]))
    second = await ask(suite, token, matter_id, scope(custodians=[ada["account"]]))
    async with suite.records.state.database.sessionmaker() as session:
        as_of = (await session.get(Export, uuid.UUID(first["id"]))).as_of
        await session.execute(
            update(Export).where(col(Export.id) == uuid.UUID(second["id"])).values(as_of=as_of)
        )
        await session.commit()
    two = await download(suite, token, await produce(suite, token, matter_id, second["id"]))
    assert one.namelist() == two.namelist()
    for name in one.namelist()[:-1]:
        assert one.read(name) == two.read(name), name
        assert one.getinfo(name).CRC == two.getinfo(name).CRC
        assert one.getinfo(name).compress_size == two.getinfo(name).compress_size
    manifests = [json.loads(p.read("manifest.json")) for p in (one, two)]
    assert manifests[0].pop("generated_at") != "" and manifests[1].pop("generated_at") != ""
    assert manifests[0] == manifests[1]
    assert len(jsonl(one, "posts.jsonl")) == 10
    # a cell a spreadsheet would read as a formula is quoted in the CSV only
    assert (
        "'=Post 0" in one.read("posts.csv").decode()
        and '"body":"=Post 0"' in one.read("posts.jsonl").decode()
    )


async def test_redaction_replaces_everyone_but_the_custodians(suite):
    token, _ = await officer(suite)
    ada, bob, cy = await someone(suite, "ada"), await someone(suite, "bob"), await someone(suite, "cy")
    matter_id = await matter(suite, token)
    group = uuid.uuid4()
    post = item("post", ada["id"])
    comment = item("comment", bob["id"], post_id=post.id)
    reaction = item("reaction", cy["id"], post_id=post.id, reaction="like")
    text = f"Thanks @{bob['handle']} and @{cy['handle'].upper()}, cc @{ada['handle']} and @ghost_handle"
    await add(
        suite,
        post,
        comment,
        reaction,
        version(post, 1, "created", text, mentions=[bob["id"], cy["id"], ada["id"]]),
        version(comment, 1, "created", f"Agreed @{ada['handle']}", mentions=[ada["id"]]),
        version(reaction, 1, "added"),
        *(
            MembershipEvent(
                id=uuid.uuid4(),
                group_id=group,
                persona_id=uuid.UUID(p),
                context="professional",
                change="added",
                at=INSIDE,
            )
            for p in (ada["id"], bob["id"])
        ),
    )
    created = await ask(
        suite, token, matter_id, scope(custodians=[ada["account"]], group_ids=[str(group)], redact=True)
    )
    export = await produce(suite, token, matter_id, created["id"])
    package = await download(suite, token, export)
    everything = b"".join(package.read(n) for n in package.namelist()).decode()
    for secret in (bob["id"], cy["id"], bob["handle"], cy["handle"], cy["handle"].upper(), "ghost_handle"):
        assert secret not in everything, secret
    (line,) = jsonl(package, "posts.jsonl")
    bob_alias, cy_alias, ada_kept = line["mentions"]
    assert ada_kept == ada["id"] and line["author_id"] == ada["id"]
    assert bob_alias.startswith("person-") and len(bob_alias) == len("person-") + 10 and bob_alias != cy_alias
    assert line["body"].startswith(f"Thanks @{bob_alias} and @{cy_alias}, cc @{ada['handle']} and @person-")
    (comment_line,) = jsonl(package, "comments.jsonl")
    assert comment_line["author_id"] == bob_alias and comment_line["body"] == f"Agreed @{ada['handle']}"
    assert jsonl(package, "reactions.jsonl")[0]["author_id"] == cy_alias
    members = sorted(m["persona_id"] for m in jsonl(package, "memberships.jsonl"))
    assert members == sorted([ada["id"], bob_alias])
    assert export["redacted"] == {
        "authors": 1,
        "handles": 3,
        "mentions": 2,
        "members": 1,
        "personas": 2,
        "reactions": 1,
    }
    assert json.loads(package.read("manifest.json"))["redacted"] == export["redacted"]


# --- the link -----------------------------------------------------------------------------


async def test_the_download_link_is_signed_and_expires(suite):
    token, _ = await officer(suite)
    ada = await someone(suite, "ada")
    matter_id = await matter(suite, token)
    created = await ask(suite, token, matter_id, scope(custodians=[ada["account"]]))
    queued_link = f"{MATTERS}/{matter_id}/exports/{created['id']}/package"
    settings = suite.records.state.settings
    soon = int(datetime.now(UTC).timestamp()) + 60
    resp = await suite.client.get(
        queued_link,
        params={"expires": soon, "signature": exports.signature(settings, uuid.UUID(created["id"]), soon)},
        headers=auth(token),
    )
    assert resp.status_code == 409 and resp.json()["type"].endswith("/export-not-ready")
    export = await produce(suite, token, matter_id, created["id"])
    url = urlsplit(export["download"]["url"])
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    expires = int(query["expires"])
    assert abs(expires - (datetime.now(UTC).timestamp() + settings.link_minutes * 60)) < 30
    assert datetime.fromisoformat(export["download"]["expires_at"]).timestamp() == expires

    async def fetch(params: dict[str, Any], who: str = token, path: str = url.path) -> Any:
        return await suite.client.get(path, params=params, headers=auth(who))

    assert (await fetch(query)).status_code == 200
    tampered = {**query, "signature": "0" * 64}
    resp = await fetch(tampered)
    assert resp.status_code == 403 and resp.json()["type"].endswith("/bad-signature")
    longer = {**query, "expires": str(expires + 3600)}
    assert (await fetch(longer)).json()["type"].endswith("/bad-signature")
    other = await ask(suite, token, matter_id, scope(custodians=[ada["account"]]))
    moved = await fetch(query, path=f"{MATTERS}/{matter_id}/exports/{other['id']}/package")
    assert moved.status_code == 403
    past = int(datetime.now(UTC).timestamp()) - 1
    expired = {"expires": past, "signature": exports.signature(settings, uuid.UUID(export["id"]), past)}
    resp = await fetch(expired)
    assert resp.status_code == 410 and resp.json()["type"].endswith("/link-expired")
    resp = await fetch({"expires": "soon", "signature": "x"})
    assert resp.status_code == 422
    assert (await fetch(query, who=ada["token"])).status_code == 403  # the records token is needed too
    assert (await suite.client.get(url.path, params=query)).status_code == 401
    after = await read(suite, token, matter_id, export["id"])
    assert after["custody"]["downloads_total"] == 1  # only the one that was served


# --- the worker ---------------------------------------------------------------------------


async def test_a_killed_job_is_started_again_and_finished(suite):
    token, _ = await officer(suite)
    ada = await someone(suite, "ada")
    matter_id = await matter(suite, token)
    post = item("post", ada["id"])
    await add(suite, post, version(post, 1, "created", "Kept"))
    created = await ask(suite, token, matter_id, scope(custodians=[ada["account"]]))
    export_id = uuid.UUID(created["id"])
    # A worker took it, wrote part of the package and was killed: its lease ran out.
    async with suite.records.state.database.sessionmaker() as session:
        await session.execute(
            update(Export)
            .where(col(Export.id) == export_id)
            .values(status="running", attempts=1, lease_until=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    folder = Path(suite.records.state.settings.export_dir)
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f"{export_id}.zip.part"
    part.write_bytes(b"PK\x03\x04 half a package")
    # A job whose lease has not run out is left to its worker.
    async with suite.records.state.database.sessionmaker() as session:
        await session.execute(
            update(Export)
            .where(col(Export.id) == export_id)
            .values(lease_until=datetime.now(UTC) + timedelta(minutes=1))
        )
        await session.commit()
    assert not await exports.run_once(suite.records)
    async with suite.records.state.database.sessionmaker() as session:
        await session.execute(
            update(Export)
            .where(col(Export.id) == export_id)
            .values(lease_until=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    export = await produce(suite, token, matter_id, created["id"])
    assert export["attempts"] == 2
    assert not part.exists() and (folder / f"{export_id}.zip").stat().st_mode & 0o777 == 0o600
    package = await download(suite, token, export)
    assert package.testzip() is None and [p["body"] for p in jsonl(package, "posts.jsonl")] == ["Kept"]


async def test_a_job_past_its_attempts_stays_failed(suite):
    token, _ = await officer(suite)
    ada = await someone(suite, "ada")
    matter_id = await matter(suite, token)
    created = await ask(suite, token, matter_id, scope(custodians=[ada["account"]]))
    async with suite.records.state.database.sessionmaker() as session:
        await session.execute(
            update(Export)
            .where(col(Export.id) == uuid.UUID(created["id"]))
            .values(status="running", attempts=3, lease_until=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    assert not await exports.run_once(suite.records)
    export = await read(suite, token, matter_id, created["id"])
    assert export["status"] == "failed" and export["attempts"] == 3 and "3 attempts" in export["error"]
    # the matter may ask again
    await ask(suite, token, matter_id, scope(custodians=[ada["account"]]))


async def test_a_failing_job_is_failed_with_no_package(suite, tmp_path):
    token, _ = await officer(suite)
    ada = await someone(suite, "ada")
    matter_id = await matter(suite, token)
    created = await ask(suite, token, matter_id, scope(custodians=[ada["account"]]))
    not_a_folder = tmp_path / "exports"
    not_a_folder.write_text("a file where a folder should be")
    settings = suite.records.state.settings.model_copy(update={"export_dir": str(not_a_folder / "records")})
    assert await exports.run_once(suite.records, settings=settings)
    export = await read(suite, token, matter_id, created["id"])
    assert export["status"] == "failed" and export["download"] is None and export["attempts"] == 1
    assert export["error"] == "The package could not be written: Not a directory."
    assert not list(tmp_path.glob("**/*.zip*"))
    assert not await exports.run_once(suite.records)  # a failed job is not taken again

    # A scope over the limit fails with the reason, and leaves no file either.
    post = item("post", ada["id"])
    await add(suite, post, version(post, 1, "created", "One"), item("post", ada["id"]))
    again = await ask(suite, token, matter_id, scope(custodians=[ada["account"]]))
    folder = tmp_path / "ok"
    settings = suite.records.state.settings.model_copy(
        update={"export_dir": str(folder), "export_max_items": 1}
    )
    assert await exports.run_once(suite.records, settings=settings)
    export = await read(suite, token, matter_id, again["id"])
    assert export["status"] == "failed" and "more than the 1 one export may hold" in export["error"]
    assert export["total"] == 2 and os.listdir(folder) == []


async def test_old_packages_are_deleted_and_their_exports_expired(suite):
    token, _ = await officer(suite)
    ada = await someone(suite, "ada")
    matter_id = await matter(suite, token)
    old = await produce(
        suite,
        token,
        matter_id,
        (await ask(suite, token, matter_id, scope(custodians=[ada["account"]])))["id"],
    )
    recent = await produce(
        suite,
        token,
        matter_id,
        (await ask(suite, token, matter_id, scope(custodians=[ada["account"]])))["id"],
    )
    days = suite.records.state.settings.export_days
    async with suite.records.state.database.sessionmaker() as session:
        await session.execute(
            update(Export)
            .where(col(Export.id) == uuid.UUID(old["id"]))
            .values(finished_at=datetime.now(UTC) - timedelta(days=days, minutes=1))
        )
        await session.commit()
    folder = Path(suite.records.state.settings.export_dir)
    exporter = exports.Exporter(
        suite.records.state.database, suite.records.state.settings, suite.records.state.http_client
    )
    assert await exporter.expire() == 1
    assert not (folder / f"{old['id']}.zip").exists() and (folder / f"{recent['id']}.zip").exists()
    gone = await read(suite, token, matter_id, old["id"])
    assert gone["status"] == "expired" and gone["download"] is None and gone["sha256"] == old["sha256"]
    resp = await suite.client.get(old["download"]["url"], headers=auth(token))
    assert resp.status_code == 410 and resp.json()["type"].endswith("/export-expired")
    assert (await suite.client.get(recent["download"]["url"], headers=auth(token))).status_code == 200
    assert await exporter.expire() == 0
    async with suite.records.state.database.sessionmaker() as session:
        downloads = await session.scalar(select(func.count()).select_from(Download))
    assert downloads == 1


async def test_an_export_of_real_posts_through_the_events(suite):
    """Posts, an edit, a deletion, a comment and a group, made through the API and carried
    to the records copy by the events: the custodian's two personas are both in it."""
    token, _ = await officer(suite)
    ada = await with_personal(suite.client, unique("ada"))
    account = (await suite.client.get("/api/v1/me", headers=auth(ada["pro"]))).json()["account_id"]
    bob = await someone(suite, "bob")
    await suite.deliver()
    group = await create_group(suite.client, ada["pro"], unique("budget"))
    await suite.deliver()  # feed learns the group

    async def posted(who: str, body: dict[str, Any]) -> str:
        resp = await suite.client.post("/api/v1/posts", json=body, headers=auth(who))
        assert resp.status_code == 201, resp.text
        post_id: str = resp.json()["id"]
        return post_id

    work = await posted(ada["pro"], {"body": "Budget draft"})
    resp = await suite.client.patch(
        f"/api/v1/posts/{work}", json={"body": "Budget final"}, headers=auth(ada["pro"])
    )
    assert resp.status_code == 200, resp.text
    in_group = await posted(
        ada["pro"], {"body": "For the group", "audience": "group", "group_id": group["id"]}
    )
    home = await posted(ada["personal"], {"body": "Weekend plans"})
    assert (
        await suite.client.delete(f"/api/v1/posts/{home}", headers=auth(ada["personal"]))
    ).status_code == 204
    resp = await suite.client.post(
        f"/api/v1/posts/{work}/comments", json={"body": "Looks right"}, headers=auth(bob["token"])
    )
    assert resp.status_code == 201, resp.text
    await posted(bob["token"], {"body": "Bob's own"})
    await suite.deliver()
    matter_id = await matter(suite, token)
    today = datetime.now(UTC)
    body = {
        "custodians": [account],
        "date_from": (today - timedelta(days=1)).isoformat(),
        "date_to": (today + timedelta(days=1)).isoformat(),
    }
    export = await produce(suite, token, matter_id, (await ask(suite, token, matter_id, body))["id"])
    package = await download(suite, token, export)
    posts = jsonl(package, "posts.jsonl")
    by_post: dict[str, list[tuple[str, str]]] = {}
    for line in posts:
        by_post.setdefault(line["id"], []).append((line["change"], line["body"]))
    assert by_post == {
        work: [("created", "Budget draft"), ("edited", "Budget final")],
        in_group: [("created", "For the group")],
        home: [("created", "Weekend plans"), ("deleted", "Weekend plans")],
    }
    assert {p["author_id"] for p in posts} == {ada["pro_id"], ada["personal_id"]}
    assert [(c["author_id"], c["body"]) for c in jsonl(package, "comments.jsonl")] == [
        (bob["id"], "Looks right")
    ]
    groups = jsonl(package, "groups.jsonl")
    assert [g["id"] for g in groups] == [group["id"]] and groups[0]["charter"]["handle"] == group["handle"]
    assert {m["group_id"] for m in jsonl(package, "memberships.jsonl")} == {group["id"]}
    assert sorted(p["id"] for p in jsonl(package, "profiles.jsonl")) == sorted(
        [ada["pro_id"], ada["personal_id"]]
    )
