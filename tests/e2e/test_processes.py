"""The real processes over real HTTP: what catches a wrong port, a missing migration or a
broken start command."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from bench.cpu import children_by_port
from launcher.topology import SERVICES, Layout, environment
from tests.helpers import CHARTER, unique
from tests.mailbox import Mailbox, confirm
from tests.processes import (
    COMPONENTS,
    LIMITS,
    ROOT,
    Process,
    Running,
    eventually,
    free_port,
    free_ports,
    launch,
    launched,
    listening,
    uvicorn,
    wait_until_ready,
)

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery staple"


def _person(client: httpx.Client, handle: str, token_for: Callable[[str], str]) -> tuple[dict[str, str], str]:
    """Registers, confirms with the mailed token (``token_for`` reads it by handle, or by address
    from an SMTP server) and signs in."""
    email = f"{handle}@agency.example"
    resp = client.post(
        "/api/v1/accounts",
        json={"email": email, "password": PASSWORD, "handle": handle, "display_name": handle},
    )
    assert resp.status_code == 202, resp.text
    confirm(client, token_for(handle), PASSWORD)
    tokens = client.post(
        "/api/v1/auth/token", data={"grant_type": "password", "username": email, "password": PASSWORD}
    ).json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}, tokens["persona_id"]


def test_slice_over_real_http(running):
    with httpx.Client(base_url=running.url(), timeout=10, limits=LIMITS) as client:
        assert client.get("/health/ready").status_code == 200
        ada, _ = _person(client, unique("ada"), running.token_for)
        bob, bob_id = _person(client, unique("bob"), running.token_for)
        group = client.post(
            "/api/v1/groups",
            json={
                "name": "Cloud",
                "handle": unique("cloud"),
                "purpose": "Move our services to the cloud together.",
                "charter": CHARTER,
            },
            headers=ada,
        ).json()
        assert client.put(f"/api/v1/groups/{group['id']}/members/{bob_id}", headers=bob).status_code == 201

        def post_when_membership_arrived():
            resp = client.post(
                "/api/v1/posts",
                json={"body": "Hello", "audience": "group", "group_id": group["id"]},
                headers=ada,
            )
            return resp if resp.status_code == 201 else None

        assert eventually(post_when_membership_arrived), "the group never reached feed"

        def home_has_post():
            items = client.get("/api/v1/timelines/home", headers=bob).json()["items"]
            return [p["body"] for p in items] == ["Hello"]

        assert eventually(home_has_post)
        assert client.get("/api/v1/timelines/home").status_code == 401

        # moderation, behind the gateway: its own prefix, and the group queue under groups'
        conduct = client.get("/api/v1/code-of-conduct", headers=ada)
        assert conduct.status_code == 200, conduct.text
        assert conduct.headers["content-type"] == "application/json"

        def owner_sees_the_group_queue():
            # once the group and its owner have reached moderation (groups' events)
            resp = client.get(f"/api/v1/groups/{group['id']}/reports", headers=ada)
            return resp if resp.status_code == 200 else None

        queue = eventually(owner_sees_the_group_queue)
        assert queue, "the group never reached moderation"
        assert queue.json()["items"] == []
        assert client.get(f"/api/v1/groups/{group['id']}/reports", headers=bob).status_code == 404


def test_every_process_runs_asyncios_event_loop_not_uvloop(running):
    """uvloop accepts one connection per turn of its loop, so under load new clients wait
    seconds to be accepted (decision 0015). uvicorn picks uvloop when it is installed unless
    told otherwise; a process that loaded it has its library mapped."""
    children = children_by_port(running.process.pid, running.ports)
    assert set(children) == set(running.ports)
    for name, pid in children.items():
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert "uvloop" not in maps, name
        assert "httptools" in maps  # the same check sees the libraries the process did load


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory) -> Running:
    """A suite of this module's own, started, used (someone registers) and stopped as Ctrl-C
    stops it (tests.processes.launched), with all it wrote: how it ended and what it wrote are
    what the tests read, so one start serves them all. It stops once moderation has logged
    (the access line of the delivery that tells it of the new persona): moderation writes no
    JSON line before it serves a request, and the relay delivers a moment after a commit."""
    with (
        launched(tmp_path_factory.mktemp("stopped") / "var") as running,
        httpx.Client(base_url=running.url(), timeout=10, limits=LIMITS) as client,
    ):
        _person(client, "ada", running.token_for)
        assert eventually(lambda: "moderation" in _json_services(running), 60), running.tail(30)
    return running


def _json_services(running: Running) -> set[str]:
    """The services that wrote a JSON line to the launcher's output so far."""
    return {
        json.loads(line)["service"] for line in "".join(running.output).splitlines() if line.startswith("{")
    }


