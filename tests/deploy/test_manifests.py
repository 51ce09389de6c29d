"""The deployment files agree with the code: every component is locked down and probed, every
service has its migration step, and the event subscriptions are those ``make run`` uses.
(``make deploy-check`` validates the same files against the compose and Kubernetes schemas.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.settings import GatewaySettings
from launcher.__main__ import uvicorn_command
from launcher.topology import APPS, COMPONENTS, DEFAULT_PORTS, SERVICES, SUBSCRIPTIONS, subscribers
from tests.processes import ROOT

KUBECTL = Path(sys.executable).parent / "kubectl"


def _render(overlay: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [str(KUBECTL), "kustomize", str(ROOT / "deploy/k8s" / overlay)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def _subscriptions(raw: str) -> list[dict[str, Any]]:
    """A ``*_SUBSCRIBERS`` setting without its URLs (the next test checks them)."""
    return [{k: v for k, v in s.items() if k != "url"} for s in json.loads(raw)]


@pytest.fixture(scope="module", params=["base", "overlays/production"])
def manifests(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return _render(request.param)


def _of(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def test_every_component_is_probed_limited_and_locked_down(manifests):
    deployments = _of(manifests, "Deployment")
    assert set(deployments) == set(COMPONENTS)
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        (container,) = pod["containers"]
        assert container["args"] == [name]
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert {"requests", "limits"} <= set(container["resources"])
        ready = "/health/live" if name == "gateway" else "/health/ready"
        assert container["readinessProbe"]["httpGet"]["path"] == ready
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert pod["terminationGracePeriodSeconds"] > 20 + 5  # graceful shutdown + preStop


def test_every_service_has_a_migration_job_and_every_component_an_hpa_and_a_pdb(manifests):
    jobs = _of(manifests, "Job")
    assert {j["spec"]["template"]["spec"]["containers"][0]["args"][1] for j in jobs.values()} == set(SERVICES)
    for kind in ("Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
        assert set(_of(manifests, kind)) == set(COMPONENTS), kind
    for hpa in _of(manifests, "HorizontalPodAutoscaler").values():
        assert hpa["spec"]["minReplicas"] >= 2


def test_no_secret_value_is_in_the_manifests(manifests):
    assert not _of(manifests, "Secret")
    config = _of(manifests, "ConfigMap")["govsocial-config"]["data"]
    assert not [key for key in config if "TOKEN" in key and "ISSUER" not in key]
    assert not [key for key in config if "DATABASE_URL" in key or "PASSWORD" in key]
    assert not [key for key in config if "SECRET" in key or "ACCESS_KEY" in key]


def test_kubernetes_and_compose_subscriptions_are_the_launchers(manifests):
    config = _of(manifests, "ConfigMap")["govsocial-config"]["data"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    compose_env = compose["services"]["feed"]["environment"]
    for service in SERVICES:
        key = f"{service.upper()}_SUBSCRIBERS"
        wanted = _subscriptions(json.dumps(subscribers(service, str)))
        assert _subscriptions(config[key]) == wanted
        assert _subscriptions(compose_env[key]) == wanted
    for service in SERVICES:
        key = f"{service.upper()}_SUBSCRIBERS"
        urls = {s["name"]: s["url"] for s in json.loads(config[key])}
        assert urls == {name: f"http://{name}" for name in urls}  # the Services' names
        urls = {s["name"]: s["url"] for s in json.loads(compose_env[key])}
        assert urls == {name: f"http://{name}:{DEFAULT_PORTS[name]}" for name in urls}


def test_every_service_is_addressed_verified_and_given_its_database(manifests):
    """A service the gateway cannot reach, that cannot check a token or has no database fails
    only at run time: each one's variables are set in both deployments."""
    config = _of(manifests, "ConfigMap")["govsocial-config"]["data"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    gateway = compose["gateway"]["environment"]
    deployments = _of(manifests, "Deployment")
    for service in SERVICES:
        prefix = service.upper()
        port = DEFAULT_PORTS[service]
        assert config[f"GATEWAY_{prefix}_URL"] == f"http://{service}"
        assert gateway[f"GATEWAY_{prefix}_URL"] == f"http://{service}:{port}"
        assert compose["gateway"]["depends_on"][service] == {"condition": "service_healthy"}
        assert f"127.0.0.1:{port}/health/ready" in " ".join(compose[service]["healthcheck"]["test"])
        assert compose[service]["command"] == [service]
        environment = compose[service]["environment"]
        assert environment[f"{prefix}_INTERNAL_TOKEN_FILE"] == "/run/secrets/internal_token"
        assert environment[f"{prefix}_DATABASE_URL"].endswith(f"@postgres:5432/{service}")
        assert environment[f"{prefix}_TOKEN_ISSUER"] == "${PUBLIC_URL:-http://localhost:8000}"
        assert config[f"{prefix}_TOKEN_ISSUER"] == config["GATEWAY_TOKEN_ISSUER"]
        if service != "identity":
            assert environment[f"{prefix}_JWKS_URL"] == "http://identity:8001/.well-known/jwks.json"
            assert config[f"{prefix}_JWKS_URL"] == "http://identity/.well-known/jwks.json"
        (container,) = deployments[service]["spec"]["template"]["spec"]["containers"]
        secrets = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
        assert secrets[f"{prefix}_DATABASE_URL"] == {"name": "govsocial-database", "key": service}
        assert secrets[f"{prefix}_INTERNAL_TOKEN"] == {"name": "govsocial-internal-token", "key": "token"}
    # moderation asks feed and groups at filing (decision 0032); records asks identity and feed
    # (decision 0033); media asks the owners who sees a file, and they (and records) call media
    # (decision 0036); feed asks groups when its replicas miss a group (services.feed.replicas)
    for caller, owners in (
        ("moderation", ("feed", "groups")),
        ("records", ("identity", "feed", "media")),
        ("media", ("feed", "groups", "identity")),
        ("feed", ("media", "groups")),
        ("groups", ("media",)),
        ("identity", ("media",)),
    ):
        for owner in owners:
            key = f"{caller.upper()}_{owner.upper()}_URL"
            assert config[key] == f"http://{owner}"
            assert compose[caller]["environment"][key] == f"http://{owner}:{DEFAULT_PORTS[owner]}"


EXPORTS = "/app/var/exports"


def test_records_exports_outlive_the_pod_and_are_shared_by_its_replicas(manifests):
    """The root filesystem is read-only: records writes its packages to a volume, one claim that
    every replica mounts (a package written by one is downloaded through another)."""
    pod = _of(manifests, "Deployment")["records"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert {"name": "RECORDS_EXPORT_DIR", "value": EXPORTS} in container["env"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == EXPORTS]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    claim = _of(manifests, "PersistentVolumeClaim")[volume["persistentVolumeClaim"]["claimName"]]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pod["securityContext"]["fsGroup"] == 10001  # the claim writable by the image's user


def test_compose_keeps_records_exports_in_a_named_volume():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    records = compose["services"]["records"]
    assert records["environment"]["RECORDS_EXPORT_DIR"] == EXPORTS
    (volume,) = [v.split(":")[0] for v in records["volumes"] if v.split(":")[1] == EXPORTS]
    assert volume in compose["volumes"]  # named, so it outlives the container
    # an empty named volume takes the owner of the image's directory: the image must make it
    dockerfile = (ROOT / "deploy/Dockerfile").read_text()
    assert f"mkdir -p {EXPORTS}" in dockerfile
    assert "USER 10001" in dockerfile and "chown -R 10001:0 /app" in dockerfile


def test_the_suites_pods_reach_every_service_and_nothing_else_does(manifests):
    """Events, JWKS and moderation's lookups in feed and groups go from one service's pod to
    another's: the policy admits every pod of the suite, and Prometheus. Media has its own."""
    policy = _of(manifests, "NetworkPolicy")["govsocial-services"]
    (selector,) = policy["spec"]["podSelector"]["matchExpressions"]
    assert selector["key"] == "app.kubernetes.io/component"
    assert selector["operator"] == "In"
    assert sorted(selector["values"]) == sorted(set(SERVICES) - {"media"})
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "govsocial"}}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
    ]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    for deployment in _of(manifests, "Deployment").values():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "govsocial"


