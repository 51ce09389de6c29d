"""What operators see: Prometheus metrics on every service, and, when an OTLP exporter is
configured, one trace across the gateway and the service a request reaches."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from prometheus_client.exposition import generate_latest

from kit import tracing
from tests.helpers import auth, person
from tests.mailbox import confirm, wait_for_logged_token
from tests.processes import COMPONENTS, drain, free_ports, launch, stop, wait_for_line

PASSWORD = "correct horse battery staple"


async def test_every_service_exposes_metrics_per_route_template(suite):
    token, persona_id = await person(suite.client, "ada")
    await suite.deliver()  # groups knows the persona once its event arrives
    await suite.client.get(f"/api/v1/personas/{persona_id}", headers=auth(token))
    await suite.client.get(f"/api/v1/groups/{uuid.uuid4()}", headers=auth(token))
    for name in suite.services:
        async with httpx.AsyncClient(transport=suite.router, base_url=f"http://{name}") as client:
            resp = await client.get("/metrics")
        assert resp.status_code == 200, name
        assert "http_requests_total" in resp.text, name
    samples = {
        "identity": ("/api/v1/personas/{persona_id}", "200"),
        "groups": ("/api/v1/groups/{group_id}", "404"),
    }
    for name, (route, status) in samples.items():
        registry = suite.services[name].state.metrics.registry
        labels = {"method": "GET", "route": route, "status": status}
        assert registry.get_sample_value("http_requests_total", labels) == 1, name
    gateway = generate_latest(suite.gateway.state.metrics.registry).decode()
    # labelled by route, never by a raw path: the prefix, or the template once the gateway has
    # read the services' documents (in the background, two seconds after it starts)
    routes = ('route="/api/v1/personas"', 'route="/api/v1/personas/{persona_id}"')
    assert any(route in gateway for route in routes), gateway
    assert persona_id not in gateway


def test_tracing_is_off_unless_an_exporter_is_configured():
    assert tracing.provider_from_env("feed", {}) is None
    assert tracing.provider_from_env("feed", {"OTEL_TRACES_EXPORTER": "none"}) is None
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    assert tracing.provider_from_env("feed", {**endpoint, "OTEL_SDK_DISABLED": "true"}) is None
    provider = tracing.provider_from_env("feed", endpoint)
    assert provider is not None
    assert provider.resource.attributes["service.name"] == "govsocial-feed"
    provider.shutdown()


class Collector(ThreadingHTTPServer):
    """A stand-in OpenTelemetry collector: keeps the spans posted to ``/v1/traces`` (OTLP/HTTP)."""

    def __init__(self, port: int) -> None:
        self.spans: list[tuple[str, Span]] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _CollectorHandler)


class _CollectorHandler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        request = ExportTraceServiceRequest.FromString(body)
        with self.server.lock:
            for resource_spans in request.resource_spans:
                attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.server.spans.append((attributes.get("service.name", "?"), span))
        payload = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    (port,) = free_ports(1)
    server = Collector(port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.e2e
def test_a_request_through_the_gateway_is_one_trace_with_the_service(
    tmp_path: Path, collector: Collector, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{collector.server_port}")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    ports = dict(zip(COMPONENTS, free_ports(len(COMPONENTS)), strict=True))
    output: list[str] = []
    process = launch(tmp_path / "var", ports)
    reader = drain(process, output)
    try:
        assert wait_for_line(process, "The suite is running", output), "".join(output[-50:])
        with httpx.Client(base_url=f"http://127.0.0.1:{ports['gateway']}", timeout=10) as client:
            email = "ada@agency.example"
            body = {"email": email, "password": PASSWORD, "handle": "ada", "display_name": "Ada"}
            assert client.post("/api/v1/accounts", json=body).status_code == 202
            confirm(client, wait_for_logged_token(output, "ada"), PASSWORD)
            form = {"grant_type": "password", "username": email, "password": PASSWORD}
            tokens = client.post("/api/v1/auth/token", data=form).json()
            persona_id = tokens["persona_id"]
            headers = {"Authorization": f"Bearer {tokens['access_token']}", "X-Request-ID": "traced-1"}
            assert client.get(f"/api/v1/personas/{persona_id}", headers=headers).status_code == 200
    finally:
        stop(process, reader)  # the processes flush their spans as they stop
    route = "GET /api/v1/personas/{persona_id}"

    def spans(service: str, kind: int) -> list[Span]:
        with collector.lock:
            return [s for name, s in collector.spans if name == service and s.kind == kind]

    deadline = time.monotonic() + 10
    identity: list[Span] = []
    gateway: list[Span] = []
    while time.monotonic() < deadline and not (identity and gateway):
        identity = [s for s in spans("govsocial-identity", Span.SPAN_KIND_SERVER) if s.name == route]
        traces = {s.trace_id for s in identity}
        gateway = [s for s in spans("govsocial-gateway", Span.SPAN_KIND_SERVER) if s.trace_id in traces]
        time.sleep(0.1)
    seen = sorted({(service, s.name, s.kind) for service, s in collector.spans})
    assert len(identity) == 1, seen
    assert len(gateway) == 1, seen  # the same trace, begun by the gateway
    # before it has read the services' OpenAPI the gateway names the route by its prefix
    assert gateway[0].name.startswith("GET /api/v1/personas"), gateway[0].name
    gateway_clients = {
        s.span_id
        for s in spans("govsocial-gateway", Span.SPAN_KIND_CLIENT)
        if s.trace_id == gateway[0].trace_id
    }
    with collector.lock:
        everything = b"".join(s.SerializeToString() for _, s in collector.spans)
    assert identity[0].parent_span_id in gateway_clients
    assert tokens["access_token"].encode() not in everything
