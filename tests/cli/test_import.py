"""accounts import: SCIM provisioning from a CSV file, bad rows reported by line, never fatal."""

from __future__ import annotations

import asyncio
import csv
import email.utils
import time
from typing import Any

import httpx
from rich.console import Console

from socialctl import cli, people
from socialctl.api import Api, retry_after
from socialctl.config import Config
from tests.cli.conftest import client_login, client_token
from tests.helpers import auth

HEADER = "user_name,email,given_name,family_name,title,department,external_id,active\n"
GOOD = [
    "alice,alice@agency.example,Alice,Archer,Analyst,Finance,hr-1,true\n",
    "bob,bob@agency.example,Bob,Baker,Engineer,IT,hr-2,yes\n",
    'carol,carol@agency.example,Carol,"Cole, Jr.",Lead,IT,hr-3,\n',
]


async def scim_users(suite) -> dict[str, dict[str, Any]]:
    token = await client_token(suite, ("scim",))
    resp = await suite.client.get("/scim/v2/Users", params={"count": 200}, headers=auth(token))
    return {u["userName"]: u for u in resp.json()["Resources"]}


async def test_import_creates_good_rows_and_reports_bad_ones_by_line(suite, invoke, tmp_path):
    await client_login(suite, invoke, ("scim",))
    people_csv = tmp_path / "people.csv"
    people_csv.write_text(
        HEADER
        + GOOD[0]
        + ",nobody@agency.example,No,Name,,,,\n"  # line 3: no user_name
        + GOOD[1]
        + "\n"  # a blank line is skipped, not counted
        + "dave,not-an-email,Dave,Doe,,,,\n"  # line 6
        + "erin,erin@agency.example,Erin,Eve,,,,maybe\n"  # line 7
        + "alice,alice2@agency.example,Alice,Again,,,,\n"  # line 8: repeats line 2
        + "frank,frank@agency.example\n"  # line 9: too few fields
        + GOOD[2]
    )
    errors = tmp_path / "errors.csv"
    result = await invoke("accounts", "import", str(people_csv), "--errors-csv", str(errors))
    assert result.exit_code == 1, result.output
    assert "8 rows" in result.stdout
    assert "3 created, 0 updated, 0 unchanged, 5 failed." in result.stdout
    with errors.open() as stream:
        failed = {int(r["line"]): r["error"] for r in csv.DictReader(stream)}
    assert sorted(failed) == [3, 6, 7, 8, 9]
    assert "user_name is empty" in failed[3]
    assert "not an email" in failed[6]
    assert "not true or false" in failed[7]
    assert "repeats line 2" in failed[8]
    assert "fields where the header has" in failed[9]
    table = [line.split("│")[1].strip() for line in result.stdout.splitlines() if line.count("│") == 4]
    assert table == ["3", "6", "7", "8", "9"]

    users = await scim_users(suite)
    assert {"alice", "bob", "carol"} <= set(users)
    assert users["carol"]["name"]["familyName"] == "Cole, Jr."
    assert users["bob"]["title"] == "Engineer"
    assert users["alice"]["emails"][0]["value"] == "alice@agency.example"


async def test_reimport_updates_known_users(suite, invoke, tmp_path):
    await client_login(suite, invoke, ("scim",))
    first = tmp_path / "first.csv"
    first.write_text(HEADER + GOOD[0] + GOOD[1])
    result = await invoke("accounts", "import", str(first))
    assert result.exit_code == 0, result.output
    assert "2 created, 0 updated, 0 unchanged, 0 failed." in result.stdout
    result = await invoke("accounts", "import", str(first))
    assert result.exit_code == 0, result.output
    assert "0 created, 0 updated, 2 unchanged, 0 failed." in result.stdout

    second = tmp_path / "second.csv"
    second.write_text(
        HEADER
        + "alice,alice@agency.example,Alice,Archer,Director,Finance,hr-1,true\n"
        + "bob,bob@agency.example,Bob,Baker,Engineer,IT,hr-2,false\n"
        + GOOD[2]
        + "zed,alice@agency.example,Zed,Zulu,,,,\n"  # line 5: alice's email under another userName
    )
    result = await invoke("accounts", "import", str(second))
    assert result.exit_code == 1, result.output
    assert "1 created, 2 updated, 0 unchanged, 1 failed." in result.stdout
    assert "Conflict (409)" in result.stdout or "uniqueness" in result.stdout
    users = await scim_users(suite)
    assert users["alice"]["title"] == "Director"
    assert users["bob"]["active"] is False
    assert "zed" not in users


async def test_header_aliases_and_a_byte_order_mark_are_accepted(suite, invoke, tmp_path):
    await client_login(suite, invoke, ("scim",))
    people_csv = tmp_path / "export-from-hr.csv"
    people_csv.write_bytes(
        "\ufeffuserName,Email,First Name,Last Name\ngil,gil@agency.example,Gil,Green\n".encode()
    )
    result = await invoke("accounts", "import", str(people_csv))
    assert result.exit_code == 0, result.output
    assert "1 created" in result.stdout


