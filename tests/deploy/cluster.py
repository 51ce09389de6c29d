"""Two replicas of every service and of the gateway, as real processes on free ports, against one
PostgreSQL server (databases made for the run and dropped after it)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from launcher import topology
from launcher.topology import SERVICES
from services.identity.keys import KeyRing
from tests.conftest import PostgresDatabases
from tests.mailbox import token_in_log
from tests.processes import Process, free_ports, uvicorn_args, wait_until_ready

REPLICAS = 2
# The services that call media (decision 0036): the owners attach files, records reads them.
MEDIA_CALLERS = ("identity", "feed", "groups", "records")
TOKEN = "replica-test-internal-token"
# uvicorn's shutdown and keep-alive timeouts as deploy/entrypoint.sh sets them.
GRACEFUL = ("--timeout-graceful-shutdown", "20", "--timeout-keep-alive", "5")


@dataclass
class Replica(Process):
    """One replica of a service or of the gateway, served by uvicorn, its output in ``log``."""

    component: str = ""
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 180) -> None:
        wait_until_ready(self, self.url, timeout)


@dataclass
class Cluster:
    databases: PostgresDatabases
    replicas: dict[str, list[Replica]]
    engines: dict[str, Engine]

    def gateways(self) -> list[str]:
        return [r.url for r in self.replicas["gateway"]]

    def query(self, service: str, sql: str, **params: Any) -> list[Any]:
        with self.engines[service].connect() as conn:
            return list(conn.execute(text(sql), params).all())

    def pending_deliveries(self) -> dict[str, int]:
        return {
            name: self.query(name, "SELECT count(*) FROM outbox_delivery WHERE status <> 'delivered'")[0][0]
            for name in SERVICES
        }

    def wait_quiet(self, timeout: float = 120) -> dict[str, int]:
        """Waits until every outbox has delivered everything; returns what is still pending."""
        deadline = time.monotonic() + timeout
        pending = self.pending_deliveries()
        while any(pending.values()) and time.monotonic() < deadline:
            time.sleep(0.3)
            pending = self.pending_deliveries()
        return pending

    def token_for(self, handle: str) -> str:
        """The verification token an identity replica wrote to its log for ``handle``."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            logs = [r.output() for r in self.replicas["identity"]]
            lines = [line for log in logs for line in log.splitlines()]
            token = token_in_log(lines, handle)
            if token is not None:
                return token
            time.sleep(0.1)
        raise AssertionError(f"no verification mail for @{handle} in the identity logs")

    def logs(self) -> str:
        return "\n".join(f"== {r.name}\n{r.tail(15)}" for group in self.replicas.values() for r in group)


def _service_env(
    service: str, index: int, ports: dict[str, list[int]], urls: dict[str, str], folder: Path
) -> dict[str, str]:
    prefix = service.upper()
    other = (index + 1) % REPLICAS
    # Each replica sends its events to the other replica of each subscriber, so both replicas of
    # every consumer receive events, and identity's replicas verify each other's tokens.
    subscribers = topology.subscribers(service, lambda name: f"http://127.0.0.1:{ports[name][other]}")
    env = {
        f"{prefix}_DATABASE_URL": urls[service],
        f"{prefix}_INTERNAL_TOKEN": TOKEN,
        f"{prefix}_TOKEN_ISSUER": f"http://127.0.0.1:{ports['identity'][0]}",
        f"{prefix}_JWKS_URL": f"http://127.0.0.1:{ports['identity'][index]}/.well-known/jwks.json",
        f"{prefix}_SUBSCRIBERS": json.dumps(subscribers),
        f"{prefix}_RELAY_INTERVAL_SECONDS": "0.5",
        f"{prefix}_RELAY_MAX_BACKOFF_SECONDS": "2",
        f"{prefix}_DATABASE_POOL_SIZE": "5",
    }
    if service == "moderation":  # its lookups at filing, on the other replicas too
        env |= {
            "MODERATION_FEED_URL": f"http://127.0.0.1:{ports['feed'][other]}",
            "MODERATION_GROUPS_URL": f"http://127.0.0.1:{ports['groups'][index]}",
        }
    if service == "records":  # its calls to identity and feed; one export folder, as one volume
        env |= {
            "RECORDS_IDENTITY_URL": f"http://127.0.0.1:{ports['identity'][other]}",
            "RECORDS_FEED_URL": f"http://127.0.0.1:{ports['feed'][index]}",
            "RECORDS_EXPORT_DIR": str(folder / "exports"),
        }
    if service in MEDIA_CALLERS:  # attaching files, and records' reads of them
        env[f"{prefix}_MEDIA_URL"] = f"http://127.0.0.1:{ports['media'][other]}"
    if service == "media":  # its questions to the owners; one store, as one shared volume
        env |= {
            "MEDIA_FEED_URL": f"http://127.0.0.1:{ports['feed'][other]}",
            "MEDIA_GROUPS_URL": f"http://127.0.0.1:{ports['groups'][index]}",
            "MEDIA_IDENTITY_URL": f"http://127.0.0.1:{ports['identity'][other]}",
            "MEDIA_MEDIA_DIR": str(folder / "media"),
            "MEDIA_SPOOL_DIR": str(folder / f"media-spool-{index}"),
        }
    if service == "identity":
        env |= {
            "IDENTITY_SIGNING_KEY_DIR": str(folder / "keys"),
            "IDENTITY_PASSWORD_TIME_COST": "1",
            "IDENTITY_PASSWORD_MEMORY_COST": "1024",
            "IDENTITY_PASSWORD_PARALLELISM": "1",
        }
    return env


