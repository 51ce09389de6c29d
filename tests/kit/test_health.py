"""Liveness and readiness probes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import text

from kit.migrations import head_revision

ROOT = Path(__file__).resolve().parents[2]


async def test_every_service_is_live_and_ready(suite):
    for host in (*suite.services, "gateway"):
        assert (await suite.client.get(f"http://{host}/health/live")).json() == {"status": "ok"}
        ready = await suite.client.get(f"http://{host}/health/ready")
        assert ready.status_code == 200, ready.text
    report = (await suite.client.get("/health/ready")).json()
    assert report["upstreams"] == {
        "identity": "ready",
        "feed": "ready",
        "groups": "ready",
        "moderation": "ready",
        "records": "ready",
        "media": "ready",
    }


async def test_ready_fails_with_a_clear_message_when_migrations_are_behind(suite):
    async with suite.feed.state.database.engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    resp = await suite.client.get("http://feed/health/ready")
    assert resp.status_code == 503
    assert "run the migrations" in resp.json()["detail"]
    assert resp.headers["retry-after"]
    assert (await suite.client.get("http://feed/health/live")).status_code == 200


async def test_gateway_readiness_names_the_upstream_that_is_down(suite):
    suite.router.down.add("groups")
    resp = await suite.client.get("/health/ready")
    assert resp.status_code == 503
    assert "groups unreachable" in resp.json()["detail"]


@pytest.mark.parametrize("service", ["moderation", "records"])
async def test_gateway_readiness_names_a_later_service_when_it_is_down(suite, service):
    suite.router.down.add(service)
    resp = await suite.client.get("/health/ready")
    assert resp.status_code == 503
    assert f"{service} unreachable" in resp.json()["detail"]
    assert resp.json()["upstreams"][service] == "unreachable"


def test_the_expected_revision_is_read_again_when_a_revision_is_added(tmp_path):
    """The head revision is read once per state of the ``versions`` folder: building an app
    again does not compile every revision file again, and a revision added is seen."""
    service = tmp_path / "service"
    shutil.copytree(ROOT / "services" / "groups" / "migrations", service / "migrations")
    head = head_revision(service)
    assert head == head_revision(ROOT / "services" / "groups")
    (service / "migrations" / "versions" / "zz_added.py").write_text(
        f'revision = "added"\ndown_revision = "{head}"\nbranch_labels = None\ndepends_on = None\n\n\n'
        "def upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n"
    )
    assert head_revision(service) == "added"