def test_compose_gives_each_service_its_own_database_role_and_password():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    passwords = compose["postgres"]["environment"]
    for service in SERVICES:
        prefix = service.upper()
        migrate = compose[f"migrate-{service}"]["environment"]
        url = f"postgresql+asyncpg://{service}:${{{prefix}_DB_PASSWORD:?{prefix}_DB_PASSWORD is required}}"
        assert migrate[f"{prefix}_DATABASE_URL"] == f"{url}@postgres:5432/{service}"
        assert (
            passwords[f"{prefix}_DB_PASSWORD"]
            == f"${{{prefix}_DB_PASSWORD:?{prefix}_DB_PASSWORD is required}}"
        )


def test_postgres_init_makes_one_role_and_one_database_per_service(tmp_path: Path):
    """deploy/postgres/init.sh, with a psql that writes down what it was asked."""
    calls = tmp_path / "calls"
    fake = tmp_path / "psql"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\ncat >> {calls}\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "POSTGRES_USER": "postgres"}
    env |= {f"{service.upper()}_DB_PASSWORD": f"secret-{service}" for service in SERVICES}
    result = subprocess.run(
        ["sh", str(ROOT / "deploy/postgres/init.sh")], env=env, capture_output=True, text=True, timeout=10
    )
    assert result.returncode == 0, result.stderr
    written = calls.read_text()
    for service in SERVICES:
        assert f"-v service={service} -v password=secret-{service}" in written
    assert written.count('CREATE DATABASE :"service" OWNER :"service";') == len(SERVICES)
    missing = {k: v for k, v in env.items() if k != "MODERATION_DB_PASSWORD"}
    refused = subprocess.run(
        ["sh", str(ROOT / "deploy/postgres/init.sh")], env=missing, capture_output=True, text=True, timeout=10
    )
    assert refused.returncode != 0
    assert "MODERATION_DB_PASSWORD" in refused.stderr


