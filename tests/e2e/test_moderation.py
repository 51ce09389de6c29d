"""Moderation end to end, through the gateway to the five real processes, once per context:
a report, the queue, a hide; the post is gone from another persona's home, organisation and
group timelines, search and stream; the author appeals, the moderator who acted may not decide
it, a second moderator reverts it, and the post is back everywhere (decision 0032)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest

from tests.e2e.people import Headers, Person, grant, ids, until
from tests.helpers import CHARTER, unique
from tests.processes import LIMITS, Running, eventually

pytestmark = pytest.mark.e2e


class Stream:
    """The reader's event stream, read on a thread: until it has sent ``posts`` posts, or, with
    ``backlog``, until its first keep-alive comment (the feed sends one only after a poll found
    nothing new: what was waiting has all come), and for ``seconds`` at most."""

    def __init__(
        self, base: str, headers: Headers, seconds: float, *, posts: int | None = None, backlog: bool = False
    ) -> None:
        self.events: list[dict[str, str]] = []
        self._thread = threading.Thread(
            target=self._read, args=(base, headers, seconds, posts, backlog), daemon=True
        )
        self._thread.start()

    def _read(self, base: str, headers: Headers, seconds: float, posts: int | None, backlog: bool) -> None:
        deadline = time.monotonic() + seconds
        fields: dict[str, str] = {}
        try:
            with (
                httpx.Client(base_url=base, timeout=seconds + 5, limits=LIMITS) as client,
                client.stream("GET", "/api/v1/stream", headers=headers) as resp,
            ):
                assert resp.status_code == 200
                for line in resp.iter_lines():
                    if line == "":
                        if "event" in fields:
                            self.events.append(fields)
                        fields = {}
                    elif line.startswith(":"):
                        if backlog:
                            return
                    elif ":" in line:
                        name, _, value = line.partition(":")
                        fields[name] = value.removeprefix(" ")
                    sent = sum(e["event"] == "post" for e in self.events)
                    if time.monotonic() > deadline or (posts is not None and sent >= posts):
                        return
        except httpx.ReadTimeout:
            return

    def join(self) -> list[dict[str, str]]:
        self._thread.join()
        return self.events

    def postids(self) -> list[str]:
        return [json.loads(e["data"])["id"] for e in self.join() if e["event"] == "post"]


def _resume(base: str, headers: Headers, last_event_id: str) -> list[str]:
    """The posts a stream resumed after ``last_event_id`` sends (its backlog comes at once)."""
    return Stream(base, {**headers, "Last-Event-ID": last_event_id}, seconds=10, backlog=True).postids()


@pytest.mark.parametrize("context", ["professional", "personal"])
def test_report_hide_appeal_revert_in_each_context(running: Running, context: str) -> None:
    base = running.url()
    with httpx.Client(base_url=base, timeout=30, limits=LIMITS) as client:
        author, reader = Person(client, running, "ada"), Person(client, running, "bob")
        first, second = Person(client, running, "mod"), Person(client, running, "nia")
        grant(running, first, "moderator")
        grant(running, second, "moderator")
        a, r = author.headers(context), reader.headers(context)
        m1, m2 = first.headers("professional"), second.headers("professional")

        # The reader follows the author and both are in a group of the context.
        until(
            lambda: (
                client.put(f"/api/v1/following/{author.ids[context]}", headers=r).status_code
                in (200, 201, 204)
            ),
            "feed never learnt of the author",
        )
        group = client.post(
            "/api/v1/groups",
            json={
                "name": "Garden",
                "handle": unique("garden"),
                "purpose": "Grow vegetables together.",
                "charter": CHARTER,
            },
            headers=a,
        )
        assert group.status_code == 201, group.text
        group_id = group.json()["id"]
        until(
            lambda: (
                client.put(f"/api/v1/groups/{group_id}/members/{reader.ids[context]}", headers=r).status_code
                in (200, 201)
            ),
            "groups never learnt of the reader",
        )

        # A marker post, seen on the stream, gives the point to resume from.
        stream = Stream(base, r, seconds=15, posts=2)
        time.sleep(1)
        marker = client.post("/api/v1/posts", json={"body": "marker"}, headers=a).json()["id"]
        time.sleep(0.5)
        word = unique("zucchini")
        post = client.post("/api/v1/posts", json={"body": f"my {word} harvest"}, headers=a)
        assert post.status_code == 201, post.text
        post_id = post.json()["id"]
        events = stream.join()
        sent = [(json.loads(e["data"])["id"], e["id"]) for e in events if e["event"] == "post"]
        assert [p for p, _ in sent] == [marker, post_id], events
        after_marker = sent[0][1]

        def group_post() -> str | None:
            resp = client.post(
                "/api/v1/posts",
                json={"body": f"group {word}", "audience": "group", "group_id": group_id},
                headers=a,
            )
            return resp.json()["id"] if resp.status_code == 201 else None

        grouped = eventually(group_post, timeout=60)
        assert grouped

        def everywhere() -> dict[str, bool]:
            return {
                "home": post_id in ids(client, "/api/v1/timelines/home", r),
                "organisation": post_id in ids(client, "/api/v1/timelines/organisation", r),
                "search": post_id in ids(client, "/api/v1/posts", r, q=word),
                "group": grouped in ids(client, f"/api/v1/timelines/groups/{group_id}", r),
                "post": client.get(f"/api/v1/posts/{post_id}", headers=r).status_code == 200,
                "group post": client.get(f"/api/v1/posts/{grouped}", headers=r).status_code == 200,
                "stream": post_id in _resume(base, r, after_marker),
            }

        until(lambda: all(everywhere().values()), "the posts never reached the reader")

        # The reader reports both posts; the reports reach the moderators' queue.
        report_ids = []
        for target in (post_id, grouped):
            resp = client.post(
                "/api/v1/reports",
                json={"target": {"type": "post", "id": target}, "category": "spam"},
                headers=r,
            )
            assert resp.status_code == 201, resp.text
            report_ids.append(resp.json()["id"])
        queue = client.get("/api/v1/moderation/reports", headers=m1, params={"context": context})
        assert queue.status_code == 200, queue.text
        assert set(report_ids) <= {item["id"] for item in queue.json()["items"]}

        # The first moderator hides both.
        for report_id in report_ids:
            resp = client.post(f"/api/v1/moderation/reports/{report_id}/assign", headers=m1)
            assert resp.status_code == 200, resp.text
            resp = client.post(
                f"/api/v1/moderation/reports/{report_id}/resolve",
                json={"action": "hide", "reason": "Advertising in the wrong place."},
                headers=m1,
            )
            assert resp.status_code == 200, resp.text

        until(lambda: not any(everywhere().values()), lambda: f"the hidden posts stayed: {everywhere()}")
        mine = client.get(f"/api/v1/posts/{post_id}", headers=a)
        assert mine.status_code == 200 and mine.json()["moderation"] == "hidden", mine.text

        # The author appeals; the moderator who acted may not decide the appeal.
        def notices() -> list[dict[str, Any]]:
            resp = client.get("/api/v1/me/notices", headers=a)
            assert resp.status_code == 200, resp.text
            items: list[dict[str, Any]] = resp.json()["items"]
            return [n for n in items if n["target"]["id"] in (post_id, grouped)]

        until(lambda: len(notices()) == 2, "no notices for the author")
        appeals = []
        for notice in notices():
            assert notice["action"] == "hide"
            resp = client.post(
                f"/api/v1/me/notices/{notice['id']}/appeal",
                json={"text": "It was about the garden group, not an advert."},
                headers=a,
            )
            assert resp.status_code == 201, resp.text
            appeals.append(resp.json()["appeal"]["id"])
        for appeal in appeals:
            resp = client.post(
                f"/api/v1/moderation/reports/{appeal}/resolve",
                json={"action": "revert", "reason": "Mine to review."},
                headers=m1,
            )
            assert resp.status_code == 403, resp.text
            assert resp.json()["type"].endswith("appeal-same-moderator")
            resp = client.post(
                f"/api/v1/moderation/reports/{appeal}/resolve",
                json={"action": "revert", "reason": "On topic for the group after all."},
                headers=m2,
            )
            assert resp.status_code == 200, resp.text

        until(
            lambda: all(everywhere().values()),
            lambda: f"the restored posts did not come back: {everywhere()}",
        )
