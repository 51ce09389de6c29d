"""Search in posts and comments (decision 0034): the query syntax on feed's index (stemming in
English and French, accents, phrases, exclusions, OR, the filters), the ranking within the
window, the pages through and past it, the language of posts and comments, and
``GET /api/v1/posts?q=`` as the same search. On SQLite and PostgreSQL alike."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col

from kit.compiled import Made
from kit.search import parse, shape
from services.feed import search
from services.feed.models import Comment, Post
from tests.feed.support import make_group, people, post, statements
from tests.helpers import auth

POSTS = "/api/v1/search/posts"
COMMENTS = "/api/v1/search/comments"


async def _page(suite: Any, token: str, q: str, path: str = POSTS, **params: Any) -> dict[str, Any]:
    resp = await suite.client.get(path, params={"q": q, **params}, headers=auth(token))
    assert resp.status_code == 200, (q, resp.text)
    page: dict[str, Any] = resp.json()
    return page


async def _found(suite: Any, token: str, q: str, path: str = POSTS, **params: Any) -> list[str]:
    """The bodies a search finds, in its order."""
    return [item["body"] for item in (await _page(suite, token, q, path, **params))["items"]]


async def _comment(suite: Any, token: str, post_id: str, body: str, **fields: Any) -> dict[str, Any]:
    resp = await suite.client.post(
        f"/api/v1/posts/{post_id}/comments", json={"body": body, **fields}, headers=auth(token)
    )
    assert resp.status_code == 201, resp.text
    made: dict[str, Any] = resp.json()
    return made


async def _age(suite: Any, model: type[Post] | type[Comment], item_id: str, days: float) -> None:
    """Makes an item ``days`` older (its creation time; its id, and so its place in the window,
    stays)."""
    async with suite.feed.state.database.sessionmaker() as session:
        await session.execute(
            update(model)
            .where(col(model.id) == uuid.UUID(item_id))
            .values(created_at=datetime.now(UTC) - timedelta(days=days))
        )
        await session.commit()


# The query ----------------------------------------------------------------------------------------


async def test_english_words_are_found_by_their_stem(suite):
    ((ada, _),) = await people(suite, "ada")
    await post(suite.client, ada, "We are planning the move of the services")
    await post(suite.client, ada, "Our plans for the quarter")
    await post(suite.client, ada, "Nothing to see")
    assert sorted(await _found(suite, ada, "plan")) == [
        "Our plans for the quarter",
        "We are planning the move of the services",
    ]
    assert await _found(suite, ada, "service") == ["We are planning the move of the services"]
    assert await _found(suite, ada, "quarters") == ["Our plans for the quarter"]


async def test_french_words_are_found_by_their_stem_with_or_without_accents(suite):
    ((ada, _),) = await people(suite, "ada")
    await post(suite.client, ada, "Les réunions de la semaine sont annulées")
    await post(suite.client, ada, "Une reunion sans accent, et le café du matin")
    await post(suite.client, ada, "Rien à voir")
    both = ["Les réunions de la semaine sont annulées", "Une reunion sans accent, et le café du matin"]
    for q in ("réunion", "reunion", "RÉUNIONS", "Réunions"):
        assert sorted(await _found(suite, ada, q)) == both, q
    assert await _found(suite, ada, "annulée") == [both[0]]
    assert await _found(suite, ada, "cafe") == [both[1]]


async def test_phrases_exclusions_and_or(suite):
    ((ada, _),) = await people(suite, "ada")
    await post(suite.client, ada, "carbon neutral by next year")
    await post(suite.client, ada, "neutral about carbon taxes")
    await post(suite.client, ada, "budget review")
    assert await _found(suite, ada, '"carbon neutral"') == ["carbon neutral by next year"]
    assert sorted(await _found(suite, ada, "carbon neutral")) == [
        "carbon neutral by next year",
        "neutral about carbon taxes",
    ]
    assert await _found(suite, ada, "carbon -taxes") == ["carbon neutral by next year"]
    assert await _found(suite, ada, 'carbon -"carbon neutral"') == ["neutral about carbon taxes"]
    assert sorted(await _found(suite, ada, "budget OR taxes")) == [
        "budget review",
        "neutral about carbon taxes",
    ]
    assert await _found(suite, ada, '"next year') == ["carbon neutral by next year"]  # runs to the end


async def test_only_stop_words_operators_or_exclusions_find_nothing_without_a_statement(suite):
    ((ada, _),) = await people(suite, "ada")
    await post(suite.client, ada, "the and of le des")
    for q in ("", "   ", "the and of", "le des", "OR", "- -- OR", '""', "-the -budget", "#", "OR -x"):
        with statements(suite) as seen:
            page = await _page(suite, ada, q)
        assert page == {"items": [], "next_cursor": None}, q
        assert not [s for s, _ in seen if "post" in s.lower()], q


async def test_filters_narrow_to_an_author_a_group_a_tag_and_dates(suite):
    (ada, ada_id), (bob, bob_id) = await people(suite, "ada", "bob")
    group = await make_group(suite, {ada_id: "owner", bob_id: "member"})
    handle = f"g{group[:8]}"
    in_group = await post(suite.client, bob, "budget for the group", audience="group", group_id=group)
    tagged = await post(suite.client, ada, "budget #Finance talk")
    old = await post(suite.client, ada, "budget of last year")
    await _age(suite, Post, old["id"], 40)
    assert sorted(await _found(suite, ada, "budget author:@bob")) == ["budget for the group"]
    assert sorted(await _found(suite, ada, "budget author:ADA")) == [
        "budget #Finance talk",
        "budget of last year",
    ]
    assert await _found(suite, ada, "budget author:nobody_here") == []
    assert await _found(suite, ada, f"budget group:{handle}") == ["budget for the group"]
    assert await _found(suite, ada, "budget group:no_such_group") == []
    assert await _found(suite, ada, "budget #finance") == ["budget #Finance talk"]
    assert await _found(suite, ada, "budget tag:FINANCE") == ["budget #Finance talk"]
    assert await _found(suite, ada, "budget tag:other") == []
    day = (datetime.now(UTC) - timedelta(days=40)).date()
    assert await _found(suite, ada, f"budget until:{day.isoformat()}") == ["budget of last year"]
    assert await _found(suite, ada, f"budget since:{day.isoformat()} until:{day.isoformat()}") == [
        "budget of last year"
    ]
    recent = sorted(await _found(suite, ada, f"budget since:{(day + timedelta(days=1)).isoformat()}"))
    assert recent == ["budget #Finance talk", "budget for the group"]
    comment = await _comment(suite, ada, in_group["id"], "a budget remark")
    await _comment(suite, bob, tagged["id"], "another budget remark")
    assert await _found(suite, bob, "budget author:ada", COMMENTS) == ["a budget remark"]
    assert await _found(suite, bob, f"remark group:{handle}", COMMENTS) == ["a budget remark"]
    assert await _found(suite, bob, "remark #finance", COMMENTS) == ["another budget remark"]
    assert comment["lang"] is None


async def test_an_author_of_the_other_context_is_unknown(suite):
    from tests.helpers import with_personal

    ada = await with_personal(suite.client, "ada")
    await suite.deliver()
    await post(suite.client, ada["pro"], "budget at work")
    await post(suite.client, ada["personal"], "budget at home")
    assert await _found(suite, ada["pro"], "budget author:ada_home") == []
    assert await _found(suite, ada["personal"], "budget author:ada") == []
    assert await _found(suite, ada["personal"], "budget author:ada_home") == ["budget at home"]


# Ranking and pages -------------------------------------------------------------------------------


async def test_a_better_match_comes_first_within_the_window(suite):
    ((ada, _),) = await people(suite, "ada")
    strong = await post(suite.client, ada, "budget budget budget")
    await post(suite.client, ada, "a long note that mentions the budget once among many other words here")
    found = await _page(suite, ada, "budget")
    assert found["items"][0]["id"] == strong["id"]
    assert found["items"][0]["highlight"] == "<mark>budget</mark> <mark>budget</mark> <mark>budget</mark>"


async def test_age_halves_relevance_every_thirty_days_and_ties_go_to_the_newer(suite):
    ((ada, _),) = await people(suite, "ada")
    strong = await post(suite.client, ada, "budget budget budget")
    weak = await post(
        suite.client, ada, "a long note that mentions the budget once among many other words here"
    )
    assert [item["id"] for item in (await _page(suite, ada, "budget"))["items"]] == [strong["id"], weak["id"]]
    await _age(suite, Post, strong["id"], 150)
    assert [item["id"] for item in (await _page(suite, ada, "budget"))["items"]] == [weak["id"], strong["id"]]
    first = await post(suite.client, ada, "identical text")
    second = await post(suite.client, ada, "identical text")
    assert [item["id"] for item in (await _page(suite, ada, "identical"))["items"]] == [
        second["id"],
        first["id"],
    ]


async def _all_pages(suite: Any, token: str, q: str, path: str = POSTS, **params: Any) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        resp = await suite.client.get(
            path, params={"q": q, **params, **({"cursor": cursor} if cursor else {})}, headers=auth(token)
        )
        assert resp.status_code == 200, resp.text
        pages.append([item["id"] for item in resp.json()["items"]])
        cursor = resp.json()["next_cursor"]
        assert ("link" in resp.headers) == (cursor is not None)
        if cursor is None:
            return pages
        assert len(pages) < 50


async def test_pages_go_through_the_window_then_past_it_in_id_order(suite, monkeypatch):
    monkeypatch.setattr(search, "SEARCH_WINDOW", 5)
    ((ada, _),) = await people(suite, "ada")
    made = [await post(suite.client, ada, "budget " + "budget " * (i % 3) + f"n{i}") for i in range(12)]
    ids = [p["id"] for p in made]
    pages = await _all_pages(suite, ada, "budget", limit=3)
    assert [len(page) for page in pages] == [3, 3, 3, 3]
    seen = [i for page in pages for i in page]
    assert sorted(seen) == sorted(ids) and len(set(seen)) == 12
    window = set(ids[-5:])  # the five newest, ranked
    assert set(seen[:5]) == window
    assert seen[:5] != sorted(window, reverse=True)  # ranked, not in id order
    assert seen[5:] == sorted(ids[:-5], reverse=True)  # then older, newest first
    for limit in (1, 2, 5, 7, 100):
        again = [i for page in await _all_pages(suite, ada, "budget", limit=limit) for i in page]
        assert again == seen, limit


async def test_the_cursor_stays_on_its_window_while_new_posts_arrive(suite, monkeypatch):
    monkeypatch.setattr(search, "SEARCH_WINDOW", 4)
    ((ada, _),) = await people(suite, "ada")
    before = [(await post(suite.client, ada, f"budget {'budget ' * (i % 2)}b{i}"))["id"] for i in range(9)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"q": "budget", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await suite.client.get(POSTS, params=params, headers=auth(ada))).json()
        seen += [item["id"] for item in page["items"]]
        await post(suite.client, ada, "budget budget budget, new")
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(before) and len(seen) == len(set(seen))


async def test_a_cursor_of_another_query_or_list_is_refused(suite):
    ((ada, _),) = await people(suite, "ada")
    post_made = await post(suite.client, ada, "budget one")
    await post(suite.client, ada, "budget two")
    await _comment(suite, ada, post_made["id"], "budget three")
    await _comment(suite, ada, post_made["id"], "budget four")
    cursor = (await _page(suite, ada, "budget", limit=1))["next_cursor"]
    comments_cursor = (await _page(suite, ada, "budget", COMMENTS, limit=1))["next_cursor"]
    assert cursor and comments_cursor
    same = await suite.client.get(
        POSTS, params={"q": "  budget ", "cursor": cursor, "limit": 1}, headers=auth(ada)
    )
    assert same.status_code == 200 and len(same.json()["items"]) == 1
    home = await suite.client.get("/api/v1/timelines/organisation", params={"limit": 1}, headers=auth(ada))
    for path, q, foreign in (
        (POSTS, "budget one", cursor),
        (POSTS, "budget", comments_cursor),
        (COMMENTS, "budget", cursor),
        (POSTS, "budget", home.json()["next_cursor"]),
        (POSTS, "budget", "not-a-cursor"),
        (POSTS, "budget", "eyJzIjoic2VhcmNoOnBvc3RzOngiLCJrIjpbIiIsMCwiIl19"),
    ):
        resp = await suite.client.get(path, params={"q": q, "cursor": foreign}, headers=auth(ada))
        assert resp.status_code == 400, (path, q, resp.text)
        assert resp.headers["content-type"] == "application/problem+json"


async def test_a_forged_cursor_is_a_400_never_a_500(suite):
    from kit.pagination import encode_cursor
    from kit.search import cursor_scope, parse

    ((ada, _),) = await people(suite, "ada")
    await post(suite.client, ada, "budget")
    scope = cursor_scope("posts", parse("budget"))
    for key in (
        ["not-a-uuid", 0, ""],
        ["", 0, "not-a-uuid"],
        ["", -1, ""],
        ["", 10**6, ""],
        ["", "0", ""],
        [str(uuid.uuid4()), 0],
        ["\x00", 0, ""],
    ):
        resp = await suite.client.get(
            POSTS, params={"q": "budget", "cursor": encode_cursor(scope, key)}, headers=auth(ada)
        )
        assert resp.status_code == 400, (key, resp.text)
    fine = encode_cursor(scope, ["", 0, str(uuid.uuid4())])
    assert (
        await suite.client.get(POSTS, params={"q": "budget", "cursor": fine}, headers=auth(ada))
    ).status_code == 200


async def test_get_posts_q_is_the_same_search(suite):
    ((ada, _),) = await people(suite, "ada")
    for i in range(3):
        await post(suite.client, ada, f"we are planning {i}")
    searched = await _page(suite, ada, "plan", limit=2)
    listed = await suite.client.get("/api/v1/posts", params={"q": "plan", "limit": 2}, headers=auth(ada))
    assert listed.status_code == 200
    assert listed.json() == searched
    assert listed.headers["link"].endswith('rel="next"')
    rest = await suite.client.get(
        "/api/v1/posts", params={"q": "plan", "cursor": searched["next_cursor"]}, headers=auth(ada)
    )
    assert len(rest.json()["items"]) == 1 and rest.json()["next_cursor"] is None
    assert (await suite.client.get("/api/v1/posts", headers=auth(ada))).status_code == 422


# Languages -----------------------------------------------------------------------------------------


async def test_lang_is_declared_or_detected_and_shown(suite):
    ((ada, _),) = await people(suite, "ada")
    declared = await post(suite.client, ada, "Bonjour", lang="fr-ca")
    assert declared["lang"] == "fr-CA"
    assert (await post(suite.client, ada, "This is the plan for the team"))["lang"] == "en"
    assert (await post(suite.client, ada, "Voici le plan de la semaine pour les équipes"))["lang"] == "fr"
    assert (await post(suite.client, ada, "Zeppelin 42"))["lang"] is None
    assert (await post(suite.client, ada, "This is the plan", lang=None))["lang"] == "en"
    shown = await suite.client.get(f"/api/v1/posts/{declared['id']}", headers=auth(ada))
    assert shown.json()["lang"] == "fr-CA"
    timeline = await suite.client.get("/api/v1/timelines/organisation", headers=auth(ada))
    assert {item["lang"] for item in timeline.json()["items"]} == {"fr-CA", "en", "fr", None}
    home = await suite.client.get("/api/v1/timelines/home", headers=auth(ada))
    assert [item["lang"] for item in home.json()["items"]] == [
        item["lang"] for item in timeline.json()["items"]
    ]
    comment = await _comment(suite, ada, declared["id"], "C'est une réunion pour les équipes", lang=None)
    assert comment["lang"] == "fr"
    assert (await _comment(suite, ada, declared["id"], "Hi", lang="EN-gb"))["lang"] == "en-GB"


async def test_a_bad_lang_is_a_422(suite):
    ((ada, _),) = await people(suite, "ada")
    said = await post(suite.client, ada, "hello")
    for lang in ("", "not a tag", "e", "english!", "x" * 36, "en_GB", "fr-", "12", "\u00e9n", 5):
        resp = await suite.client.post("/api/v1/posts", json={"body": "hi", "lang": lang}, headers=auth(ada))
        assert resp.status_code == 422, (lang, resp.text)
        assert resp.headers["content-type"] == "application/problem+json"
        edit = await suite.client.patch(f"/api/v1/posts/{said['id']}", json={"lang": lang}, headers=auth(ada))
        assert edit.status_code == 422, (lang, edit.text)
        comment = await suite.client.post(
            f"/api/v1/posts/{said['id']}/comments", json={"body": "hi", "lang": lang}, headers=auth(ada)
        )
        assert comment.status_code == 422, (lang, comment.text)


async def test_an_edit_keeps_the_language_or_changes_it_and_the_stemming_follows(suite):
    ((ada, _),) = await people(suite, "ada")
    said = await post(suite.client, ada, "réunions", lang="fr")
    assert await _found(suite, ada, "réunion") == ["réunions"]
    path = f"/api/v1/posts/{said['id']}"
    kept = await suite.client.patch(path, json={"body": "les réunions de la semaine"}, headers=auth(ada))
    assert kept.json()["lang"] == "fr"
    changed = await suite.client.patch(path, json={"lang": "de"}, headers=auth(ada))
    assert changed.status_code == 200 and changed.json()["lang"] == "de"
    assert changed.json()["body"] == "les réunions de la semaine"
    history = await suite.client.get(f"{path}/history", headers=auth(ada))
    assert len(history.json()["items"]) == 1  # a language alone is no new text
    assert await _found(suite, ada, "réunion") == []  # no longer stemmed in French
    assert await _found(suite, ada, "réunions") == ["les réunions de la semaine"]  # as written, still
    detected = await suite.client.patch(path, json={"lang": None}, headers=auth(ada))
    assert detected.json()["lang"] == "fr"
    comment = await _comment(suite, ada, said["id"], "planning", lang="en")
    cpath = f"/api/v1/posts/{said['id']}/comments/{comment['id']}"
    assert await _found(suite, ada, "plan", COMMENTS) == ["planning"]
    relabelled = await suite.client.patch(cpath, json={"body": "planning", "lang": "de"}, headers=auth(ada))
    assert relabelled.json()["lang"] == "de"
    assert await _found(suite, ada, "plan", COMMENTS) == []
    assert await _found(suite, ada, "planning", COMMENTS) == ["planning"]


# Comments ----------------------------------------------------------------------------------------------


async def test_comments_are_found_with_their_excerpt_as_their_posts_list_shows_them(suite):
    (ada, _), (bob, _) = await people(suite, "ada", "bob")
    said = await post(suite.client, ada, "a post")
    top = await _comment(suite, bob, said["id"], "We discussed the <b>budget</b> & more")
    reply = await _comment(suite, ada, said["id"], "the budgets, again and again", parent_id=top["id"])
    found = await _page(suite, ada, "budget", COMMENTS)
    assert {item["id"] for item in found["items"]} == {top["id"], reply["id"]}
    listed = await suite.client.get(f"/api/v1/posts/{said['id']}/comments", headers=auth(ada))
    shape = {**listed.json()["items"][0]}
    item = next(i for i in found["items"] if i["id"] == top["id"])
    assert {k: v for k, v in item.items() if k != "highlight"} == shape
    assert item["highlight"] == "We discussed the &lt;b&gt;<mark>budget</mark>&lt;/b&gt; &amp; more"


@pytest.mark.parametrize("path", [POSTS, COMMENTS])
async def test_every_item_shape_is_the_listed_one_plus_its_highlight(suite, path):
    ((ada, _),) = await people(suite, "ada")
    said = await post(suite.client, ada, "find me #here", links=[{"url": "https://x.example/a"}])
    await _comment(suite, ada, said["id"], "find me too")
    # the reader's own reactions and the counts are part of the shape (on PostgreSQL, the
    # database writes a post found as JSON: ``search_sql``)
    for kind in ("like", "insightful"):
        reacted = await suite.client.put(f"/api/v1/posts/{said['id']}/reactions/{kind}", headers=auth(ada))
        assert reacted.status_code in (200, 201), reacted.text
    found = (await _page(suite, ada, "find", path))["items"]
    assert len(found) == 1
    if path == POSTS:
        listed = (await suite.client.get(f"/api/v1/posts/{said['id']}", headers=auth(ada))).json()
    else:
        listed = (await suite.client.get(f"/api/v1/posts/{said['id']}/comments", headers=auth(ada))).json()
        listed = listed["items"][0]
    assert found[0] == {**listed, "highlight": found[0]["highlight"]}
    assert "<mark>find</mark>" in found[0]["highlight"]


async def test_statements_are_made_once_for_each_shape_of_query(suite, monkeypatch):
    """On PostgreSQL a search's statements are compiled once for each shape of query (how many
    terms in each clause, which filters; decision 0041): another query of the same shape, or
    another reader, reuses them with its own values, and finds what is its own."""
    made: list[tuple[Any, ...]] = []
    build = search.search_sql.build

    def counted(target: Any, seen: Any, narrowing: Any, query: Any) -> Any:
        made.append((target.kind, shape(query)))
        return build(target, seen, narrowing, query)

    monkeypatch.setattr(search.search_sql, "build", counted)
    monkeypatch.setattr(search.search_sql, "MADE", Made(search.search_sql.MAX_SHAPES))
    (ada, _), (bob, _) = await people(suite, "ada", "bob")
    await post(suite.client, ada, "quarterly budget review")
    await post(suite.client, bob, "annual planning session", audience="followers")
    assert await _found(suite, ada, "budget") == ["quarterly budget review"]
    assert await _found(suite, ada, "planning") == []  # bob's post is for his followers
    assert await _found(suite, bob, "planning") == ["annual planning session"]
    assert await _found(suite, bob, "budget -planning") == ["quarterly budget review"]
    assert await _found(suite, ada, "review -session") == ["quarterly budget review"]
    if suite.feed.state.database.is_postgres:
        assert made == [("posts", shape(parse("budget"))), ("posts", shape(parse("budget -planning")))]
    else:
        assert made == []  # SQLite builds its statements each time, through the ORM
