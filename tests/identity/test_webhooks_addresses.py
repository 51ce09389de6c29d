"""Webhooks reach only the hosts they may: every spelling of an internal address is refused at
registration, every delivery checks the addresses its host resolves to at the moment it
connects, and it connects to an address it checked (a second lookup could rebind)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from services.identity import webhooks
from services.identity.models import WebhookDelivery, WebhookEndpoint
from services.identity.settings import IdentitySettings
from tests.helpers import admin, auth
from tests.identity.test_webhooks import Receiver
from tests.suite import build_suite

ODD_LOOPBACK_SPELLINGS = [
    "2130706433",
    "0x7f000001",
    "127.1",
    "017700000001",
    "0177.0.0.1",
    "0",
    "localhost.",
    "foo.localhost",
    "LOCALHOST",
    "[::ffff:127.0.0.1]",
    "[::1]",
    "[::]",
]


def _loopback_name() -> str | None:
    """A name this machine resolves to an internal address without being one of the names
    refused as such (its own host name, usually)."""
    name = socket.gethostname()
    try:
        found = {info[4][0] for info in socket.getaddrinfo(name, 443, type=socket.SOCK_STREAM)}
    except OSError:
        return None
    internal = found and all(not ipaddress.ip_address(a.split("%")[0]).is_global for a in found)
    return name if internal else None


@pytest.mark.parametrize("host", ODD_LOOPBACK_SPELLINGS)
async def test_registration_refuses_every_spelling_of_an_internal_address(suite, host):
    token, _ = await admin(suite)
    resp = await suite.client.post(
        "/api/v1/webhooks", json={"url": f"https://{host}/hooks", "event_types": ["*"]}, headers=auth(token)
    )
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["errors"][0]["location"] == "body.url"


async def test_registration_refuses_a_name_that_resolves_to_an_internal_address(suite):
    name = _loopback_name()
    if name is None:
        pytest.skip("this machine's host name does not resolve to an internal address")
    token, _ = await admin(suite)
    resp = await suite.client.post(
        "/api/v1/webhooks", json={"url": f"https://{name}/hooks", "event_types": ["*"]}, headers=auth(token)
    )
    assert resp.status_code == 422, resp.text
    assert "internal" in resp.json()["detail"]


async def test_an_allow_listed_host_is_matched_in_its_one_spelling_only(database_urls):
    overrides = {"webhook_allowed_hosts": ["127.0.0.1"], "webhook_allow_http": True}
    async with build_suite(database_urls, identity=overrides) as suite:
        token, _ = await admin(suite)
        for host in ("127.1", "2130706433", "localhost", "[::ffff:127.0.0.1]"):
            resp = await suite.client.post(
                "/api/v1/webhooks",
                json={"url": f"http://{host}:9/x", "event_types": ["*"]},
                headers=auth(token),
            )
            assert resp.status_code == 422, (host, resp.text)
        listed = await suite.client.post(
            "/api/v1/webhooks",
            json={"url": "http://127.0.0.1:9/x", "event_types": ["*"]},
            headers=auth(token),
        )
        assert listed.status_code == 201, listed.text


async def test_deliveries_check_the_resolved_address_and_never_reach_internal_hosts(database_urls, tmp_path):
    """Endpoints stored before the rules (or whose names now resolve elsewhere) are judged again
    when each delivery connects: nothing reaches the loopback receiver."""
    receiver = Receiver(tmp_path)
    receiver.start()
    try:
        async with build_suite(database_urls, identity={"webhook_allow_http": True}) as suite:
            token, _ = await admin(suite)
            hosts = ["2130706433", "0x7f000001", "127.1", "localhost.", "[::ffff:127.0.0.1]", "127.0.0.1"]
            if name := _loopback_name():
                hosts.append(name)
            database = suite.identity.state.database
            async with database.sessionmaker() as session, session.begin():
                endpoints = [
                    WebhookEndpoint(
                        owner="legacy",
                        url=f"http://{host}:{receiver.port}/hooks",
                        event_types=["*"],
                        contexts=["professional"],
                        secret=webhooks.new_secret(),
                    )
                    for host in hosts
                ]
                session.add_all(endpoints)
            for endpoint in endpoints:
                queued = await suite.client.post(f"/api/v1/webhooks/{endpoint.id}/test", headers=auth(token))
                assert queued.status_code == 202, queued.text
            await suite.identity.state.webhook_relay.deliver_once()
            async with database.sessionmaker() as session:
                deliveries = (await session.scalars(select(WebhookDelivery))).all()
            assert len(deliveries) == len(hosts)
            assert all(d.status == "pending" and d.attempt_count == 1 for d in deliveries)
            assert all((d.last_error or "").startswith("refused:") for d in deliveries), [
                d.last_error for d in deliveries
            ]
        assert receiver.received() == []
    finally:
        receiver.stop()


@pytest.mark.parametrize(
    ("address", "trusted", "allowed"),
    [
        ("93.184.215.14", False, True),
        ("2606:4700::1111", False, True),
        ("127.0.0.1", False, False),
        ("10.1.2.3", False, False),
        ("100.64.0.1", False, False),  # shared address space (carrier-grade NAT)
        ("169.254.169.254", False, False),
        ("0.0.0.0", False, False),  # noqa: S104 - an address to judge, not to bind
        ("224.0.0.1", False, False),
        ("240.0.0.1", False, False),
        ("255.255.255.255", False, False),
        ("::1", False, False),
        ("::", False, False),
        ("fe80::1", False, False),
        ("fd00:ec2::254", False, False),
        ("ff02::1", False, False),
        ("::ffff:127.0.0.1", False, False),  # IPv4-mapped
        ("::ffff:93.184.215.14", False, True),
        ("2002:7f00:1::", False, False),  # 6to4 around 127.0.0.1
        ("2002:a01:203::", False, False),  # 6to4 around 10.1.2.3
        ("64:ff9b::7f00:1", False, False),  # NAT64 around 127.0.0.1
        ("::7f00:1", False, False),  # IPv4-compatible 127.0.0.1
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", False, False),  # Teredo around 127.0.0.1
        # an allow-listed host may be on the organisation's network, never anywhere else
        ("127.0.0.1", True, True),
        ("10.1.2.3", True, True),
        ("::ffff:10.1.2.3", True, True),
        ("169.254.169.254", True, False),
        ("fe80::1", True, False),
        ("0.0.0.0", True, False),  # noqa: S104 - an address to judge, not to bind
        ("224.0.0.1", True, False),
    ],
)
def test_which_addresses_webhooks_may_reach(address, trusted, allowed):
    problem = webhooks.address_problem(ipaddress.ip_address(address), trusted=trusted)
    assert (problem is None) == allowed, problem


def _certificate(folder: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


class TlsReceiver:
    """An https receiver on 127.0.0.1 that records the SNI name and Host header it gets."""

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert_file, key_file)
        self.context.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)  # type: ignore[assignment,misc]
        self.sni: list[str | None] = []
        self.hosts: list[str] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> TlsReceiver:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.context)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        lines = [line.split(": ", 1) for line in head.split("\r\n")[1:] if ": " in line]
        headers = {name.lower(): value for name, value in lines}
        self.hosts.append(headers.get("host", ""))
        await reader.readexactly(int(headers.get("content-length", "0")))
        writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        await writer.drain()
        writer.close()


async def test_a_delivery_connects_to_the_address_it_checked_with_the_host_name_for_tls(tmp_path):
    """The resolver answers a loopback address once, then the cloud metadata address (a
    rebinding DNS): the delivery goes to the first, verified by the URL's host name; the
    next connection resolves again, sees the metadata address and is refused."""
    cert_file, key_file = _certificate(tmp_path, "hooks.example.test")
    answers = [["127.0.0.1"]]
    asked: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        asked.append(host)
        return answers.pop(0) if answers else ["169.254.169.254"]

    settings = IdentitySettings(internal_token="unused", webhook_allowed_hosts=["hooks.example.test"])
    trust = ssl.create_default_context(cafile=str(cert_file))
    async with TlsReceiver(cert_file, key_file) as receiver:
        url = f"https://hooks.example.test:{receiver.port}/hooks"
        async with webhooks.delivery_client(settings, resolver=rebinding, verify=trust) as client:
            resp = await client.post(url, content=b"{}")
        assert resp.status_code == 204
        assert asked == ["hooks.example.test"]  # one lookup, nobody else's
        assert receiver.sni == ["hooks.example.test"]
        assert receiver.hosts == [f"hooks.example.test:{receiver.port}"]
        async with webhooks.delivery_client(settings, resolver=rebinding, verify=trust) as client:
            with pytest.raises(httpx.ConnectError, match="not allowed"):
                await client.post(url, content=b"{}")
        assert len(receiver.hosts) == 1


async def test_a_certificate_for_another_name_is_refused_although_the_address_was_allowed(tmp_path):
    cert_file, key_file = _certificate(tmp_path, "other.example.test")

    async def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    settings = IdentitySettings(internal_token="unused", webhook_allowed_hosts=["hooks.example.test"])
    trust = ssl.create_default_context(cafile=str(cert_file))
    async with (
        TlsReceiver(cert_file, key_file) as receiver,
        webhooks.delivery_client(settings, resolver=resolve, verify=trust) as client,
    ):
        with pytest.raises(httpx.ConnectError, match=r"(?i)certificate"):
            await client.post(f"https://hooks.example.test:{receiver.port}/hooks", content=b"{}")


async def test_delivery_clients_share_one_trust_store_that_refuses_an_unknown_authority(tmp_path):
    """Without a trust given, every delivery client verifies with the system's authorities,
    loaded once per process: a certificate they did not issue is refused."""
    cert_file, key_file = _certificate(tmp_path, "hooks.example.test")

    async def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    settings = IdentitySettings(internal_token="unused", webhook_allowed_hosts=["hooks.example.test"])
    shared = webhooks._default_tls()
    assert shared is webhooks._default_tls()
    assert shared.verify_mode == ssl.CERT_REQUIRED and shared.check_hostname
    async with (
        TlsReceiver(cert_file, key_file) as receiver,
        webhooks.delivery_client(settings, resolver=resolve) as client,
    ):
        with pytest.raises(httpx.ConnectError, match=r"(?i)certificate"):
            await client.post(f"https://hooks.example.test:{receiver.port}/hooks", content=b"{}")
    assert receiver.hosts == []
