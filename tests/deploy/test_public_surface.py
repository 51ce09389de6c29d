"""What each deployment exposes: the gateway's public port only, its metrics on a port that no
Service, Ingress or published port reaches, and SCIM's addresses on the public URL."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from launcher.topology import DEFAULT_PORTS, METRICS_HOST, Layout, environment
from tests.deploy.test_manifests import _of, _render
from tests.processes import ROOT


@pytest.fixture(scope="module", params=["base", "overlays/production"])
def manifests(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return _render(request.param)


def _compose() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    return services


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def test_kubernetes_scrapes_the_gateways_metrics_port_which_no_service_or_ingress_exposes(manifests):
    deployment = _of(manifests, "Deployment")["gateway"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert set(ports) == {"http", "metrics"}
    env = _env(container)
    assert env["GATEWAY_METRICS_PORT"] == str(ports["metrics"])
    assert env["GATEWAY_METRICS_HOST"] == "0.0.0.0"  # noqa: S104 - the pod's own network, fenced below
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(ports["metrics"])
    service = _of(manifests, "Service")["gateway"]
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    for ingress in _of(manifests, "Ingress").values():
        backends = [p["backend"]["service"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]]
        assert backends and all(b == {"name": "gateway", "port": {"name": "http"}} for b in backends)
        paths = [p["path"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]]
        assert not [p for p in paths if p in {"/", "/metrics"}]


def test_only_the_monitoring_namespace_reaches_the_gateways_metrics_port(manifests):
    policy = _of(manifests, "NetworkPolicy")["govsocial-gateway"]
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "gateway"
    rules = {tuple(p["port"] for p in rule["ports"]): rule.get("from") for rule in policy["spec"]["ingress"]}
    # the public port: from anywhere in the base; production narrows it to its ingress controller
    # (tests/deploy/test_manifests.py)
    assert rules[("http",)] is None or rules[("http",)] != rules[("metrics",)]
    assert rules[("metrics",)] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]


def test_compose_publishes_the_public_port_only():
    services = _compose()
    gateway = services["gateway"]
    assert gateway["ports"] == ["${GATEWAY_PUBLISH:-8000}:8000"]
    assert gateway["environment"]["GATEWAY_METRICS_PORT"] == "8010"
    assert gateway["expose"] == ["8010"]
    assert [name for name, s in services.items() if "ports" in s] == ["gateway"]


def test_scim_names_the_public_url_in_every_deployment(manifests):
    config = _of(manifests, "ConfigMap")["govsocial-config"]["data"]
    assert config["IDENTITY_PUBLIC_URL"] == config["IDENTITY_TOKEN_ISSUER"]  # the public URL
    assert config["IDENTITY_PUBLIC_URL"].startswith("https://")
    compose = _compose()["identity"]["environment"]
    assert compose["IDENTITY_PUBLIC_URL"] == "${PUBLIC_URL:-http://localhost:8000}"


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])  # noqa: S104 - SUITE_HOST may be any
def test_make_run_keeps_the_gateways_metrics_on_loopback_and_names_scim_by_the_gateway(host):
    layout = Layout(host, dict(DEFAULT_PORTS), 8010)
    env = environment(layout, internal_token="t", var_dir="var")
    assert env["GATEWAY_METRICS_HOST"] == METRICS_HOST == "127.0.0.1"
    assert env["GATEWAY_METRICS_PORT"] == "8010"
    assert env["IDENTITY_PUBLIC_URL"] == f"http://{host}:8000"
