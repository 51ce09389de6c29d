"""Groups' OpenAPI document says what the server sends: each documented success carries the
body it has, a server default is no required field, and the charter a group cannot exist
without is required at creation."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col

from services.groups.models import Group
from tests.groups.support import GROUPS, join, people, problem
from tests.helpers import CHARTER, auth, create_group


def _answer(document: dict[str, Any], path: str, method: str, status: str) -> dict[str, Any]:
    answer: dict[str, Any] = document["paths"][path][method]["responses"][status]
    return answer


@pytest.mark.parametrize(
    ("path", "method", "status", "schema"),
    [
        ("/api/v1/groups/{group_id}/members/{persona_id}", "put", "201", "MembershipPublic"),
        ("/api/v1/groups/{group_id}/join-requests", "post", "200", "JoinRequestPublic"),
        ("/api/v1/groups/{group_id}/invitations", "post", "200", "InvitationPublic"),
    ],
)
async def test_every_documented_success_has_the_body_sent(suite, path, method, status, schema):
    answer = _answer(suite.groups.openapi(), path, method, status)
    assert answer["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{schema}"}


async def test_a_second_join_request_and_invitation_answer_200_with_their_body(suite):
    p = await people(suite, "ada", "bob", "cyd")
    (ada, _), (bob, bob_id), (_, cyd_id) = p["ada"], p["bob"], p["cyd"]
    group = await create_group(suite.client, ada, "closed_one", visibility="closed")
    await suite.deliver()
    path = f"{GROUPS}/{group['id']}"
    asked = [await suite.client.post(f"{path}/join-requests", json={}, headers=auth(bob)) for _ in range(2)]
    assert [a.status_code for a in asked] == [201, 200], asked[1].text
    assert asked[1].json() == asked[0].json()
    invited = [
        await suite.client.post(f"{path}/invitations", json={"persona_id": cyd_id}, headers=auth(ada))
        for _ in range(2)
    ]
    assert [i.status_code for i in invited] == [201, 200], invited[1].text
    assert invited[1].json() == invited[0].json()
    assert asked[0].json()["persona_id"] == bob_id


async def test_create_group_documents_its_404_and_visibility_is_optional(suite):
    document = suite.groups.openapi()
    assert "404" in document["paths"]["/api/v1/groups"]["post"]["responses"]
    create = document["components"]["schemas"]["GroupCreate"]
    assert "visibility" not in create["required"] and "default" not in create["properties"]["visibility"]
    assert "404" not in document["paths"]["/api/v1/groups"]["get"]["responses"]


@pytest.mark.parametrize(
    ("charter", "field"),
    [
        (None, "body.charter"),
        ({k: v for k, v in CHARTER.items() if k != "objective"}, "body.charter.objective"),
        ({**CHARTER, "audience": None}, "body.charter.audience"),
        ({k: v for k, v in CHARTER.items() if k != "review_at"}, "body.charter.review_at"),
    ],
)
async def test_a_group_is_refused_without_its_charter(suite, charter, field):
    p = await people(suite, "ada")
    body: dict[str, Any] = {
        "name": "Chartered",
        "handle": "chartered",
        "purpose": "Work on one purpose together.",
    }
    if charter is not None:
        body["charter"] = charter
    refused = problem(await suite.client.post(GROUPS, json=body, headers=auth(p["ada"][0])), 422)
    assert field in [e["location"] for e in refused["errors"]], refused
    schema = suite.groups.openapi()["components"]["schemas"]
    assert "charter" in schema["GroupCreate"]["required"]
    assert {"objective", "audience", "review_at"} <= set(schema["Charter"]["required"])


async def test_a_charter_cannot_be_cleared_and_an_older_group_without_one_stays_readable(suite):
    p = await people(suite, "ada", "bob")
    ada = p["ada"][0]
    group = await create_group(suite.client, ada, "older")
    for cleared in ("objective", "audience", "review_at"):
        resp = await suite.client.patch(
            f"{GROUPS}/{group['id']}", json={"charter": {cleared: None}}, headers=auth(ada)
        )
        where = [e["location"] for e in problem(resp, 422)["errors"]]
        assert any(w.startswith("body.charter.") and w.endswith(f".{cleared}") for w in where), where
    async with suite.groups.state.database.sessionmaker() as session, session.begin():
        await session.execute(
            update(Group)
            .where(col(Group.id) == uuid.UUID(group["id"]))
            .values(objective=None, audience=None, review_at=None)
        )
    got = await suite.client.get(f"{GROUPS}/{group['id']}", headers=auth(ada))
    assert got.status_code == 200, got.text
    assert {k: got.json()["charter"][k] for k in ("objective", "audience", "review_at")} == dict.fromkeys(
        ("objective", "audience", "review_at")
    )
    renamed = await suite.client.patch(f"{GROUPS}/{group['id']}", json={"name": "Older"}, headers=auth(ada))
    assert renamed.status_code == 200, renamed.text
    assert (await join(suite, group["id"], *p["bob"])).status_code == 201
