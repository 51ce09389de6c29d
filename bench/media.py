"""The media scenarios of ``make bench`` (issue #20, decision 0036): what an upload costs the
media process in memory, and what serving a file through the gateway costs against the
gateway serving the same bytes from a plain static route.

- **Upload memory**: a 20 MB document is posted to ``POST /api/v1/media`` through the gateway;
  the media process's peak resident memory (``VmHWM``) is read before and after, the upload and
  its processing included (the worker runs in the same process). The body is streamed to a
  spool file, so the growth must stay under 30 MB whatever the file's size.
- **Serving**: a 1 MB JPEG attached to a post is read as another member of the organisation
  (``GET /api/v1/media/{id}/file`` with a bearer: media asks feed whether the reader sees the
  post, then streams the stored file), and through a signed link (no token, no question to
  feed). The baseline is a second gateway process with a static route (``bench.static_gateway``)
  serving the very same bytes; the target is at least half its throughput.
"""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from sqlalchemy import create_engine, text

from bench import dataset
from kit.serving import HTTP_PROTOCOL

UPLOAD_BYTES = 20_000_000
IMAGE_BYTES = 1_000_000
RSS_TARGET_MB = 30
SERVING_TARGET = 0.5
STATIC_PATH = "/bench-static/image.jpg"


def noise_jpeg(size: int, seed: int = 3) -> bytes:
    """A JPEG of about ``size`` bytes: random pixels, which compress badly, so the byte count
    follows the pixel count."""
    rng = random.Random(seed)
    side = 256
    while True:
        pixels = bytes(rng.getrandbits(8) for _ in range(side * side * 3))
        out = io.BytesIO()
        Image.frombytes("RGB", (side, side), pixels).save(out, "JPEG", quality=90)
        if out.tell() >= size:
            return out.getvalue()
        side = int(side * 1.25)


def big_pdf(size: int) -> bytes:
    """A PDF-shaped document of ``size`` bytes: the header the type is decided from, then a
    stream of filler. Media stores documents as they are, so only its streaming is measured."""
    head = b"%PDF-1.7\n1 0 obj\n<< /Length " + str(size).encode() + b" >>\nstream\n"
    tail = b"\nendstream\nendobj\ntrailer\n<< >>\n%%EOF\n"
    return head + os.urandom(max(size - len(head) - len(tail), 0)) + tail


def peak_rss_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def add_replicas(media_database_url: str, personas: list[uuid.UUID]) -> None:
    """Media's persona replica, as identity's events would have filled it: the dataset writes
    identity's and feed's tables directly."""
    engine = create_engine(dataset.sync_url(media_database_url))
    with engine.begin() as conn:
        for persona in personas:
            conn.execute(
                text(
                    "INSERT INTO persona_replica (id, context, handle, display_name, status, updated_at) "
                    "VALUES (:id, 'professional', :handle, 'Bench', 'active', CURRENT_TIMESTAMP)"
                ),
                {
                    "id": persona if engine.dialect.name == "postgresql" else persona.hex,
                    "handle": f"b{persona.hex[:12]}",
                },
            )
    engine.dispose()


