"""Two replicas of each service and of the gateway against one PostgreSQL: load through both
gateways loses and doubles no event, every replica of every service ends as the writes say,
and a service stopped with SIGTERM under load finishes what it started and loses nothing."""

from __future__ import annotations

import asyncio
import importlib
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kit.outbox import recorded
from launcher.topology import SERVICES
from tests.conftest import TEST_DATABASE_URL
from tests.deploy.cluster import Cluster, start_cluster
from tests.helpers import CHARTER
from tests.mailbox import confirm

pytestmark = pytest.mark.postgres

PASSWORD = "correct horse battery staple"
USERS = 12
GROUPS = 3
POSTS_PER_GROUP = 2
EVENTUALLY = 60.0
# Below the servers' keep-alive timeout (5 s): a client never reuses a connection the server
# is closing at that very moment.
LIMITS = httpx.Limits(keepalive_expiry=2)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not TEST_DATABASE_URL:
        pytest.fail("TEST_DATABASE_URL is required: these tests prove what only PostgreSQL can")
    yield from start_cluster(TEST_DATABASE_URL, tmp_path_factory.mktemp("cluster"))


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _eventually(call, ok=(200, 201), timeout: float = EVENTUALLY) -> httpx.Response:
    """Retries a call answered 403, 404 or 409: a replica has not received an event yet."""
    deadline = time.monotonic() + timeout
    while True:
        resp: httpx.Response = await call()
        if resp.status_code in ok or resp.status_code not in (403, 404, 409) or time.monotonic() > deadline:
            return resp
        await asyncio.sleep(0.2)


