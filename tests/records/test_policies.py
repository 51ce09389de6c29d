"""Retention policies: the default of every class, changing some classes as one version,
what a change may not say, two changes from one version, and a policy that would reach what
a hold keeps."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.records.classes import CLASSES
from services.records.models import AuditEntry
from tests.helpers import auth
from tests.records.support import (
    POLICIES,
    dispose,
    hold,
    matter,
    officer,
    policies,
    problem,
    put_policies,
    rows,
)


async def test_every_class_keeps_forever_until_an_officer_decides(suite):
    token, _ = await officer(suite)
    body = await policies(suite, token)
    assert body["version"] == 0
    assert [p["class"] for p in body["policies"]] == list(CLASSES)
    for policy in body["policies"]:
        assert policy == {
            "class": policy["class"],
            "keep_days": None,
            "counted_from": "created",
            "then": "keep_forever",
            "overrides": {},
            "updated_at": None,
            "updated_by": None,
        }


async def test_a_change_replaces_the_classes_it_names_as_one_version(suite):
    token, officer_id = await officer(suite)
    group_id = str(uuid.uuid4())
    resp = await put_policies(
        suite,
        token,
        dispose("organisation_posts", 365, counted_from="last_activity"),
        {
            "class": "group_posts",
            "keep_days": 730,
            "then": "dispose",
            "overrides": {group_id: {"keep_days": 30, "then": "dispose"}},
        },
        dispose("notifications", 90),
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["version"] == 1
    by_class = {p["class"]: p for p in body["policies"]}
    assert by_class["organisation_posts"] | {"updated_at": None} == {
        "class": "organisation_posts",
        "keep_days": 365,
        "counted_from": "last_activity",
        "then": "dispose",
        "overrides": {},
        "updated_at": None,
        "updated_by": officer_id,
    }
    assert by_class["group_posts"]["overrides"] == {
        group_id: {"keep_days": 30, "counted_from": "created", "then": "dispose"}
    }
    assert by_class["comments"]["then"] == "keep_forever" and by_class["comments"]["updated_at"] is None
    assert await policies(suite, token) == body

    # a second change leaves the first one's other classes as they were
    resp = await put_policies(suite, token, {"class": "organisation_posts", "then": "keep_forever"})
    assert resp.status_code == 200, resp.text
    again = {p["class"]: p for p in resp.json()["policies"]}
    assert resp.json()["version"] == 2
    assert (
        again["organisation_posts"]["then"] == "keep_forever"
        and again["organisation_posts"]["keep_days"] is None
    )
    assert again["group_posts"] == by_class["group_posts"]
    changes = await rows(suite, AuditEntry, action="policies.changed")
    assert sorted(e.details["version"] for e in changes) == [1, 2]


@pytest.mark.parametrize(
    "policy",
    [
        {"class": "everything", "then": "keep_forever"},
        dispose("comments", -1),
        dispose("comments", 36_501),
        {"class": "comments", "keep_days": "30", "then": "dispose"},
        {"class": "comments", "then": "dispose"},
        {"class": "comments", "keep_days": None, "then": "dispose"},
        dispose("comments", 30, counted_from="last_activity"),
        dispose("audit_log", 30, counted_from="last_activity"),
        dispose("organisation_posts", 30, overrides={str(uuid.uuid4()): {"keep_days": 5, "then": "dispose"}}),
        dispose("group_posts", 30, overrides={"not-a-group": {"keep_days": 5, "then": "dispose"}}),
        dispose("group_posts", 30, overrides={str(uuid.uuid4()): {"then": "dispose"}}),
        dispose("group_posts", 30, overrides={str(uuid.uuid4()): {"keep_days": 5, "then": "burn"}}),
        dispose("group_posts", 30, overrides={str(uuid.uuid4()): {"keep_days": 1} for _ in range(1001)}),
        {"class": "comments", "then": "later"},
        {"class": "comments", "then": "keep_forever", "colour": "red"},
    ],
)
async def test_a_policy_that_cannot_be_applied_is_refused_whole(suite, policy):
    token, _ = await officer(suite)
    resp = await put_policies(suite, token, dispose("reactions", 10), policy)
    problem(resp, 422, "validation")
    body = await policies(suite, token)
    assert body["version"] == 0
    assert all(p["then"] == "keep_forever" for p in body["policies"])


async def test_the_change_itself_must_be_well_formed(suite):
    token, _ = await officer(suite)
    for body in (
        {"version": 0, "policies": []},
        {"version": 0, "policies": [dispose("comments", 1), dispose("comments", 2)]},
        {"version": -1, "policies": [dispose("comments", 1)]},
        {"version": "0", "policies": [dispose("comments", 1)]},
        {"policies": [dispose("comments", 1)]},
        {"version": 0, "policies": [dispose("comments", 1)], "acknowledge_holds": "yes"},
    ):
        problem(await suite.client.put(POLICIES, json=body, headers=auth(token)), 422, "validation")
    # 1000 overrides are fine
    overrides = {str(uuid.uuid4()): {"keep_days": 1, "then": "dispose"} for _ in range(1000)}
    resp = await put_policies(suite, token, {"class": "group_posts", "overrides": overrides})
    assert resp.status_code == 200, resp.text
    (group_posts,) = [p for p in resp.json()["policies"] if p["class"] == "group_posts"]
    assert len(group_posts["overrides"]) == 1000 and group_posts["then"] == "keep_forever"


async def test_a_change_from_an_old_version_is_a_conflict(suite):
    token, _ = await officer(suite)
    assert (await put_policies(suite, token, dispose("comments", 30), version=0)).status_code == 200
    problem(await put_policies(suite, token, dispose("comments", 60), version=0), 409, "version-conflict")
    problem(await put_policies(suite, token, dispose("comments", 60), version=7), 409, "version-conflict")
    body = await policies(suite, token)
    assert body["version"] == 1
    assert next(p for p in body["policies"] if p["class"] == "comments")["keep_days"] == 30


async def test_of_two_changes_from_one_version_one_wins(suite):
    token, _ = await officer(suite)
    first, second = await asyncio.gather(
        put_policies(suite, token, dispose("comments", 30), version=0),
        put_policies(suite, token, dispose("comments", 60), version=0),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409], (first.text, second.text)
    loser = first if first.status_code == 409 else second
    problem(loser, 409, "version-conflict")
    winner = first if first.status_code == 200 else second
    body = await policies(suite, token)
    assert body["version"] == 1 and body == winner.json()


async def test_a_policy_reaching_into_an_active_hold_needs_acknowledging(suite):
    token, _ = await officer(suite)
    case = await matter(suite, token)
    # a hold on a group reaches back a year
    await hold(suite, token, case["id"], group_ids=[str(uuid.uuid4())])
    resp = await put_policies(suite, token, dispose("group_posts", 30), dispose("comments", 3650))
    body = problem(resp, 409, "policy-within-hold")
    assert body["classes"] == ["group_posts"]
    assert (await policies(suite, token))["version"] == 0
    # a hold naming only groups does not reach the organisation's posts; a long policy is fine
    assert (await put_policies(suite, token, dispose("organisation_posts", 30))).status_code == 200
    problem(await put_policies(suite, token, dispose("audit_log", 30)), 409, "policy-within-hold")
    resp = await put_policies(
        suite, token, dispose("group_posts", 30), dispose("audit_log", 30), acknowledge=True
    )
    assert resp.status_code == 200, resp.text
    entries = sorted(
        await rows(suite, AuditEntry, action="policies.changed"), key=lambda e: e.details["version"]
    )
    assert [e.details["acknowledged_holds"] for e in entries] == [[], ["group_posts", "audit_log"]]