def _gateway_env(index: int, ports: dict[str, list[int]]) -> dict[str, str]:
    other = (index + 1) % REPLICAS
    # Gateway 0 reaches identity 0, feed 1, groups 0, moderation 1, records 0 and media 1;
    # gateway 1 the others: a write through one gateway and its read through the other land on
    # different replicas.
    return {
        "GATEWAY_IDENTITY_URL": f"http://127.0.0.1:{ports['identity'][index]}",
        "GATEWAY_FEED_URL": f"http://127.0.0.1:{ports['feed'][other]}",
        "GATEWAY_GROUPS_URL": f"http://127.0.0.1:{ports['groups'][index]}",
        "GATEWAY_MODERATION_URL": f"http://127.0.0.1:{ports['moderation'][other]}",
        "GATEWAY_RECORDS_URL": f"http://127.0.0.1:{ports['records'][index]}",
        "GATEWAY_MEDIA_URL": f"http://127.0.0.1:{ports['media'][other]}",
        "GATEWAY_TOKEN_ISSUER": f"http://127.0.0.1:{ports['identity'][0]}",
        "GATEWAY_RATE_LIMIT_ENABLED": "false",
        "GATEWAY_UPSTREAM_TIMEOUT_SECONDS": "30",
    }


def start_cluster(base_url: str, folder: Path) -> Iterator[Cluster]:
    databases = PostgresDatabases(base_url)
    databases.create()
    engines: dict[str, Engine] = {}
    replicas: dict[str, list[Replica]] = {}
    try:
        for name, url in databases.urls.items():
            engines[name] = create_engine(url.replace("+asyncpg", "+psycopg"), pool_size=2)
        key_dir = folder / "keys"
        KeyRing.from_dir(key_dir)  # one signing key, shared by both identity replicas
        free = iter(free_ports(REPLICAS * (len(SERVICES) + 1)))
        ports = {name: [next(free) for _ in range(REPLICAS)] for name in (*SERVICES, "gateway")}
        base_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith((*(f"{name.upper()}_" for name in SERVICES), "GATEWAY_", "OTEL_"))
        }
        for component in (*SERVICES, "gateway"):
            replicas[component] = []
            for index in range(REPLICAS):
                extra = (
                    _gateway_env(index, ports)
                    if component == "gateway"
                    else _service_env(component, index, ports, databases.urls, folder)
                )
                port = ports[component][index]
                replica = Replica(
                    uvicorn_args(component, port, *GRACEFUL),
                    {**base_env, **extra},
                    folder / f"{component}-{index}.log",
                    f"{component}-{index}",
                    component=component,
                    port=port,
                )
                replica.start()
                replicas[component].append(replica)
        for group in replicas.values():
            for replica in group:
                replica.wait_ready()
        yield Cluster(databases, replicas, engines)
    finally:
        for group in replicas.values():
            for replica in group:
                replica.stop()
        for engine in engines.values():
            engine.dispose()
        databases.drop()