async def _all_pages(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        resp = await client.get(path, params=params, headers=headers)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        items += body["items"]
        cursor = body.get("next_cursor")
        if not cursor:
            return items


class Person:
    def __init__(self, index: int) -> None:
        self.index = index
        self.handle = f"user{index}x{uuid.uuid4().hex[:6]}"
        self.email = f"{self.handle}@agency.example"
        self.token = ""
        self.persona_id = ""
        self.display_name = ""


async def _sign_up(cluster: Cluster, clients: list[httpx.AsyncClient], person: Person) -> None:
    first, second = clients[person.index % 2], clients[(person.index + 1) % 2]
    body = {"email": person.email, "password": PASSWORD, "handle": person.handle, "display_name": "New"}
    resp = await first.post("/api/v1/accounts", json=body)
    assert resp.status_code == 202, resp.text
    token = await asyncio.to_thread(cluster.token_for, person.handle)
    resp = await second.post("/api/v1/accounts/verification", json={"token": token, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    form = {"grant_type": "password", "username": person.email, "password": PASSWORD}
    resp = await second.post("/api/v1/auth/token", data=form)
    assert resp.status_code == 200, resp.text
    person.token, person.persona_id = resp.json()["access_token"], resp.json()["persona_id"]
    for version in range(3):  # three updates of one subject in a row, through both gateways
        person.display_name = f"Person {person.index} v{version}"
        resp = await clients[version % 2].patch(
            f"/api/v1/personas/{person.persona_id}",
            json={"display_name": person.display_name},
            headers=_auth(person.token),
        )
        assert resp.status_code == 200, resp.text


async def _join(client: httpx.AsyncClient, person: Person, group_id: str) -> None:
    path = f"/api/v1/groups/{group_id}/members/{person.persona_id}"
    resp = await _eventually(lambda: client.put(path, headers=_auth(person.token)))
    assert resp.status_code in (200, 201), resp.text


async def _leave(client: httpx.AsyncClient, person: Person, group_id: str) -> None:
    path = f"/api/v1/groups/{group_id}/members/{person.persona_id}"
    resp = await client.delete(path, headers=_auth(person.token))
    assert resp.status_code == 204, resp.text


async def _post(client: httpx.AsyncClient, person: Person, body: dict[str, Any]) -> str:
    key = uuid.uuid4().hex
    headers = {**_auth(person.token), "Idempotency-Key": key}
    resp = await _eventually(lambda: client.post("/api/v1/posts", json=body, headers=headers))
    assert resp.status_code == 201, resp.text
    post_id: str = resp.json()["id"]
    return post_id


def _check_every_event_delivered_once(cluster: Cluster) -> dict[str, int]:
    """Every delivery row is delivered, its subscriber recorded the event as processed (unless
    only idempotent consumers apply it: ``kit.outbox.recorded``), and no subscriber processed an
    event that was not sent to it. Returns the event count per source."""
    handlers = {name: importlib.import_module(f"services.{name}.events").handlers for name in SERVICES}
    counts = {}
    processed = {
        name: {row[0] for row in cluster.query(name, "SELECT id FROM processed_event")} for name in SERVICES
    }
    expected: dict[str, set[uuid.UUID]] = {name: set() for name in SERVICES}
    for source in SERVICES:
        rows = cluster.query(
            source,
            "SELECT e.id, e.type, d.subscriber, d.status FROM outbox_delivery d "
            "JOIN outbox_event e ON e.seq = d.event_seq",
        )
        counts[source] = cluster.query(source, "SELECT count(*) FROM outbox_event")[0][0]
        undelivered = [r for r in rows if r.status != "delivered"]
        assert not undelivered, f"{source}: {len(undelivered)} deliveries left"
        pairs = [(r.id, r.subscriber) for r in rows]
        assert len(pairs) == len(set(pairs)), f"{source}: a delivery row is doubled"
        for event_id, subscriber in pairs:
            expected[subscriber].add(event_id)
        lost = [
            (r.id, r.subscriber)
            for r in rows
            if r.id not in processed[r.subscriber] and recorded(handlers[r.subscriber], r.type)
        ]
        assert not lost, f"{source}: {len(lost)} events never processed, e.g. {lost[:3]}"
    for name in SERVICES:
        unknown = processed[name] - expected[name]
        assert not unknown, f"{name} processed {len(unknown)} events nobody sent it"
    return counts


def _check_replicas_match_their_sources(cluster: Cluster) -> None:
    personas = {
        r.id: r.display_name for r in cluster.query("identity", "SELECT id, display_name FROM persona")
    }
    for consumer in ("feed", "groups", "moderation"):
        replica = {
            r.id: r.display_name
            for r in cluster.query(consumer, "SELECT id, display_name FROM persona_replica")
        }
        assert replica == personas, f"{consumer}'s persona replica differs from identity"
    members = {
        (r.persona_id, r.group_id)
        for r in cluster.query("groups", "SELECT persona_id, group_id FROM membership")
    }
    replica_members = {
        (r.persona_id, r.group_id)
        for r in cluster.query("feed", "SELECT persona_id, group_id FROM membership_replica")
    }
    assert replica_members == members, (
        "feed's membership replica differs from groups: "
        f"missing {members - replica_members}, extra {replica_members - members}"
    )
    groups = {r.id for r in cluster.query("groups", 'SELECT id FROM "group"')}
    for consumer in ("feed", "moderation"):
        replica_groups = {r.id for r in cluster.query(consumer, "SELECT id FROM group_replica")}
        assert replica_groups == groups, f"{consumer}'s group replica differs from groups"
    roles = {
        (r.group_id, r.persona_id, r.role)
        for r in cluster.query(
            "groups", "SELECT group_id, persona_id, role FROM membership WHERE role IN ('owner', 'moderator')"
        )
    }
    replica_roles = {
        (r.group_id, r.persona_id, r.role)
        for r in cluster.query("moderation", "SELECT group_id, persona_id, role FROM group_role_replica")
    }
    assert replica_roles == roles, "moderation's group roles differ from groups"


async def test_two_replicas_of_everything_lose_and_double_no_event(cluster: Cluster):
    people = [Person(i) for i in range(USERS)]
    async with (
        httpx.AsyncClient(base_url=cluster.gateways()[0], timeout=30, limits=LIMITS) as one,
        httpx.AsyncClient(base_url=cluster.gateways()[1], timeout=30, limits=LIMITS) as two,
    ):
        clients = [one, two]
        await asyncio.gather(*(_sign_up(cluster, clients, p) for p in people))

        groups: list[str] = []
        for g in range(GROUPS):
            owner = people[g]
            body = {
                "name": f"Group {g}",
                "handle": f"group{g}x{uuid.uuid4().hex[:6]}",
                "purpose": "Prove that two replicas agree.",
                "charter": CHARTER,
            }
            resp = await _eventually(
                lambda o=owner, b=body: clients[o.index % 2].post(
                    "/api/v1/groups", json=b, headers=_auth(o.token)
                )
            )
            assert resp.status_code == 201, resp.text
            groups.append(resp.json()["id"])

        members: dict[str, set[str]] = {g: {people[i].persona_id} for i, g in enumerate(groups)}

        async def membership(person: Person) -> None:
            for n, group_id in enumerate(groups):
                if person.persona_id in members[group_id]:
                    continue
                client = clients[(person.index + n) % 2]
                await _join(client, person, group_id)
                if person.index % 3 == n:  # join, leave, join again: three events of one subject
                    await _leave(clients[(person.index + n + 1) % 2], person, group_id)
                    await _join(client, person, group_id)
                if person.index % 4 == n:  # and some leave for good
                    await _leave(client, person, group_id)
                    continue
                members[group_id].add(person.persona_id)

        await asyncio.gather(*(membership(p) for p in people))

        posts: dict[str, list[str]] = {g: [] for g in groups}
        organisation: list[str] = []

        async def write(person: Person) -> None:
            client = clients[person.index % 2]
            organisation.append(await _post(client, person, {"body": f"Hello from {person.handle}"}))
            for group_id in groups:
                if person.persona_id not in members[group_id]:
                    continue
                for n in range(POSTS_PER_GROUP):
                    body = {"body": f"Post {n} by {person.handle}", "audience": "group", "group_id": group_id}
                    posts[group_id].append(await _post(clients[n % 2], person, body))

        await asyncio.gather(*(write(p) for p in people))

        pending = cluster.wait_quiet()
        assert not any(pending.values()), f"deliveries still pending: {pending}\n{cluster.logs()}"
        counts = _check_every_event_delivered_once(cluster)
        assert counts["identity"] >= USERS * 4  # created + three updates each
        _check_replicas_match_their_sources(cluster)

        feed_posts = cluster.query("feed", "SELECT count(*) FROM post")[0][0]
        assert feed_posts == len(organisation) + sum(len(p) for p in posts.values())
        activity = cluster.query("groups", "SELECT count(*) FROM activity WHERE kind = 'post'")[0][0]
        assert activity == sum(len(p) for p in posts.values()), "a post.created event was applied twice"

        reader = people[0]
        for client in clients:  # every read, through either gateway, agrees with the writes
            for group_id in groups:
                listed = await _all_pages(client, f"/api/v1/groups/{group_id}/members", _auth(reader.token))
                assert {m["persona_id"] for m in listed} == members[group_id]
                group = (await client.get(f"/api/v1/groups/{group_id}", headers=_auth(reader.token))).json()
                assert group["member_count"] == len(members[group_id])
                member = next(p for p in people if p.persona_id in members[group_id])
                timeline = await _all_pages(
                    client, f"/api/v1/timelines/groups/{group_id}", _auth(member.token)
                )
                assert sorted(p["id"] for p in timeline) == sorted(posts[group_id])
                names = {p["author"]["id"]: p["author"]["display_name"] for p in timeline}
                assert names == {p.persona_id: p.display_name for p in people if p.persona_id in names}
            org = await _all_pages(client, "/api/v1/timelines/organisation", _auth(reader.token))
            assert set(organisation) <= {p["id"] for p in org}


async def _upload(client: httpx.AsyncClient, person: Person, data: bytes, name: str) -> dict[str, Any]:
    """An upload, retried while media's replica does not know the persona yet (401 with
    Retry-After: its ``persona.created`` event is on its way)."""
    deadline = time.monotonic() + EVENTUALLY
    while True:
        resp = await client.post(
            "/api/v1/media", files={"file": (name, data, "image/png")}, headers=_auth(person.token)
        )
        if resp.status_code != 401 or "retry-after" not in resp.headers or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert resp.status_code == 202, resp.text
    created: dict[str, Any] = resp.json()
    return created


async def test_two_media_replicas_process_each_upload_once_and_serve_it_through_either_gateway(
    cluster: Cluster,
):
    """Both media replicas run the worker on one store (here a shared folder, as a shared
    volume or a bucket would be): each upload is claimed and processed once, and its file is
    served by either replica, through either gateway (decision 0036)."""
    from tests.media.samples import png_bytes

    people = [Person(100 + i) for i in range(2)]
    async with (
        httpx.AsyncClient(base_url=cluster.gateways()[0], timeout=30, limits=LIMITS) as one,
        httpx.AsyncClient(base_url=cluster.gateways()[1], timeout=30, limits=LIMITS) as two,
    ):
        clients = [one, two]
        await asyncio.gather(*(_sign_up(cluster, clients, p) for p in people))
        uploads = await asyncio.gather(
            *(
                _upload(clients[n % 2], people[n % 2], png_bytes(20 + n, 10 + n), f"picture-{n}.png")
                for n in range(8)
            )
        )
        assert {u["status"] for u in uploads} == {"processing"}

        async def ready(n: int, media_id: str) -> dict[str, Any]:
            owner = people[n % 2]
            deadline = time.monotonic() + EVENTUALLY
            while True:  # asked through the other gateway, so of the other media replica
                resp = await clients[(n + 1) % 2].get(f"/api/v1/media/{media_id}", headers=_auth(owner.token))
                assert resp.status_code == 200, resp.text
                if resp.json()["status"] != "processing" or time.monotonic() > deadline:
                    media: dict[str, Any] = resp.json()
                    return media
                await asyncio.sleep(0.2)

        done = await asyncio.gather(*(ready(n, u["id"]) for n, u in enumerate(uploads)))
        assert [m["status"] for m in done] == ["ready"] * len(uploads), done
        for n, media in enumerate(done):
            assert (media["width"], media["height"]) == (20 + n, 10 + n)
            for client in clients:
                file = await client.get(
                    f"/api/v1/media/{media['id']}/file", headers=_auth(people[n % 2].token)
                )
                assert file.status_code == 200, file.text
                assert file.content.startswith(b"\x89PNG")
                assert file.headers["content-length"] == str(len(file.content))

    rows = cluster.query("media", "SELECT status, attempts FROM media")
    assert sorted(rows) == [("ready", 1)] * len(uploads), "an upload was claimed more than once"
    logs = "\n".join(r.output() for r in cluster.replicas["media"])
    assert "Traceback" not in logs, logs[-3000:]


class _SlowBody:
    """A request body sent in two halves, the second only once ``release`` is set."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.started = threading.Event()
        self.release = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        half = len(self.payload) // 2
        yield self.payload[:half]
        self.started.set()
        self.release.wait(30)
        yield self.payload[half:]


def test_a_service_stopped_under_load_finishes_its_requests_and_loses_nothing(cluster: Cluster):
    feed_stopping, feed_staying = cluster.replicas["feed"]
    gateway = cluster.gateways()[1]  # reaches feed 0, the replica that stays
    with httpx.Client(base_url=gateway, timeout=30) as client:
        person = Person(99)
        body = {"email": person.email, "password": PASSWORD, "handle": person.handle, "display_name": "Stays"}
        assert client.post("/api/v1/accounts", json=body).status_code == 202
        confirm(client, cluster.token_for(person.handle), PASSWORD)
        form = {"grant_type": "password", "username": person.email, "password": PASSWORD}
        tokens = client.post("/api/v1/auth/token", data=form).json()
        person.token = tokens["access_token"]

    marker = uuid.uuid4().hex[:8]
    deadline = time.monotonic() + EVENTUALLY
    while True:  # the persona has reached feed: its posts are accepted
        resp = httpx.post(
            feed_staying.url + "/api/v1/posts",
            json={"body": f"{marker} first"},
            headers=_auth(person.token),
            timeout=30,
        )
        if resp.status_code == 201 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert resp.status_code == 201, resp.text
    outcomes: dict[str, list[str]] = {"created": [], "retried": [], "failed": []}
    stop_load = threading.Event()

    def create(key: str, number: int) -> None:
        """One post, straight to the replica being stopped; a request it refused or dropped
        before answering is retried on the other replica with the same Idempotency-Key."""
        headers = {**_auth(person.token), "Idempotency-Key": key}
        payload = {"body": f"{marker} load {number}"}
        try:
            resp = httpx.post(feed_stopping.url + "/api/v1/posts", json=payload, headers=headers, timeout=30)
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
            outcomes["retried"].append(type(exc).__name__)
            resp = httpx.post(feed_staying.url + "/api/v1/posts", json=payload, headers=headers, timeout=30)
        if resp.status_code == 201:
            outcomes["created"].append(resp.json()["id"])
        else:
            outcomes["failed"].append(f"{resp.status_code} {resp.text[:200]}")

    attempts = 0
    counting = threading.Lock()

    def load() -> None:
        nonlocal attempts
        while not stop_load.is_set():
            with counting:
                if attempts >= 400:
                    return
                attempts += 1
                number = attempts
            create(uuid.uuid4().hex, number)

    slow = _SlowBody(f'{{"body": "{marker} in flight"}}'.encode())
    slow_result: dict[str, Any] = {}

    def in_flight() -> None:
        headers = {**_auth(person.token), "Content-Type": "application/json"}
        try:
            resp = httpx.post(feed_stopping.url + "/api/v1/posts", content=slow, headers=headers, timeout=30)
            slow_result["status"] = resp.status_code
            slow_result["body"] = resp.text
        except httpx.HTTPError as exc:
            slow_result["error"] = repr(exc)

    workers = [threading.Thread(target=load) for _ in range(4)]
    slow_thread = threading.Thread(target=in_flight)
    for worker in workers:
        worker.start()
    time.sleep(1.0)
    slow_thread.start()
    assert slow.started.wait(10)
    # The in-flight request's headers have reached the replica: uvicorn waits for a request it
    # has begun, but closes a connection whose headers it has not read yet. Under load (two
    # cores, five services in two replicas each) its loop may lag a good part of a second.
    time.sleep(1.5)
    assert feed_stopping.process is not None
    feed_stopping.process.send_signal(signal.SIGTERM)
    time.sleep(1.0)
    slow.release.set()
    slow_thread.join(30)
    time.sleep(0.5)
    stop_load.set()
    for worker in workers:
        worker.join(60)
    feed_stopping.process.wait(timeout=30)

    # uvicorn shuts down cleanly, then re-raises the signal it caught
    assert feed_stopping.process.returncode in (0, -signal.SIGTERM), feed_stopping.tail()
    assert "Application shutdown complete" in feed_stopping.tail(), feed_stopping.tail()
    assert slow_result.get("status") == 201, slow_result
    assert not outcomes["failed"], outcomes["failed"][:5]
    assert outcomes["retried"], "the load never met the stopped replica"
    pending = cluster.wait_quiet()
    assert not any(pending.values()), f"deliveries still pending: {pending}\n{cluster.logs()}"
    rows = cluster.query("feed", "SELECT id FROM post WHERE body LIKE :m", m=f"{marker}%")
    created = {uuid.UUID(i) for i in outcomes["created"]}
    assert len(rows) == attempts + 2, "a post was lost or made twice"  # and the first, the slow one
    assert created <= {r.id for r in rows}
    _check_every_event_delivered_once(cluster)
