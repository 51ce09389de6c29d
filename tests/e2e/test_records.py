"""Records end to end, through the gateway to the six real processes (decision 0033): a matter
from hold to export to release to disposition. A custodian's post, edited and then deleted by
its author under a hold, is in the export with every version, in both contexts; a policy that
disposes of it at once leaves it while the hold stands; once the hold is released, the next run
destroys it in feed, where no row, comment or search result is left, and counts it in the
certificate."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.people import Headers, Person, grant, ids, until
from tests.helpers import unique
from tests.processes import LIMITS, Running, eventually

pytestmark = pytest.mark.e2e
RECORDS = "/api/v1/records"


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _ok(resp: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _account_id(client: httpx.Client, admin: Headers, email: str) -> str:
    found = _ok(client.get("/api/v1/admin/accounts", params={"q": email}, headers=admin))
    (account,) = [a for a in found["items"] if a["email"] == email]
    return str(account["id"])


def _export(client: httpx.Client, officer: Headers, matter: str, scope: dict[str, Any]) -> zipfile.ZipFile:
    """Runs an export to its end and downloads its package through its link."""
    made = _ok(client.post(f"{RECORDS}/matters/{matter}/exports", json=scope, headers=officer), 202)

    def ready() -> dict[str, Any] | None:
        body = _ok(client.get(f"{RECORDS}/matters/{matter}/exports/{made['id']}", headers=officer))
        assert body["status"] in ("queued", "running", "ready"), body
        return body if body["status"] == "ready" else None

    export = eventually(ready, timeout=60)
    assert export, "the export never finished"
    package = client.get(export["download"]["url"], headers=officer)
    assert package.status_code == 200, package.text
    assert hashlib.sha256(package.content).hexdigest() == export["sha256"]
    return zipfile.ZipFile(io.BytesIO(package.content))


def _lines(package: zipfile.ZipFile, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in package.read(name).decode().splitlines() if line]


def _run(client: httpx.Client, officer: Headers) -> dict[str, Any]:
    """Starts a disposition and waits for its certificate to be finished."""
    started = client.post(f"{RECORDS}/dispositions", headers=officer)
    assert started.status_code == 202, started.text

    def finished() -> dict[str, Any] | None:
        body = _ok(client.get(started.headers["location"], headers=officer))
        assert body["status"] in ("running", "finished"), body
        return body if body["status"] == "finished" else None

    certificate = eventually(finished, timeout=60)
    assert certificate, "the disposition never finished"
    return certificate


def _feed_rows(running: Running, sql: str, *params: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(running.var / "feed.db") as db:
        return db.execute(sql, params).fetchall()


def test_a_matter_from_hold_to_export_to_release_to_disposition(fresh_running: Running) -> None:
    running = fresh_running
    with httpx.Client(base_url=running.url(), timeout=30, limits=LIMITS) as client:
        author, reader = Person(client, running, "ada"), Person(client, running, "bob")
        clerk, boss = Person(client, running, "rec"), Person(client, running, "adm")
        grant(running, clerk, "records")
        grant(running, boss, "admin")
        officer, admin = clerk.headers("professional"), boss.headers("professional")
        until(
            lambda: client.get(f"{RECORDS}/policies", headers=officer).status_code == 200,
            "records never learnt of the officer's role",
        )
        start = datetime.now(UTC) - timedelta(minutes=5)

        # The author writes in both contexts; the reader comments on the professional post.
        word = unique("budget")
        pro = _ok(
            client.post(
                "/api/v1/posts", json={"body": f"draft {word}"}, headers=author.headers("professional")
            ),
            201,
        )
        _ok(
            client.patch(
                f"/api/v1/posts/{pro['id']}",
                json={"body": f"final {word}"},
                headers=author.headers("professional"),
            )
        )
        home = _ok(
            client.post("/api/v1/posts", json={"body": f"home {word}"}, headers=author.headers("personal")),
            201,
        )
        comment = eventually(
            lambda: client.post(
                f"/api/v1/posts/{pro['id']}/comments",
                json={"body": "Noted."},
                headers=reader.headers("professional"),
            ).json(),
            timeout=60,
        )
        assert comment and "id" in comment, comment
        until(
            lambda: pro["id"] in ids(client, "/api/v1/posts", reader.headers("professional"), q=word),
            "not found",
        )

        # A matter holds the author's account; then the author deletes the post.
        custodian = _account_id(client, admin, author.email)
        matter = _ok(
            client.post(
                f"{RECORDS}/matters",
                json={
                    "name": "Budget request",
                    "reference": unique("ATIP-2026"),
                    "reason": "Access request A-1.",
                },
                headers=officer,
            ),
            201,
        )
        hold = _ok(
            client.post(
                f"{RECORDS}/matters/{matter['id']}/holds",
                json={"custodians": [custodian], "date_from": _iso(start)},
                headers=officer,
            ),
            201,
        )
        assert {p["context"] for p in hold["personas"]} == {"professional", "personal"}
        assert (
            client.delete(f"/api/v1/posts/{pro['id']}", headers=author.headers("professional")).status_code
            == 204
        )
        until(
            lambda: (
                client.get(f"/api/v1/posts/{pro['id']}", headers=reader.headers("professional")).status_code
                == 404
            ),
            "the deleted post stayed visible",
        )

        # The export holds the deleted post with its history, and the personal post.
        scope = {
            "custodians": [custodian],
            "date_from": _iso(start),
            "date_to": _iso(datetime.now(UTC) + timedelta(minutes=5)),
        }

        def exported() -> list[dict[str, Any]] | None:
            posts = _lines(_export(client, officer, matter["id"], scope), "posts.jsonl")
            versions = [p for p in posts if p["id"] == pro["id"]]
            return versions if any(v["change"] == "deleted" for v in versions) else None

        versions = eventually(exported, timeout=60)
        assert versions, "the deletion never reached the records copy"
        assert [(v["change"], v["body"]) for v in versions] == [
            ("created", f"draft {word}"),
            ("edited", f"final {word}"),
            ("deleted", f"final {word}"),  # a deletion keeps the text in force before it
        ]
        package = _export(client, officer, matter["id"], scope)
        assert home["id"] in {p["id"] for p in _lines(package, "posts.jsonl")}
        manifest = json.loads(package.read("manifest.json"))
        assert {e["name"] for e in manifest["entries"]} == set(package.namelist()) - {"manifest.json"}
        for entry in manifest["entries"]:
            assert hashlib.sha256(package.read(entry["name"])).hexdigest() == entry["sha256"], entry

        # A policy that disposes at once: refused while the hold stands, unless acknowledged.
        policies = _ok(client.get(f"{RECORDS}/policies", headers=officer))
        change = {
            "version": policies["version"],
            "policies": [{"class": "organisation_posts", "keep_days": 0, "then": "dispose"}],
        }
        refused = client.put(f"{RECORDS}/policies", json=change, headers=officer)
        assert refused.status_code == 409 and refused.json()["type"].endswith("policy-within-hold"), (
            refused.text
        )
        _ok(client.put(f"{RECORDS}/policies", json={**change, "acknowledge_holds": True}, headers=officer))

        # The held post survives a run; the tombstone is still feed's.
        _run(client, officer)
        assert _feed_rows(running, "SELECT id FROM post WHERE id = ?", pro["id"].replace("-", ""))

        # Released, the next run destroys it everywhere and counts it.
        _ok(
            client.post(
                f"{RECORDS}/matters/{matter['id']}/holds/{hold['id']}/release",
                json={"reason": "Request answered."},
                headers=officer,
            )
        )
        certificate = _run(client, officer)
        assert certificate["counts"].get("organisation_posts", 0) >= 1, certificate
        assert certificate["counts"].get("comments", 0) >= 1, certificate

        def destroyed() -> bool:
            return not _feed_rows(
                running, "SELECT id FROM post WHERE id = ?", pro["id"].replace("-", "")
            ) and not _feed_rows(
                running, "SELECT id FROM comment WHERE id = ?", comment["id"].replace("-", "")
            )

        until(destroyed, "feed kept the disposed post or its comment")
        assert pro["id"] not in ids(client, "/api/v1/posts", author.headers("professional"), q=word)
        # The personal post's class keeps everything: it is still there.
        assert (
            client.get(f"/api/v1/posts/{home['id']}", headers=author.headers("personal")).status_code == 200
        )
