"""A few hundred generated hostile values (NUL, lone surrogates, overlong and invalid UTF-8, huge
numbers, wildcards, control and bidirectional characters, very long text) sent through the
gateway into a dozen representative parameters: paths, queries, forms, JSON and SCIM. Whatever
the database, the answer is never a 5xx."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from tests.helpers import admin, auth, person
from tests.identity.test_scim import SCIM, scim_token, user
from tests.suite import build_suite

SEED = 17
COUNT = 300

ATOMS: list[str | bytes] = [
    "\x00",
    "a\x00b",
    "\ud800",
    "\udfff",
    "x\udc00y",
    "\ud83d",
    "\x01\x1f\x7f\x9f",
    "\u202e",
    "\u200b\u200d",
    "e\u0301\u0301\u0301",
    "\U0001f600",
    "\ufeff",
    "\uffff",
    "١٢٣",
    "' OR 1=1 --",
    "%",
    "_",
    "\\",
    "*",
    "../",
    "%2e%2e",
    "\\u0000",
    str(2**31),
    str(2**63),
    str(2**64),
    "9" * 40,
    "-" + "9" * 40,
    "1e400",
    "NaN",
    "Infinity",
    "0x10",
    b"\xc0\x80",
    b"\xc0\xaf",
    b"\xe0\x80\x80",
    b"\xf0\x80\x80\x80",
    b"\xed\xa0\x80",
    b"\xff\xfe",
    b"\x80",
]


def hostile_values(count: int = COUNT, seed: int = SEED) -> list[bytes]:
    """Each value as the bytes a client would put on the wire (lone surrogates as their
    surrogate-pass UTF-8, which is invalid UTF-8), the plain atoms first."""
    rng = random.Random(seed)

    def wire(atom: str | bytes) -> bytes:
        return atom if isinstance(atom, bytes) else atom.encode("utf-8", "surrogatepass")

    values = [wire(atom) for atom in ATOMS]
    while len(values) < count:
        parts = [wire(rng.choice(ATOMS)) for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.3:
            parts.insert(rng.randrange(len(parts) + 1), b"ab" * rng.randint(1, 3000))
        values.append(b"".join(parts))
    return values


def json_string(value: bytes) -> bytes:
    """``value`` as a JSON string: valid UTF-8 as text (lone surrogates as escapes), anything
    else raw, as a broken client would send it."""
    try:
        text = value.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return b'"' + value + b'"'
    return json.dumps(text).encode()


@pytest.fixture
async def open_suite(database_urls):
    async with build_suite(database_urls, gateway={"rate_limit_enabled": False}) as suite:
        yield suite


async def test_no_hostile_value_gets_a_5xx_anywhere(open_suite):
    suite = open_suite
    hr = await scim_token(suite)
    root, _ = await admin(suite, "fuzz_admin")
    ada, _ = await person(suite.client, "ada")
    hook = await suite.client.post(
        "/api/v1/webhooks",
        json={"url": "https://hooks.example.org/x", "event_types": ["*"]},
        headers=auth(root),
    )
    assert hook.status_code == 201, hook.text
    hook_id = hook.json()["id"]
    await suite.deliver()
    json_headers = {"content-type": "application/json"}

    def targets(v: bytes) -> Iterator[tuple[str, str, dict[str, str], bytes | None]]:
        q = quote(v, safe="")
        yield "GET", f"/api/v1/personas?q={q}", auth(ada), None
        yield "GET", f"/api/v1/admin/accounts?q={q}", auth(root), None
        yield "GET", f"/api/v1/posts?q={q}", auth(ada), None
        yield "GET", f"/api/v1/groups?q={q}&cursor={q}", auth(ada), None
        yield "GET", f"/api/v1/personas/{q}", auth(ada), None
        yield "DELETE", f"/api/v1/admin/clients/{q}", auth(root), None
        yield "POST", f"/api/v1/webhooks/{hook_id}/deliveries/{q}/redeliver", auth(root), None
        form = {"content-type": "application/x-www-form-urlencoded"}
        yield "POST", "/api/v1/auth/token", form, f"grant_type=password&username={q}&password={q}".encode()
        yield (
            "POST",
            "/api/v1/auth/token",
            form,
            f"grant_type=client_credentials&client_id={q}&client_secret=x".encode(),
        )
        yield "POST", "/api/v1/posts", auth(ada) | json_headers, b'{"body": ' + json_string(v) + b"}"
        scim_user = json.dumps(user("placeholder")).encode().replace(b'"placeholder"', json_string(v), 1)
        yield "POST", f"{SCIM}/Users", auth(hr) | json_headers, scim_user
        query = quote(b'userName eq "' + v + b'"', safe="")
        yield "GET", f"{SCIM}/Users?filter={query}", auth(hr), None

    failures: list[str] = []
    for value in hostile_values():
        for method, url, headers, body in targets(value):
            resp = await suite.client.request(method, url, headers=headers, content=body)
            if resp.status_code >= 500:
                failures.append(f"{resp.status_code} {method} {url[:120]} {(body or b'')[:80]!r}")
    assert failures == [], "\n".join(failures[:40])