def test_ctrl_c_stops_every_process(stopped):
    running = stopped
    assert running.process.returncode == 0, running.tail(30)
    # the gateway's metrics port too: it must not outlive the gateway
    for port in [*running.ports.values(), running.metrics_port]:
        assert port is not None
        assert not listening(port), f"port {port} still answers"


def test_port_in_use_is_a_clear_message(tmp_path):
    ports = dict(zip(COMPONENTS, free_ports(len(COMPONENTS)), strict=True))
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", ports["feed"]))
        blocker.listen()
        process = launch(tmp_path / "var", ports)
        out, _ = process.communicate(timeout=60)
    assert process.returncode == 1
    assert f"feed port {ports['feed']} already in use" in out
    assert "Traceback" not in out


def test_event_survives_a_killed_publisher_and_a_down_subscriber(tmp_path):
    """Identity commits an event while feed is down, is killed before it can deliver it, and
    delivers it after a restart once feed is up."""
    layout = Layout("127.0.0.1", dict(zip(COMPONENTS, free_ports(len(COMPONENTS)), strict=True)))
    var = tmp_path / "var"
    var.mkdir()
    env = {**os.environ, **environment(layout, internal_token="e2e-internal-token", var_dir=str(var))}
    for key in [k for k in env if k.endswith("_DATABASE_URL")]:
        env[key] = f"sqlite+aiosqlite:///{var}/{key.split('_')[0].lower()}.db"
    subprocess.run(
        [sys.executable, "-m", "services.migrate", "upgrade", *SERVICES],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    processes: list[Process] = []

    def start(component: str) -> Process:
        log = tmp_path / f"{component}-{len(processes)}.log"
        process = uvicorn(component, layout.ports[component], env, log=log)
        processes.append(process)
        return process

    with Mailbox(free_port()) as mailbox:
        env |= mailbox.env()

        def mailed(handle: str) -> str:
            return mailbox.token_for(f"{handle}@agency.example")

        try:
            identity = start("identity")
            wait_until_ready(identity, layout.url("identity"))
            with httpx.Client(base_url=layout.url("identity"), timeout=10, limits=LIMITS) as client:
                _, ada_id = _person(client, "ada", mailed)
                bob, _ = _person(client, "bob", mailed)
            identity.kill()

            # feed was never up while identity ran, so nothing was delivered before the kill
            feed = start("feed")
            identity = start("identity")
            wait_until_ready(feed, layout.url("feed"))
            wait_until_ready(identity, layout.url("identity"))
            with httpx.Client(base_url=layout.url("feed"), timeout=10, limits=LIMITS) as client:

                def ada_reached_feed():
                    return client.put(f"/api/v1/following/{ada_id}", headers=bob).status_code == 201

                assert eventually(ada_reached_feed, 60), "the event was lost"
        finally:
            for process in processes:
                process.stop(timeout=15)


def test_no_json_in_output_leaks_the_internal_token(stopped):
    running = stopped
    out = "".join(running.output)
    token = (running.var / "internal-token").read_text().strip()
    assert token not in out
    assert _json_services(running) <= {"gateway", *SERVICES}