def test_the_entrypoint_serves_each_component_on_its_port_and_migrates_every_service(tmp_path: Path):
    """Each component's factory and default port, its ``<PREFIX>_X_FILE`` secrets read, and every
    service in the default ``migrate`` list."""
    (tmp_path / "uvicorn").write_text('#!/bin/sh\necho "$@"\nenv | grep "_SEALED=" | sort\n')
    (tmp_path / "python").write_text('#!/bin/sh\necho "$@"\n')
    for program in ("uvicorn", "python"):
        (tmp_path / program).chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "PORT" and not k.endswith(("_PORT", "_SEALED"))}
    env["PATH"] = f"{tmp_path}:{env['PATH']}"
    for component in COMPONENTS:
        secret = tmp_path / f"{component}-secret"
        secret.write_text(f"from-a-file-{component}")
        env[f"{component.upper()}_SEALED_FILE"] = str(secret)

    def entrypoint(*args: str) -> list[str]:
        result = subprocess.run(
            ["sh", str(ROOT / "deploy/entrypoint.sh"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()

    for component in COMPONENTS:
        command, *secrets = entrypoint(component)
        args = command.split()
        assert args[0] == APPS[component]
        assert args[args.index("--port") + 1] == str(DEFAULT_PORTS[component]), component
        expected = [f"{name.upper()}_SEALED=from-a-file-{name}" for name in sorted(COMPONENTS)]
        assert secrets == expected
    assert entrypoint("migrate") == [f"-m services.migrate upgrade {' '.join(SERVICES)}"]


def test_the_compose_file_starts_each_service_after_its_migration():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name in SERVICES:
        assert services[f"migrate-{name}"]["command"] == ["migrate", name]
        condition = services[name]["depends_on"][f"migrate-{name}"]["condition"]
        assert condition == "service_completed_successfully"
        assert services[name]["healthcheck"]["test"]
        assert services[name]["restart"] == "unless-stopped"
    assert services["redis"]["profiles"] == ["redis"]
    assert services["gateway"]["ports"] == ["${GATEWAY_PUBLISH:-8000}:8000"]


def test_the_launcher_serves_on_asyncios_event_loop_with_kits_protocol():
    """Decisions 0015 and 0052, for `make run` and the end-to-end tests."""
    for component in COMPONENTS:
        command = uvicorn_command(component, "127.0.0.1", 8000)
        assert command[command.index("--loop") + 1] == "asyncio"
        assert command[command.index("--http") + 1] == "kit.serving:HttpProtocol"


def test_the_launcher_and_the_entrypoint_advertise_no_server(tmp_path: Path):
    """No Server header on any process's answers (uvicorn's is on by default): nothing
    advertises what runs, and the gateway's answers carry no second one (RFC 9110 §5.3)."""
    fake = tmp_path / "uvicorn"
    fake.write_text('#!/bin/sh\necho "$@"\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    for component in COMPONENTS:
        assert "--no-server-header" in uvicorn_command(component, "127.0.0.1", 8000)
        result = subprocess.run(
            ["sh", str(ROOT / "deploy/entrypoint.sh"), component],
            env=env,
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert result.returncode == 0, result.stderr
        assert "--no-server-header" in result.stdout.split(), result.stdout


def test_the_entrypoint_serves_on_asyncios_event_loop_with_kits_protocol(tmp_path: Path):
    """Decision 0015: not uvloop, which uvicorn would pick when it is installed; decision 0052:
    kit.serving's protocol, a response in one write."""
    fake = tmp_path / "uvicorn"
    fake.write_text('#!/bin/sh\necho "$@"\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    for component in COMPONENTS:
        result = subprocess.run(
            ["sh", str(ROOT / "deploy/entrypoint.sh"), component],
            env=env,
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert result.returncode == 0, result.stderr
        assert " --loop asyncio " in f" {result.stdout.strip()} ", result.stdout
        assert " --http kit.serving:HttpProtocol " in f" {result.stdout.strip()} ", result.stdout


def test_the_entrypoint_reads_secrets_from_files_and_migrates(tmp_path: Path):
    database = tmp_path / "identity.db"
    url_file = tmp_path / "identity-url"
    url_file.write_text(f"sqlite+aiosqlite:///{database}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDENTITY_")}
    env |= {"IDENTITY_DATABASE_URL_FILE": str(url_file), "PATH": f"{KUBECTL.parent}:{env['PATH']}"}
    result = subprocess.run(
        ["sh", str(ROOT / "deploy/entrypoint.sh"), "migrate", "identity"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "identity: migrated to head" in result.stdout
    assert database.exists()
    usage = subprocess.run(
        ["sh", str(ROOT / "deploy/entrypoint.sh"), "nonsense"], capture_output=True, text=True, timeout=10
    )
    assert usage.returncode == 2
    assert "usage" in usage.stderr


def test_compose_has_identity_believe_only_the_gateways_signed_client_address():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    identity, gateway = services["identity"], services["gateway"]
    secret = "/run/secrets/client_address_secret"
    assert identity["environment"]["IDENTITY_CLIENT_ADDRESS_SECRET_FILE"] == secret
    assert gateway["environment"]["GATEWAY_CLIENT_ADDRESS_SECRET_FILE"] == secret
    assert "client_address_secret" in identity["secrets"] and "client_address_secret" in gateway["secrets"]
    assert "client_address_secret" in compose["secrets"]


def test_in_production_only_the_ingress_controller_reaches_the_gateway_that_trusts_it():
    manifests = _render("overlays/production")
    config = _of(manifests, "ConfigMap")
    trusted = [
        json.loads(c["data"]["GATEWAY_TRUSTED_PROXIES"])
        for c in config.values()
        if "data" in c and "GATEWAY_TRUSTED_PROXIES" in c["data"]
    ]
    assert trusted and trusted[0]  # the overlay believes forwarded addresses from its proxies...
    policy = _of(manifests, "NetworkPolicy")["govsocial-gateway"]
    public = [
        rule for rule in policy["spec"]["ingress"] if {"port": "http", "protocol": "TCP"} in rule["ports"]
    ]
    assert len(public) == 1
    # ...so only the ingress controller's namespace may connect to the public port
    assert public[0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    ]


# Who calls media besides the gateway: the owners attach and release files, records reads them
# for its exports (decision 0036).
MEDIA_CALLERS = {"identity", "feed", "groups", "records"}


def test_only_the_gateway_the_owners_records_and_prometheus_reach_media(manifests):
    """Media's policy admits the gateway, every service that sends it events (the launcher's
    subscriptions) or calls it, and Prometheus; no other pod of the suite."""
    policy = _of(manifests, "NetworkPolicy")["govsocial-media"]
    assert policy["spec"]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "govsocial",
        "app.kubernetes.io/component": "media",
    }
    (rule,) = policy["spec"]["ingress"]
    pods, monitoring = rule["from"]
    assert monitoring == {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    assert pods["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "govsocial"}
    (allowed,) = pods["podSelector"]["matchExpressions"]
    assert (allowed["key"], allowed["operator"]) == ("app.kubernetes.io/component", "In")
    publishers = {name for name, subs in SUBSCRIPTIONS.items() if "media" in {s for s, _ in subs}}
    assert set(allowed["values"]) == {"gateway"} | publishers | MEDIA_CALLERS
    assert "moderation" not in allowed["values"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]


def test_media_keeps_its_files_in_an_object_store_every_replica_reaches(manifests):
    """Replicas share no folder: the files are in S3, its keys in a Secret; the pod writes only
    uploads in progress, to an emptyDir, and a read-only root refuses any other folder."""
    config = _of(manifests, "ConfigMap")["govsocial-config"]["data"]
    assert config["MEDIA_STORAGE"] == "s3"
    assert config["MEDIA_S3_BUCKET"]
    assert "MEDIA_S3_ENDPOINT_URL" in config
    pod = _of(manifests, "Deployment")["media"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    secrets = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert secrets["MEDIA_S3_ACCESS_KEY_ID"] == {"name": "govsocial-media-s3", "key": "access-key-id"}
    assert secrets["MEDIA_S3_SECRET_ACCESS_KEY"] == {"name": "govsocial-media-s3", "key": "secret-access-key"}
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == env["MEDIA_SPOOL_DIR"]]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert "emptyDir" in volume
    assert not [v for v in pod["volumes"] if "persistentVolumeClaim" in v]


def _bytes(size: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    return int(size[:-1]) * units[size[-1].lower()] if size[-1].lower() in units else int(size)


def test_the_upload_path_alone_takes_a_file_sized_body_through_the_ingress():
    """ingress-nginx refuses a body over its `proxy-body-size` with its own page: the upload
    route's Ingress lets the gateway's cap through (the gateway answers 413 past it), every
    other path keeps the small limit."""
    ingresses = _of(_render("overlays/production"), "Ingress")
    uploads, main = ingresses["govsocial-uploads"], ingresses["govsocial"]
    (rule,) = uploads["spec"]["rules"]
    assert [(p["path"], p["pathType"]) for p in rule["http"]["paths"]] == [("/api/v1/media", "Exact")]
    annotations = uploads["metadata"]["annotations"]
    assert (
        _bytes(annotations["nginx.ingress.kubernetes.io/proxy-body-size"])
        > GatewaySettings().upload_max_bytes
    )
    assert annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "off"
    assert (
        _bytes(main["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]) <= 2 * 1024**2
    )
    assert uploads["spec"]["ingressClassName"] == main["spec"]["ingressClassName"]
    assert uploads["spec"]["tls"] == main["spec"]["tls"]
    assert rule["host"] == main["spec"]["rules"][0]["host"]


MEDIA_DIR = "/app/var/media"


def test_compose_keeps_media_files_in_a_named_volume_or_in_minio_with_the_s3_profile():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    media = compose["services"]["media"]
    environment = media["environment"]
    assert environment["MEDIA_MEDIA_DIR"] == MEDIA_DIR
    (volume,) = [v.split(":")[0] for v in media["volumes"] if v.split(":")[1] == MEDIA_DIR]
    assert volume in compose["volumes"]
    assert f"mkdir -p {EXPORTS} {MEDIA_DIR}" in (ROOT / "deploy/Dockerfile").read_text()
    # local by default; `--profile s3` adds MinIO, which only media reaches
    assert environment["MEDIA_STORAGE"] == "${MEDIA_STORAGE:-local}"
    minio = compose["services"]["minio"]
    assert minio["profiles"] == ["s3"]
    assert "ports" not in minio
    assert media["depends_on"]["minio"] == {"condition": "service_healthy", "required": False}
    assert environment["MEDIA_S3_ENDPOINT_URL"].endswith("http://minio:9000}")
    # the keys come from .env, never from this file, and MinIO's are the same
    for key in ("MEDIA_S3_ACCESS_KEY_ID", "MEDIA_S3_SECRET_ACCESS_KEY"):
        assert environment[key] == f"${{{key}:-}}"
    assert minio["environment"]["MINIO_ROOT_USER"] == "${MEDIA_S3_ACCESS_KEY_ID:-}"
    assert minio["environment"]["MINIO_ROOT_PASSWORD"] == "${MEDIA_S3_SECRET_ACCESS_KEY:-}"
