"""What a token may claim about time and about its persona: no issue time in the future, no
lifetime beyond the maximum, and in feed and groups a persona their replica knows, of the
token's context, still active (identity checks its own tables the same way)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from kit.settings import BaseProcessSettings
from services.identity.settings import IdentitySettings
from tests.helpers import auth, person, with_personal
from tests.suite import build_suite
from tests.tokens import claims, sign

PROTECTED = {
    "gateway": ("gateway", "/api/v1/timelines/home"),
    "feed": ("feed", "/api/v1/timelines/home"),
    "groups": ("groups", "/api/v1/groups"),
    "identity": ("identity", "/api/v1/personas"),
}
PERSONA_CHECKED = {
    "feed (through the gateway)": ("gateway", "/api/v1/timelines/home"),
    "feed": ("feed", "/api/v1/timelines/home"),
    "groups": ("groups", "/api/v1/groups"),
    "identity": ("identity", "/api/v1/personas"),
}


@pytest.fixture
async def suite(database_urls):
    """Feed and groups refuse an unknown persona at once instead of waiting for its event."""
    no_wait = {"unknown_persona_wait_seconds": 0}
    async with build_suite(database_urls, feed=no_wait, groups=no_wait) as built:
        yield built


@pytest.fixture
async def waiting_suite(database_urls):
    async with build_suite(database_urls, feed={"unknown_persona_wait_seconds": 5}) as built:
        yield built


def _get(suite, where: tuple[str, str]):
    host, path = where

    async def get(token: str):
        return await suite.client.get(f"http://{host}{path}", headers=auth(token))

    return get


def _assert_401(resp, detail: str | None = None):
    assert resp.status_code == 401, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.headers["www-authenticate"].startswith("Bearer")
    if detail is not None:
        assert detail in resp.json()["detail"], resp.json()["detail"]


@pytest.fixture(params=sorted(PROTECTED))
def anywhere(request, suite):
    return _get(suite, PROTECTED[request.param])


@pytest.fixture(params=sorted(PERSONA_CHECKED))
def replica_holder(request, suite):
    return _get(suite, PERSONA_CHECKED[request.param])


async def _known(suite, handle: str = "ada") -> str:
    _, persona_id = await person(suite.client, handle)
    await suite.deliver()
    return persona_id


async def test_token_issued_in_the_future_is_401(suite, anywhere):
    persona_id = await _known(suite)
    now = int(time.time())
    future = sign(suite.keys.active, claims(persona_id, iat=now + 3600, exp=now + 3900))
    _assert_401(await anywhere(future), "issued in the future")
    beyond_leeway = sign(suite.keys.active, claims(persona_id, iat=now + 40, exp=now + 340))
    _assert_401(await anywhere(beyond_leeway), "issued in the future")


async def test_token_issued_within_the_leeway_ahead_is_accepted(suite, anywhere):
    persona_id = await _known(suite)
    now = int(time.time())
    skewed = sign(suite.keys.active, claims(persona_id, iat=now + 20, exp=now + 320))
    assert (await anywhere(skewed)).status_code == 200


async def test_token_living_longer_than_the_maximum_is_401(suite, anywhere):
    persona_id = await _known(suite)
    now = int(time.time())
    for lifetime in (3601, 86400, 10 * 365 * 86400):
        long_lived = sign(suite.keys.active, claims(persona_id, iat=now, exp=now + lifetime))
        _assert_401(await anywhere(long_lived), "lives longer")
    longest = sign(suite.keys.active, claims(persona_id, iat=now, exp=now + 3600))
    assert (await anywhere(longest)).status_code == 200


async def test_token_for_a_persona_nobody_knows_is_401(suite, replica_holder):
    stranger = sign(suite.keys.active, claims(str(uuid.uuid4())))
    _assert_401(await replica_holder(stranger))


async def test_token_whose_context_is_not_its_personas_is_401(suite, replica_holder):
    """A ``ctx`` that identity's published key signed but that is not the persona's kind."""
    people = await with_personal(suite.client, "ada")
    await suite.deliver()
    assert (await replica_holder(people["pro"])).status_code == 200  # cached as known and active
    assert (await replica_holder(people["personal"])).status_code == 200
    as_personal = sign(suite.keys.active, claims(people["pro_id"], ctx="personal"))
    as_professional = sign(suite.keys.active, claims(people["personal_id"], ctx="professional"))
    _assert_401(await replica_holder(as_personal))
    _assert_401(await replica_holder(as_professional))


@pytest.mark.parametrize("host", ["feed", "groups"])
async def test_new_persona_is_refused_until_its_creation_event_arrives(suite, host):
    _, path = PROTECTED[host]
    token, _ = await person(suite.client, "ada")
    early = await suite.client.get(f"http://{host}{path}", headers=auth(token))
    _assert_401(early, "does not know the token's persona")
    assert early.headers["retry-after"] == "1"
    await suite.deliver()
    assert (await suite.client.get(f"http://{host}{path}", headers=auth(token))).status_code == 200


async def test_token_used_just_before_its_persona_arrives_waits_for_it(waiting_suite):
    suite = waiting_suite
    token, _ = await person(suite.client, "ada")

    async def deliver_soon():
        await asyncio.sleep(0.3)
        await suite.deliver()

    started = time.monotonic()
    answer, _ = await asyncio.gather(
        suite.client.get("http://feed/api/v1/timelines/home", headers=auth(token)), deliver_soon()
    )
    assert answer.status_code == 200, answer.text
    assert time.monotonic() - started < 3


def test_maximum_lifetime_is_a_setting_identity_stays_within():
    assert BaseProcessSettings().token_max_lifetime_seconds == 3600
    IdentitySettings(internal_token="t", access_token_seconds=3600)
    with pytest.raises(ValueError, match="token_max_lifetime_seconds"):
        IdentitySettings(internal_token="t", access_token_seconds=900, token_max_lifetime_seconds=600)
