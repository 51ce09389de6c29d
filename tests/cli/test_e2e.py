"""The installed socialctl script against the real processes, through a gateway whose rate
limit is low enough that the import must wait out 429 answers."""

from __future__ import annotations

import json

import pytest

from tests.cli.processes import integrator_client, scim_total, socialctl, suite_processes, write_people

pytestmark = pytest.mark.e2e


def test_import_over_real_http_waits_out_the_rate_limit(tmp_path):
    # Low enough that even a slow, loaded machine sends faster than this.
    limits = json.dumps({"default": {"per_address": 20, "window_seconds": 5}})
    with suite_processes(tmp_path / "var", {"GATEWAY_RATE_LIMITS": limits}) as running:
        client = integrator_client(running, ["scim"])
        config = tmp_path / "config.json"
        login = socialctl(
            config, running.url(), "login", "--client-id", client["client_id"], secret=client["client_secret"]
        )
        assert login.returncode == 0, login.stderr
        assert client["client_secret"] not in login.stdout + login.stderr
        people = tmp_path / "people.csv"
        write_people(people, 60, bad_every=30)
        result = socialctl(config, running.url(), "accounts", "import", str(people))
        assert result.returncode == 1, result.stdout + result.stderr
        summary = "60 rows", "58 created, 0 updated, 0 unchanged, 2 failed."
        assert all(part in result.stdout for part in summary), result.stdout
        assert "│ 31 " in result.stdout and "│ 61 " in result.stdout
        assert any('"status": 429' in line for line in running.output)  # it was throttled, and waited
        token = json.loads(config.read_text())["access_token"]
        assert scim_total(running, token) == 58
