"""Bulk provisioning from a CSV file through SCIM: each row becomes a User, created or, when
its userName is provisioned already, replaced (left alone when it holds the row's values). A
bad row is reported with its line number and never stops the others."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from socialctl.api import Api, ApiError

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
USERS = "/scim/v2/Users"
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
TRUE = {"true", "yes", "y", "1", "active"}
FALSE = {"false", "no", "n", "0", "inactive", "suspended"}

# column -> accepted spellings (compared lower-case, without spaces, dashes and underscores)
COLUMNS: dict[str, tuple[str, ...]] = {
    "user_name": ("username", "user", "login"),
    "email": ("email", "mail", "emailaddress"),
    "given_name": ("givenname", "firstname"),
    "family_name": ("familyname", "lastname", "surname"),
    "display_name": ("displayname", "name"),
    "title": ("title", "jobtitle"),
    "department": ("department", "dept"),
    "external_id": ("externalid", "employeeid", "hrid"),
    "employee_number": ("employeenumber",),
    "active": ("active", "enabled"),
}
SPELLINGS = {spelling: column for column, names in COLUMNS.items() for spelling in names}

Status = Literal["created", "updated", "unchanged", "failed"]


class CsvError(Exception):
    """The file as a whole cannot be read (no header, no user_name column, not UTF-8)."""


@dataclass
class Row:
    line: int
    user_name: str
    user: dict[str, Any] | None = None
    problem: str | None = None


@dataclass
class Outcome:
    line: int
    user_name: str
    status: Status
    detail: str | None = None


@dataclass
class Summary:
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failures(self) -> list[Outcome]:
        return sorted((o for o in self.outcomes if o.status == "failed"), key=lambda o: o.line)


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name).lower()


def _columns(header: list[str]) -> dict[int, str]:
    mapping: dict[int, str] = {}
    for index, name in enumerate(header):
        column = SPELLINGS.get(_key(name))
        if column is not None and column not in mapping.values():
            mapping[index] = column
    if "user_name" not in mapping.values():
        raise CsvError(
            f"The header has no user_name column (got: {', '.join(header) or 'nothing'}); "
            f"columns are {', '.join(COLUMNS)}."
        )
    return mapping


def scim_user(values: dict[str, str]) -> dict[str, Any]:
    """A SCIM User of a row's values; raises ValueError on a value that cannot be right."""
    user_name = values.get("user_name", "")
    if not user_name:
        raise ValueError("user_name is empty")
    if len(user_name) > 254 or any(c.isspace() for c in user_name):
        raise ValueError(f"user_name {user_name!r} has spaces or is too long")
    email = values.get("email", "")
    if email and not EMAIL.fullmatch(email):
        raise ValueError(f"email {email!r} is not an email address")
    active = values.get("active", "").lower()
    if active and active not in TRUE | FALSE:
        raise ValueError(f"active {values['active']!r} is not true or false")
    user: dict[str, Any] = {"schemas": [CORE], "userName": user_name, "active": active not in FALSE}
    if email:
        user["emails"] = [{"value": email, "primary": True, "type": "work"}]
    name = {
        k: values[c] for k, c in (("givenName", "given_name"), ("familyName", "family_name")) if values.get(c)
    }
    if name:
        user["name"] = name
    for attribute, column in (
        ("displayName", "display_name"),
        ("title", "title"),
        ("externalId", "external_id"),
    ):
        if values.get(column):
            user[attribute] = values[column]
    enterprise = {
        k: values[c]
        for k, c in (("department", "department"), ("employeeNumber", "employee_number"))
        if values.get(c)
    }
    if enterprise:
        user["schemas"] = [CORE, ENTERPRISE]
        user[ENTERPRISE] = enterprise
    return user


