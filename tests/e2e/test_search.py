"""Search end to end, through the gateway to the real processes (decision 0034): a French post
found by a stemmed French word, an English post by a phrase, a person by a misspelled name and a
group by a word of its purpose, in one search and in each type's own; a persona of the other
context finds none of them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.people import Headers, Person
from tests.helpers import CHARTER, unique
from tests.processes import LIMITS, Running, eventually

pytestmark = pytest.mark.e2e


def _search(client: httpx.Client, headers: Headers, q: str, **params: str) -> dict[str, Any]:
    resp = client.get("/api/v1/search", params={"q": q, **params}, headers=headers)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _found(client: httpx.Client, headers: Headers, q: str, kind: str) -> set[str]:
    return {item["id"] for item in _search(client, headers, q, type=kind)[kind]["items"]}


def test_a_search_finds_by_stem_phrase_misspelling_and_purpose_in_its_context_only(running: Running) -> None:
    with httpx.Client(base_url=running.url(), timeout=30, limits=LIMITS) as client:
        author, reader = Person(client, running, "margret"), Person(client, running, "olive")
        pro = author.headers("professional")
        renamed = client.patch(
            f"/api/v1/personas/{author.ids['professional']}",
            json={"display_name": "Margret Smith"},
            headers=pro,
        )
        assert renamed.status_code == 200, renamed.text
        french = client.post(
            "/api/v1/posts",
            json={
                "body": "Les réunions de planification budgétaire auront lieu jeudi à Gatineau",
                "lang": "fr",
            },
            headers=pro,
        )
        english = client.post(
            "/api/v1/posts", json={"body": "The quarterly planning meeting moved to Friday"}, headers=pro
        )
        assert french.status_code == english.status_code == 201, (french.text, english.text)
        assert french.json()["lang"] == "fr"
        assert english.json()["lang"] == "en"  # detected
        handle = unique("telescopes")
        group = client.post(
            "/api/v1/groups",
            json={
                "name": "Night sky",
                "handle": handle,
                "purpose": "Coordinate the observatory's open nights.",
                "charter": CHARTER,
            },
            headers=pro,
        )
        assert group.status_code == 201, group.text

        mine = reader.headers("professional")
        cases = [
            ("réunion", "posts", french.json()["id"]),  # the French stem of "réunions"
            ("reunion", "posts", french.json()["id"]),  # without its accent
            ('"planning meeting"', "posts", english.json()["id"]),
            ("Margaret Smyth", "people", author.ids["professional"]),
            ("observatory", "groups", group.json()["id"]),
        ]
        for q, kind, wanted in cases:
            # the directories and the group list learn of new things through events: wait
            assert eventually(
                lambda q=q, kind=kind, wanted=wanted: wanted in _found(client, mine, q, kind) or None,
                timeout=60,
            ), (q, kind)
            direct = client.get(f"/api/v1/search/{kind}", params={"q": q}, headers=mine)
            assert direct.status_code == 200, direct.text
            assert wanted in {item["id"] for item in direct.json()["items"]}

        hit = _search(client, mine, "réunion", type="posts")["posts"]["items"][0]
        assert "<mark>réunions</mark>" in hit["highlight"]

        # the other context finds none of it, by any query, in any type; nor does the author's
        # own personal persona find their professional one
        every = {wanted for _q, _kind, wanted in cases}
        for persona in (reader, author):
            home = persona.headers("personal")
            for q, _kind, _wanted in cases:
                pages = _search(client, home, q)
                assert set(pages) == {"posts", "comments", "people", "groups"}
                assert every.isdisjoint(item["id"] for page in pages.values() for item in page["items"]), q
