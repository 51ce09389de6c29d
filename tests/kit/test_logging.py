"""Logs are JSON lines and never carry a password, a token or an email address."""

from __future__ import annotations

import json
import logging
import time

from kit.logging import JSONFormatter
from tests.helpers import auth, login, register

SECRET_PASSWORD = "a-very-distinctive-passphrase-4242"


async def test_logs_are_json_and_free_of_secrets(capfd, suite):
    email = await register(suite.client, "ada", email="ada.secret@agency.example", password=SECRET_PASSWORD)
    tokens = await login(suite.client, email, password=SECRET_PASSWORD)
    await suite.client.get("/api/v1/me", headers=auth(tokens["access_token"]))
    await suite.client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": SECRET_PASSWORD + "x"},
    )
    await suite.deliver()
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "expected access-log lines"
    entries = [json.loads(line) for line in lines]
    assert any(e.get("path") == "/api/v1/me" and e.get("status") == 200 for e in entries)
    for secret in (SECRET_PASSWORD, tokens["access_token"], tokens["refresh_token"], "ada.secret"):
        assert secret not in err


async def test_the_access_log_names_the_persona_behind_a_token_last(capfd, suite):
    email = await register(suite.client, "ada")
    tokens = await login(suite.client, email)
    await suite.client.get("/api/v1/me", headers=auth(tokens["access_token"]))
    await suite.client.get("/api/v1/me")
    entries = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.strip()]
    answered = [e for e in entries if e.get("path") == "/api/v1/me" and e.get("status") == 200]
    assert len(answered) == 2  # the gateway's line and identity's
    for entry in answered:
        assert entry["persona_id"] == tokens["persona_id"]
        assert list(entry)[-2:] == ["duration_ms", "persona_id"]
    refused = [e for e in entries if e.get("path") == "/api/v1/me" and e.get("status") == 401]
    assert refused
    assert all("persona_id" not in e for e in refused)


def test_a_json_line_is_stamped_in_utc_whatever_the_local_zone(monkeypatch):
    formatter = JSONFormatter("feed")
    monkeypatch.setenv("TZ", "America/St_Johns")  # UTC-3:30 on this date: every field moves
    time.tzset()
    try:
        stamps = []
        for second, msecs in ((1765055573, 487), (1765055573, 900), (1765055574, 2), (1765141973, 250)):
            record = logging.LogRecord("access", logging.INFO, "", 0, "request", None, None)
            record.created, record.msecs = second + msecs / 1000, msecs
            stamps.append(json.loads(formatter.format(record))["time"])
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    # each second's text made again when the second changes, the day too
    assert stamps == [
        "2025-12-06T21:12:53.487Z",
        "2025-12-06T21:12:53.900Z",
        "2025-12-06T21:12:54.002Z",
        "2025-12-07T21:12:53.250Z",
    ]
