"""A persona's own export (``/api/v1/me/export``, decision 0033): made from real posts,
comments and reactions through the API, carried to records by the suite's event delivery.
With a personal token it holds that persona alone and nothing that ties it to the account; with
a professional token both of the owner's personas; never anything of other people."""

from __future__ import annotations

import io
import json
import re
import uuid
import zipfile
from typing import Any

from services.records import exports
from tests.helpers import auth, with_personal

EXPORT = "/api/v1/me/export"


async def post(suite: Any, token: str, body: str) -> dict[str, Any]:
    resp = await suite.client.post("/api/v1/posts", json={"body": body}, headers=auth(token))
    assert resp.status_code == 201, resp.text
    created: dict[str, Any] = resp.json()
    return created


async def comment(suite: Any, token: str, post_id: str, body: str) -> None:
    resp = await suite.client.post(
        f"/api/v1/posts/{post_id}/comments", json={"body": body}, headers=auth(token)
    )
    assert resp.status_code == 201, resp.text


async def react(suite: Any, token: str, post_id: str) -> None:
    resp = await suite.client.put(f"/api/v1/posts/{post_id}/reactions/like", headers=auth(token))
    assert resp.status_code in (200, 201), resp.text


async def people(suite: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ada and Bob, each with both personas, and what they wrote in each context: Ada's
    personal post (edited) that mentions Bob, Bob's comment and reaction on it, Ada's comment on
    Bob's post; and a professional post of each."""
    ada, bob = await with_personal(suite.client, "ada"), await with_personal(suite.client, "bob")
    for who in (ada, bob):
        me = (await suite.client.get("/api/v1/me", headers=auth(who["pro"]))).json()
        who["account"] = me["account_id"]
    await suite.deliver()
    hike = await post(suite, ada["personal"], "Weekend hike with @bob_home?")
    resp = await suite.client.patch(
        f"/api/v1/posts/{hike['id']}",
        json={"body": "Weekend hike with @bob_home, Sunday"},
        headers=auth(ada["personal"]),
    )
    assert resp.status_code == 200, resp.text
    bobs = await post(suite, bob["personal"], "Bob's own garden")
    await comment(suite, bob["personal"], hike["id"], "Count me in")
    await react(suite, bob["personal"], hike["id"])
    await comment(suite, ada["personal"], bobs["id"], "Lovely roses")
    ada["work"] = await post(suite, ada["pro"], "Quarterly report is out")
    await post(suite, bob["pro"], "Bob at work")
    ada["hike"] = hike
    await suite.deliver()
    return ada, bob


async def produce(suite: Any, token: str) -> dict[str, Any]:
    resp = await suite.client.post(EXPORT, headers=auth(token))
    assert resp.status_code == 202, resp.text
    created: dict[str, Any] = resp.json()
    assert resp.headers["location"] == f"/api/v1/me/exports/{created['id']}"
    assert created["status"] == "queued" and created["download"] is None
    again = await suite.client.post(EXPORT, headers=auth(token))
    assert again.status_code == 409 and again.json()["type"].endswith("/export-running")
    assert await exports.run_once(suite.records)
    resp = await suite.client.get(f"/api/v1/me/exports/{created['id']}", headers=auth(token))
    assert resp.status_code == 200, resp.text
    ready: dict[str, Any] = resp.json()
    assert ready["status"] == "ready" and ready["percent"] == 100, ready
    return ready


async def fetch(suite: Any, token: str, export: dict[str, Any]) -> tuple[bytes, zipfile.ZipFile]:
    resp = await suite.client.get(export["download"]["url"], headers=auth(token))
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/zip"
    return resp.content, zipfile.ZipFile(io.BytesIO(resp.content))


def lines(package: zipfile.ZipFile, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in package.read(name).decode().splitlines()]


async def test_a_personal_export_holds_that_persona_alone_and_nobody_else(suite):
    ada, bob = await people(suite)
    export = await produce(suite, ada["personal"])
    assert export["personas"] == [ada["personal_id"]]
    raw, package = await fetch(suite, ada["personal"], export)
    contents = raw + b"".join(package.read(name) for name in package.namelist())
    for secret in (
        ada["email"],
        ada["account"],
        ada["pro_id"],
        bob["personal_id"],
        bob["pro_id"],
        "bob_home",
    ):
        assert secret.encode() not in contents, secret
    assert "Quarterly report" not in contents.decode(errors="replace")

    posts = lines(package, "posts.jsonl")
    assert [(p["id"], p["version"]) for p in posts] == [(ada["hike"]["id"], 1), (ada["hike"]["id"], 2)]
    masked = re.fullmatch(r"Weekend hike with @(person-[0-9a-f]{10}), Sunday", posts[-1]["body"])
    assert masked is not None, posts[-1]["body"]
    alias = masked.group(1)
    assert posts[-1]["mentions"] == [alias]  # Bob, by the same pseudonym as his handle
    assert {c["author_id"] for c in lines(package, "comments.jsonl")} == {ada["personal_id"]}
    assert [c["body"] for c in lines(package, "comments.jsonl")] == ["Lovely roses"]  # not Bob's comment
    assert lines(package, "reactions.jsonl") == []  # Bob's reaction is his
    assert [p["id"] for p in lines(package, "profiles.jsonl")] == [ada["personal_id"]]
    notifications = lines(package, "notifications.jsonl")
    assert notifications, "Bob's comment on Ada's post notified her"
    assert {n["persona_id"] for n in notifications} == {ada["personal_id"]}
    assert {n["actor_id"] for n in notifications} == {alias}  # Bob, under the same pseudonym
    manifest = json.loads(package.read("manifest.json"))
    assert manifest["scope"] == {
        "kind": "own",
        "personas": [{"persona_id": ada["personal_id"], "context": "personal"}],
    }

    # Only the owner reads it or downloads it; the download is in its custody.
    for path in (f"/api/v1/me/exports/{export['id']}", export["download"]["url"]):
        for other in (bob["personal"], ada["pro"]):
            resp = await suite.client.get(path, headers=auth(other))
            assert resp.status_code == 404, resp.text
    mine = (
        await suite.client.get(f"/api/v1/me/exports/{export['id']}", headers=auth(ada["personal"]))
    ).json()
    assert len(mine["downloads"]) == 1
    missing = await suite.client.get(f"/api/v1/me/exports/{uuid.uuid4()}", headers=auth(ada["personal"]))
    assert missing.status_code == 404


async def test_a_professional_export_holds_both_personas(suite):
    ada, bob = await people(suite)
    export = await produce(suite, ada["pro"])
    assert sorted(export["personas"]) == sorted([ada["pro_id"], ada["personal_id"]])
    raw, package = await fetch(suite, ada["pro"], export)
    contents = raw + b"".join(package.read(name) for name in package.namelist())
    for secret in (ada["email"], ada["account"], bob["personal_id"], bob["pro_id"], "bob_home"):
        assert secret.encode() not in contents, secret
    bodies = {p["body"] for p in lines(package, "posts.jsonl")}
    assert "Quarterly report is out" in bodies and "Bob at work" not in bodies
    assert {p["author_id"] for p in lines(package, "posts.jsonl")} == {ada["pro_id"], ada["personal_id"]}
    assert sorted(p["id"] for p in lines(package, "profiles.jsonl")) == sorted(
        [ada["pro_id"], ada["personal_id"]]
    )
    # A professional export and a personal one of the same owner may run side by side.
    assert (await suite.client.post(EXPORT, headers=auth(ada["personal"]))).status_code == 202


async def test_a_client_token_has_no_export_of_its_own(suite):
    resp = await suite.client.post(EXPORT)
    assert resp.status_code == 401