def _ready(client: httpx.Client, token: str, media_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = client.get(f"/api/v1/media/{media_id}", headers={"Authorization": f"Bearer {token}"})
        resp.raise_for_status()
        media: dict[str, Any] = resp.json()
        if media["status"] != "processing":
            return media
        time.sleep(0.2)
    raise SystemExit(f"media {media_id} still processing after {timeout} s")


def upload(client: httpx.Client, token: str, name: str, data: bytes, content_type: str) -> dict[str, Any]:
    resp = client.post(
        "/api/v1/media",
        files={"file": (name, data, content_type)},
        headers={"Authorization": f"Bearer {token}"},
    )
    if resp.status_code != 202:
        raise SystemExit(f"upload answered {resp.status_code}: {resp.text[:300]}")
    created: dict[str, Any] = resp.json()
    return created


def measure_upload_memory(gateway: str, token: str, media_pid: int) -> dict[str, Any]:
    """The media process's peak memory growth over one 20 MB upload and its processing."""
    data = big_pdf(UPLOAD_BYTES)
    with httpx.Client(base_url=gateway, timeout=120) as client:
        # one small upload first, so that lazily loaded code is in memory before the baseline
        _ready(client, token, upload(client, token, "warm.pdf", big_pdf(10_000), "application/pdf")["id"])
        rss_before, hwm_before = peak_rss_kb(media_pid)
        started = time.monotonic()
        media = upload(client, token, "large.pdf", data, "application/pdf")
        uploaded = time.monotonic() - started
        done = _ready(client, token, media["id"])
        rss_after, hwm_after = peak_rss_kb(media_pid)
    growth_mb = (hwm_after - max(hwm_before, rss_before)) / 1024
    return {
        "bytes": len(data),
        "status": done["status"],
        "upload_seconds": round(uploaded, 2),
        "rss_before_mb": round(rss_before / 1024, 1),
        "peak_before_mb": round(hwm_before / 1024, 1),
        "peak_after_mb": round(hwm_after / 1024, 1),
        "rss_after_mb": round(rss_after / 1024, 1),
        "peak_growth_mb": round(max(growth_mb, 0.0), 1),
        "target_mb": RSS_TARGET_MB,
        "met": growth_mb < RSS_TARGET_MB and done["status"] == "ready",
    }


def prepare_image(gateway: str, author_token: str, reader_token: str) -> tuple[str, bytes, str]:
    """Uploads the 1 MB image, attaches it to an organisation-wide post; returns its media id,
    the stored bytes (as the reader downloads them) and a signed link."""
    with httpx.Client(base_url=gateway, timeout=60) as client:
        media = _ready(
            client,
            author_token,
            upload(client, author_token, "photo.jpg", noise_jpeg(IMAGE_BYTES), "image/jpeg")["id"],
        )
        if media["status"] != "ready":
            raise SystemExit(f"the bench image was {media['status']}: {media.get('reason')}")
        resp = client.post(
            "/api/v1/posts",
            json={"body": "Bench photo", "media_ids": [media["id"]]},
            headers={"Authorization": f"Bearer {author_token}"},
        )
        if resp.status_code != 201:
            raise SystemExit(f"posting the bench image answered {resp.status_code}: {resp.text[:300]}")
        reader = {"Authorization": f"Bearer {reader_token}"}
        stored = client.get(f"/api/v1/media/{media['id']}/file", headers=reader)
        stored.raise_for_status()
        seen = client.get(f"/api/v1/media/{media['id']}", headers=reader)
        seen.raise_for_status()
        return media["id"], stored.content, seen.json()["url"]


def start_static_gateway(
    var: Path, issuer: str, content: bytes, ports: Callable[[int], list[int]]
) -> tuple[subprocess.Popen[bytes], str]:
    """A gateway process with a plain static route serving ``content`` (``bench.static_gateway``)."""
    folder = var / "static"
    folder.mkdir(exist_ok=True)
    (folder / "image.jpg").write_bytes(content)
    (port,) = ports(1)
    env = {
        **os.environ,
        "BENCH_STATIC_DIR": str(folder),
        "GATEWAY_TOKEN_ISSUER": issuer,
        "GATEWAY_RATE_LIMIT_ENABLED": "false",
        "GATEWAY_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.static_gateway:create_app",
        "--factory",
        "--port",
        str(port),
    ]
    command += ["--no-access-log", "--log-level", "warning", "--timeout-keep-alive", "5", "--loop", "asyncio"]
    command += ["--http", HTTP_PROTOCOL]
    log = (var / "static-gateway.log").open("wb")
    process = subprocess.Popen(
        command, cwd=Path(__file__).resolve().parent.parent, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    return process, f"http://127.0.0.1:{port}"


def judge(figures: dict[str, Any]) -> dict[str, Any]:
    static = figures["static"]["rps"]
    bearer = figures["file_bearer"]["rps"]
    signed = figures["file_signed"]["rps"]
    return {
        "bearer_vs_static": round(bearer / static, 2) if static else None,
        "signed_vs_static": round(signed / static, 2) if static else None,
        "target": SERVING_TARGET,
        "met": bool(static) and bearer / static >= SERVING_TARGET,
    }


def line(figure: dict[str, Any]) -> str:
    return (
        f"{figure['rps']:>8.1f} req/s  p50 {figure['p50_ms']:>7.2f} ms  "
        f"p99 {figure['p99_ms']:>8.2f} ms  errors {figure['errors']}"
    )


def table(results: dict[str, Any]) -> str:
    upload_ = results["upload"]
    ratios = results["ratios"]

    def cell(name: str) -> str:
        return f"{results[name]['rps']} req/s, p99 {results[name]['p99_ms']} ms"

    rows = [
        "| media | figure | target |",
        "| --- | --- | --- |",
        f"| 20 MB upload: media's peak RSS growth | {upload_['peak_growth_mb']} MB | < {RSS_TARGET_MB} MB |",
        f"| 1 MB image, bearer, through the gateway | {cell('file_bearer')} | |",
        f"| 1 MB image, signed link | {cell('file_signed')} | |",
        f"| same bytes, gateway static route | {cell('static')} | |",
        f"| bearer / static | {ratios['bearer_vs_static']} | >= {SERVING_TARGET} |",
        f"| signed / static | {ratios['signed_vs_static']} | |",
    ]
    return "\n".join(rows)
