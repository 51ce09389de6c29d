"""Filing reports through the gateway: each kind of target with its evidence, the duplicate's
200, one 404 for whatever the reporter cannot see, each refusal (nothing written), the hourly
limit, an owner that does not answer, and a reporter's own list."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.moderation.models import Evidence, Report
from tests.helpers import auth, with_personal
from tests.moderation.support import (
    REPORTS,
    comment,
    file,
    filed,
    group,
    people,
    post,
    problem,
    published,
    resolve,
    rows,
    same_problem,
    staff,
)
from tests.suite import Suite, build_suite
from tests.tokens import claims, sign


async def test_each_kind_of_target_is_filed_with_the_evidence_its_owner_gave(suite):
    p = await people(suite, "ada", "bob")
    (ada, ada_id), (bob, bob_id) = p["ada"], p["bob"]
    written = await post(suite, bob, "Buy cheap watches now", links=[{"url": "https://spam.example/now"}])
    reply = await comment(suite, bob, written["id"], "Really cheap, I promise")
    cloud = await group(suite, bob, "watches", purpose="Sell watches to everyone in the agency.")

    answers = {
        "post": await file(suite, ada, "post", written["id"], comment="Spam, again."),
        "comment": await file(suite, ada, "comment", reply["id"]),
        "persona": await file(suite, ada, "persona", bob_id, category="harassment"),
        "group": await file(suite, ada, "group", cloud["id"], category="other"),
    }
    for kind, resp in answers.items():
        assert resp.status_code == 201, (kind, resp.text)
        body = resp.json()
        assert resp.headers["location"] == f"{REPORTS}/{body['id']}"
        assert body["target"] == {
            "type": kind,
            "id": {"post": written["id"], "comment": reply["id"], "persona": bob_id, "group": cloud["id"]}[
                kind
            ],
        }
        assert body["status"] == "open" and body["outcome"] is None and body["context"] == "professional"
        again = await suite.client.get(resp.headers["location"], headers=auth(ada))
        assert again.status_code == 200 and again.json() == body

    reports = {r.target_type: r for r in await rows(suite, Report)}
    assert reports["post"].subject_id == reports["comment"].subject_id == reports["persona"].subject_id
    assert str(reports["post"].subject_id) == bob_id
    assert reports["group"].subject_id is None and reports["group"].group_id is None
    evidence = {e.item_type: e for e in await rows(suite, Evidence)}
    assert evidence["post"].body == written["body"] and evidence["post"].links == ["https://spam.example/now"]
    assert str(evidence["post"].author_id) == bob_id
    assert evidence["comment"].body == "Really cheap, I promise"
    assert str(evidence["comment"].post_id) == written["id"]
    assert evidence["group"].body.startswith(cloud["name"]) and "Sell watches" in evidence["group"].body
    assert not await rows(suite, Evidence, report_id=reports["persona"].id)

    created = await published(suite, "moderation.report.created")
    assert len(created) == 4
    for _, subject, data in created:
        assert ada_id not in str(data), data  # never the reporter
        assert data["kind"] == "report" and data["action"] is None and data["action_id"] is None
        assert subject == data["report_id"]


async def test_added_posts_are_kept_as_evidence_and_must_be_visible_and_by_the_same_author(suite):
    p = await people(suite, "ada", "bob", "cyd")
    (ada, _), (bob, _), (cyd, _) = p["ada"], p["bob"], p["cyd"]
    first = await post(suite, bob, "First of many nasty posts")
    more = [await post(suite, bob, f"Nasty post number {n}") for n in range(2)]
    other = await post(suite, cyd, "A post by someone else entirely")

    by_other = await file(suite, ada, "post", first["id"], post_ids=[other["id"]])
    assert problem(by_other, 422, "validation")["errors"][0]["location"] == "body.post_ids"
    unseen = await file(suite, ada, "post", first["id"], post_ids=[str(uuid.uuid4())])
    problem(unseen, 404, "not-found")
    assert not await rows(suite, Report)

    resp = await file(suite, ada, "post", first["id"], post_ids=[m["id"] for m in more] + [first["id"]])
    assert resp.status_code == 201, resp.text
    kept = sorted(await rows(suite, Evidence), key=lambda e: e.ordinal)
    assert [str(e.item_id) for e in kept] == [first["id"], *(m["id"] for m in more)]


async def test_a_second_report_of_the_same_target_answers_the_open_one(suite):
    p = await people(suite, "ada", "bob")
    (ada, _), (_, bob_id) = p["ada"], p["bob"]
    mod, _ = await staff(suite, "mo")
    first = await filed(suite, ada, "persona", bob_id)
    again = await file(suite, ada, "persona", bob_id, category="other", comment="And again")
    assert again.status_code == 200 and again.json() == first
    assert "location" not in again.headers
    assert len(await rows(suite, Report)) == 1
    assert len(await published(suite, "moderation.report.created")) == 1

    assert (await resolve(suite, mod, first["id"], "none")).status_code == 200
    anew = await file(suite, ada, "persona", bob_id)
    assert anew.status_code == 201 and anew.json()["id"] != first["id"]


async def test_what_the_reporter_cannot_see_is_the_same_404_as_a_missing_target(suite):
    p = await people(suite, "ada", "bob")
    (ada, _), (bob, _) = p["ada"], p["bob"]
    twin = await with_personal(suite.client, "cyd")
    await suite.deliver()
    secret = await group(suite, bob, "hush", visibility="secret")
    personal_group = await group(suite, twin["personal"], "home")
    personal_post = await post(suite, twin["personal"], "A post at home, among friends")

    answers = [
        await file(suite, ada, "persona", str(uuid.uuid4())),
        await file(suite, ada, "persona", twin["personal_id"]),
        await file(suite, ada, "group", str(uuid.uuid4())),
        await file(suite, ada, "group", secret["id"]),
        await file(suite, ada, "group", personal_group["id"]),
        await file(suite, ada, "post", str(uuid.uuid4())),
        await file(suite, ada, "post", personal_post["id"]),
        await file(suite, ada, "comment", str(uuid.uuid4())),
    ]
    problem(answers[0], 404, "not-found")
    for other in answers[1:]:
        same_problem(answers[0], other)
    assert not await rows(suite, Report)
    assert not await published(suite)


async def test_each_refusal_is_a_422_and_writes_nothing(suite):
    p = await people(suite, "ada", "bob")
    (ada, ada_id), (_, bob_id) = p["ada"], p["bob"]
    mine = await post(suite, ada, "My very own post, thank you")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"target": {"type": "persona", "id": bob_id}, "category": "rude"}, "validation"),
        (
            {"target": {"type": "persona", "id": bob_id}, "category": "spam", "comment": "x" * 1001},
            "validation",
        ),
        (
            {"target": {"type": "persona", "id": bob_id}, "category": "spam", "comment": "bad\x00byte"},
            "validation",
        ),
        (
            {
                "target": {"type": "persona", "id": bob_id},
                "category": "spam",
                "post_ids": [str(uuid.uuid4())] * 6,
            },
            "validation",
        ),
        ({"target": {"type": "account", "id": bob_id}, "category": "spam"}, "validation"),
        ({"target": {"type": "persona", "id": bob_id}, "category": "spam", "extra": 1}, "validation"),
        ({"target": {"type": "persona", "id": ada_id}, "category": "spam"}, "self-report"),
        ({"target": {"type": "post", "id": mine["id"]}, "category": "spam"}, "self-report"),
        (
            {"target": {"type": "persona", "id": bob_id}, "category": "code_of_conduct", "rules": [1]},
            "unknown-rule",
        ),
    ]
    for body, slug in cases:
        resp = await suite.client.post(REPORTS, json=body, headers=auth(ada))
        problem(resp, 422, slug)
    assert not await rows(suite, Report)
    assert not await published(suite)


async def test_a_rule_of_the_code_of_conduct_in_force_may_be_cited(suite):
    p = await people(suite, "ada", "bob")
    (ada, _), (_, bob_id) = p["ada"], p["bob"]
    root, _ = await staff(suite, "root", "admin")
    rules = [{"number": 1, "title": "Be kind", "text": "Treat colleagues with respect."}]
    resp = await suite.client.put(
        "/api/v1/admin/code-of-conduct", json={"base_version": 0, "rules": rules}, headers=auth(root)
    )
    assert resp.status_code == 200, resp.text
    problem(await file(suite, ada, "persona", bob_id, rules=[1, 2]), 422, "unknown-rule")
    report = await filed(suite, ada, "persona", bob_id, category="code_of_conduct", rules=[1])
    assert report["rules"] == [1]
    (row,) = await rows(suite, Report)
    assert row.conduct_version == 1


@pytest.fixture
async def tight(database_urls: dict[str, str]) -> AsyncIterator[Suite]:
    async with build_suite(database_urls, moderation={"reports_per_hour": 2}) as built:
        yield built


async def test_the_hourly_limit_answers_429_with_retry_after_and_writes_nothing(tight):
    suite = tight
    p = await people(suite, "ada", "bob", "cyd", "dan")
    ada = p["ada"][0]
    await filed(suite, ada, "persona", p["bob"][1])
    await filed(suite, ada, "persona", p["cyd"][1])
    refused = await file(suite, ada, "persona", p["dan"][1])
    problem(refused, 429, "rate-limited")
    assert 3500 <= int(refused.headers["retry-after"]) <= 3600
    # the open report on a target is answered whatever the count, and is not counted
    assert (await file(suite, ada, "persona", p["bob"][1])).status_code == 200
    assert len(await rows(suite, Report)) == 2
    # another reporter has an hour of its own
    assert (await file(suite, p["dan"][0], "persona", p["bob"][1])).status_code == 201


async def test_an_owner_that_does_not_answer_is_a_503_and_writes_nothing(suite):
    p = await people(suite, "ada", "bob")
    (ada, _), (bob, _) = p["ada"], p["bob"]
    cloud = await group(suite, bob)
    written = await post(suite, bob, "Something to report later on")
    suite.router.down.update({"groups", "feed"})
    try:
        for target_type, target_id in (("group", cloud["id"]), ("post", written["id"])):
            resp = await file(suite, ada, target_type, target_id)
            problem(resp, 503, "target-unavailable")
            assert resp.headers["retry-after"] == "1"
    finally:
        suite.router.down.clear()
    assert not await rows(suite, Report)
    assert (await file(suite, ada, "group", cloud["id"])).status_code == 201


async def test_only_an_active_persona_with_a_full_token_files(suite):
    p = await people(suite, "ada", "bob")
    ada_id, bob_id = p["ada"][1], p["bob"][1]
    client = sign(suite.keys.active, claims(None, sub="client-1", ctx=None, client_id="client-1"))
    problem(await file(suite, client, "persona", bob_id), 403)
    notices = sign(suite.keys.active, claims(ada_id, scope="notices"))
    problem(await file(suite, notices, "persona", bob_id), 403, "notices-only")
    stranger = sign(suite.keys.active, claims(str(uuid.uuid4())))
    problem(await file(suite, stranger, "persona", bob_id), 401)
    problem(await suite.client.post(REPORTS, json={"target": {"type": "persona", "id": bob_id}}), 401)
    assert not await rows(suite, Report)


async def test_a_reporter_lists_its_own_reports_newest_first_with_their_outcome(suite):
    p = await people(suite, "ada", "bob", "cyd", "dan")
    ada = p["ada"][0]
    mod, mod_id = await staff(suite, "mo")
    first = await filed(suite, ada, "persona", p["bob"][1])
    second = await filed(suite, ada, "persona", p["cyd"][1])
    third = await filed(suite, ada, "persona", p["dan"][1])
    await filed(suite, p["bob"][0], "persona", p["cyd"][1])  # someone else's
    assert (await resolve(suite, mod, first["id"], "warn")).status_code == 200
    assert (await resolve(suite, mod, second["id"], "none")).status_code == 200

    page = await suite.client.get(REPORTS, params={"limit": 2}, headers=auth(ada))
    assert page.status_code == 200
    body = page.json()
    assert [r["id"] for r in body["items"]] == [third["id"], second["id"]]
    rest = await suite.client.get(
        REPORTS, params={"limit": 2, "cursor": body["next_cursor"]}, headers=auth(ada)
    )
    assert [r["id"] for r in rest.json()["items"]] == [first["id"]] and rest.json()["next_cursor"] is None
    outcomes = {r["id"]: r["outcome"] for r in [*body["items"], *rest.json()["items"]]}
    assert outcomes == {first["id"]: "action_taken", second["id"]: "no_action", third["id"]: None}
    assert mod_id not in page.text + rest.text
    # another persona's report is missing to anyone but its reporter
    problem(await suite.client.get(f"{REPORTS}/{first['id']}", headers=auth(p["bob"][0])), 404)
    problem(
        await suite.client.get(REPORTS, params={"cursor": "nonsense"}, headers=auth(ada)), 400, "bad-cursor"
    )