async def test_failed_rows_keep_their_whole_user_name_in_a_narrow_terminal(
    suite, invoke, bridge, tmp_path, monkeypatch
):
    await client_login(suite, invoke, ("scim",))
    monkeypatch.setattr(cli, "out", Console(width=40, highlight=False, soft_wrap=True))
    names = [f"a_rather_long_user_name_of_row_{n}" for n in range(2)]
    people_csv = tmp_path / "people.csv"
    people_csv.write_text(HEADER + "".join(f"{name},not-an-email,A,B,,,,\n" for name in names))
    result = await invoke("accounts", "import", str(people_csv))
    assert result.exit_code == 1, result.output
    assert all(name in result.stdout for name in names)
    assert not [r for r in bridge.requests if r.url.path == people.USERS]  # bad rows are never sent


def test_rows_padded_with_empty_cells_are_read_and_short_rows_are_not():
    rows = people.read_rows("user_name,email\nann,ann@agency.example,,\nben\n")
    assert rows[0].user is not None and rows[0].user["userName"] == "ann"
    assert (rows[1].line, rows[1].problem) == (3, "1 field where the header has 2")


async def test_a_file_without_user_names_is_refused_before_any_request(invoke, bridge, tmp_path):
    people_csv = tmp_path / "people.csv"
    people_csv.write_text("mail,first\nx@agency.example,X\n")
    result = await invoke("accounts", "import", str(people_csv))
    assert result.exit_code == 1
    assert "no user_name column" in result.stderr
    assert bridge.requests == []


async def test_a_client_without_the_scim_scope_fails_once_not_per_row(suite, invoke, bridge, tmp_path):
    await client_login(suite, invoke, ("webhooks",))
    people_csv = tmp_path / "people.csv"
    people_csv.write_text(HEADER + "".join(GOOD))
    before = len(bridge.requests)
    result = await invoke("accounts", "import", str(people_csv))
    assert result.exit_code == 1
    assert "Error: Forbidden (403)" in result.stderr and "scim scope" in result.stderr
    assert len(bridge.requests) == before + 1


async def test_429_and_503_are_retried_after_retry_after(monkeypatch):
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "3"}, json={"title": "Too Many Requests"}),
            httpx.Response(503, headers={"Retry-After": "1"}, json={"title": "Service Unavailable"}),
            httpx.Response(201, json={"id": "1"}),
        ]
    )
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return next(answers)

    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(
        "socialctl.api.client_factory",
        lambda url: httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url=url),
    )
    config = Config(url="http://api", access_token="t", expires_at=None)
    async with Api(config, sleep=sleep) as api:
        status = await people.upsert(api, people.scim_user({"user_name": "hal"}))
    assert status == "created"
    assert waits == [3.0, 1.0]
    assert len(sent) == 3


async def test_429s_are_waited_out_however_many_until_the_throttle_budget(monkeypatch):
    statuses: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if len(statuses) < 20:
            statuses.append(429)
            return httpx.Response(429, headers={"Retry-After": "5"}, json={"title": "Too Many Requests"})
        statuses.append(201)
        return httpx.Response(201, json={"id": "1"})

    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(
        "socialctl.api.client_factory",
        lambda url: httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url=url),
    )
    config = Config(url="http://api", access_token="t", expires_at=None)
    async with Api(config, sleep=sleep) as api:  # more 429s in a row than ``attempts``
        assert await people.upsert(api, people.scim_user({"user_name": "hal"})) == "created"
    assert waits == [5.0] * 20 and statuses[-1] == 201
    statuses.clear()
    waits.clear()
    async with Api(config, sleep=sleep, max_throttled_seconds=12) as api:
        response = await api.request("GET", "/scim/v2/Users")
    assert response.status_code == 429 and waits == [5.0, 5.0]  # a third wait would pass 12 s


async def test_503s_are_retried_a_bounded_number_of_times(monkeypatch):
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(503, headers={"Retry-After": "1"}, json={"title": "Service Unavailable"})

    async def sleep(seconds: float) -> None:
        return None

    monkeypatch.setattr(
        "socialctl.api.client_factory",
        lambda url: httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url=url),
    )
    async with Api(Config(url="http://api", access_token="t", expires_at=None), sleep=sleep) as api:
        response = await api.request("GET", "/scim/v2/Users")
    assert response.status_code == 503 and len(sent) == 6


async def test_rows_are_provisioned_with_bounded_concurrency(monkeypatch):
    in_flight = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.002)
        in_flight -= 1
        return httpx.Response(201, json={})

    monkeypatch.setattr(
        "socialctl.api.client_factory",
        lambda url: httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url=url),
    )
    rows = people.read_rows("user_name\n" + "".join(f"u{i}\n" for i in range(40)))
    async with Api(Config(url="http://api", access_token="t")) as api:
        summary = await people.provision(api, rows, concurrency=4)
    assert summary.count("created") == 40
    assert peak == 4


def test_retry_after_reads_seconds_and_http_dates_and_stays_bounded():
    def answer(value: str | None) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": value} if value else {})

    assert retry_after(answer("7"), 0) == 7
    later = email.utils.formatdate(time.time() + 20, usegmt=True)
    assert 18 <= retry_after(answer(later), 0) <= 20
    assert retry_after(answer("86400"), 0) == 120
    assert 0 < retry_after(answer("soon"), 2) <= 4  # unreadable: back-off with jitter
    assert 0 < retry_after(answer(None), 1) <= 2