def read_rows(text: str) -> list[Row]:
    """Every data row with the line it starts on; bad rows carry their problem instead of a user."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise CsvError("The file is empty.") from None
    except csv.Error as exc:
        raise CsvError(f"line 1: {exc}") from None
    columns = _columns(header)
    rows: list[Row] = []
    seen: dict[str, int] = {}
    end = reader.line_num
    while True:
        start = end + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            rows.append(Row(start, "", problem=f"unreadable CSV: {exc}"))
            break  # the reader cannot resynchronise after a broken quote
        end = reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        if len(record) > len(header) and not any(cell.strip() for cell in record[len(header) :]):
            record = record[: len(header)]  # spreadsheets pad rows with empty cells
        values = {columns[i]: cell.strip() for i, cell in enumerate(record) if i in columns}
        user_name = values.get("user_name", "")
        row = Row(start, user_name)
        if len(record) != len(header):
            row.problem = f"{len(record)} field{'s' * (len(record) != 1)} where the header has {len(header)}"
        elif (first := seen.get(user_name.lower())) is not None:
            row.problem = f"user_name {user_name!r} repeats line {first}"
        else:
            try:
                row.user = scim_user(values)
            except ValueError as exc:
                row.problem = str(exc)
        if user_name and row.problem is None:
            seen[user_name.lower()] = start
        rows.append(row)
    return rows


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvError(f"The file is not UTF-8 (byte {exc.start}).") from None


def comparable(user: dict[str, Any]) -> dict[str, Any]:
    """The attributes a row sets, as SCIM would compare them: a user whose stored values are
    these needs no replacing."""
    name = user.get("name") or {}
    emails = user.get("emails") or []
    primary = next((e for e in emails if e.get("primary")), emails[0] if emails else {})
    enterprise = user.get(ENTERPRISE) or {}
    return {
        "userName": str(user.get("userName", "")).lower(),
        "email": str(primary.get("value") or "").lower(),
        "givenName": name.get("givenName"),
        "familyName": name.get("familyName"),
        "displayName": user.get("displayName"),
        "title": user.get("title"),
        "externalId": user.get("externalId"),
        "active": user.get("active") is not False,
        "department": enterprise.get("department"),
        "employeeNumber": enterprise.get("employeeNumber"),
    }


async def upsert(api: Api, user: dict[str, Any]) -> Status:
    """Create the user; when SCIM says its userName exists, replace that user instead, unless
    it holds the row's values already."""
    created = await api.request("POST", USERS, json=user)
    if created.status_code == 201:
        return "created"
    conflict = ApiError.from_response(created)
    if created.status_code != 409:
        raise conflict
    query = {"filter": f"userName eq {json.dumps(user['userName'])}"}
    found = (await api.call("GET", USERS, params=query)).get("Resources") or []
    if not found:
        raise conflict  # the email belongs to another userName
    if comparable(found[0]) == comparable(user):
        return "unchanged"
    await api.call("PUT", f"{USERS}/{found[0]['id']}", json=user)
    return "updated"


async def check_access(api: Api) -> None:
    """One request before the rows: a token without the scim scope fails here, not 10,000 times."""
    await api.call("GET", "/scim/v2/ServiceProviderConfig")


async def provision(
    api: Api,
    rows: Iterable[Row],
    *,
    concurrency: int = 8,
    advance: Callable[[Outcome], None] = lambda outcome: None,
) -> Summary:
    summary = Summary()
    queue: asyncio.Queue[Row] = asyncio.Queue()
    for row in rows:
        if row.user is None:
            outcome = Outcome(row.line, row.user_name, "failed", row.problem)
            summary.outcomes.append(outcome)
            advance(outcome)
        else:
            queue.put_nowait(row)

    async def worker() -> None:
        while not queue.empty():
            row = queue.get_nowait()
            assert row.user is not None
            try:
                outcome = Outcome(row.line, row.user_name, await upsert(api, row.user))
            except ApiError as exc:
                if exc.status == 401:
                    raise  # the session itself is gone: every other row would fail the same way
                outcome = Outcome(row.line, row.user_name, "failed", " ".join(exc.lines()))
            summary.outcomes.append(outcome)
            advance(outcome)

    workers = [asyncio.create_task(worker()) for _ in range(max(1, concurrency))]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    return summary


def write_failures(summary: Summary, stream: io.TextIOBase | Any) -> None:
    writer = csv.writer(stream)
    writer.writerow(["line", "user_name", "error"])
    for failure in summary.failures:
        writer.writerow([failure.line, failure.user_name, failure.detail or ""])
