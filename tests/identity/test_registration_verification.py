"""Registration proves the address before anything exists, and provisioning (SCIM, single
sign-on) never inherits a password or a token from someone who registered an address they
did not prove (decision 0001)."""

from __future__ import annotations

import logging
from datetime import timedelta

import anyio
import pytest
from sqlalchemy import select, update
from sqlmodel import col

from kit.timeutil import utcnow
from services.identity.models import Account, Registration
from tests.helpers import PASSWORD, auth, login, register, verify
from tests.identity.test_scim import SCIM, scim_token, user
from tests.identity.test_tokens import _id_token, _provider
from tests.mailbox import Mailbox, logged_mail
from tests.processes import free_ports
from tests.suite import build_suite

TOKEN = "/api/v1/auth/token"
ATTACKER_PASSWORD = "the attacker's own password"
EXCHANGE = {
    "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
    "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
}
SSO = {
    "oidc_issuer": "https://sso.agency.example",
    "oidc_jwks_url": "http://sso/jwks",
    "oidc_audience": "govsocial",
}


def _account(email: str = "ada@agency.example", password: str = PASSWORD, handle: str = "ada") -> dict:
    return {"email": email, "password": password, "handle": handle, "display_name": handle.title()}


async def _register_unconfirmed(suite, email: str, password: str = PASSWORD, handle: str = "ada") -> str:
    """Registers without confirming; returns the token that was mailed (to the log)."""
    mail = logged_mail()
    mail.take(handle)
    resp = await suite.client.post("/api/v1/accounts", json=_account(email, password, handle))
    assert resp.status_code == 202, resp.text
    token = mail.take(handle)
    assert token is not None
    return token


async def _sign_in(suite, email: str, password: str):
    return await suite.client.post(
        TOKEN, data={"grant_type": "password", "username": email, "password": password}
    )


async def _account_row(suite, email: str) -> Account | None:
    async with suite.identity.state.database.sessionmaker() as session:
        return await session.scalar(select(Account).where(col(Account.email) == email))


async def _forget_the_proof(suite, email: str) -> None:
    """As for an account registered before addresses were verified."""
    async with suite.identity.state.database.sessionmaker() as session:
        await session.execute(
            update(Account).where(col(Account.email) == email).values(email_verified_at=None)
        )
        await session.commit()


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def identity_log():
    """What identity logs (the suite's processes take over the root logger, so not caplog)."""
    handler = _Records()
    logger = logging.getLogger("services.identity")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def _problem(resp) -> dict:
    return {k: v for k, v in resp.json().items() if k != "trace_id"}


@pytest.fixture
def mailbox():
    with Mailbox(free_ports(1)[0]) as box:
        yield box


async def test_the_token_arrives_by_smtp_and_confirms_the_registration(database_urls, mailbox, identity_log):
    async with build_suite(
        database_urls, identity=mailbox.settings() | {"mail_from": "Intranet <noreply@agency.example>"}
    ) as suite:
        resp = await suite.client.post("/api/v1/accounts", json=_account())
        assert resp.status_code == 202
        [message] = mailbox.messages_to("ada@agency.example")
        assert message["From"] == "Intranet <noreply@agency.example>"
        assert message["Subject"] == "Confirm your address"
        token = mailbox.token_for("ada@agency.example")
        assert token not in identity_log.text  # sent, so not logged
        assert (await _sign_in(suite, "ada@agency.example", PASSWORD)).status_code == 400
        confirmed = await verify(suite.client, token)
        tokens = await login(suite.client, "ada@agency.example")
        assert tokens["persona_id"] == confirmed["persona_id"]
        assert (await _account_row(suite, "ada@agency.example")).email_verified_at is not None


async def test_an_address_with_an_account_gets_a_notice_without_a_token(database_urls, mailbox):
    async with build_suite(database_urls, identity=mailbox.settings()) as suite:
        await suite.client.post("/api/v1/accounts", json=_account())
        await verify(suite.client, mailbox.token_for("ada@agency.example"))
        again = await suite.client.post("/api/v1/accounts", json=_account(password=ATTACKER_PASSWORD))
        assert again.status_code == 202
        notice = mailbox.messages_to("ada@agency.example")[-1]
        assert notice["Subject"] == "You already have an account"
        assert "Token:" not in notice.get_body().get_content()


async def test_an_unreachable_mail_server_still_answers_202_and_logs_neither_token_nor_password(
    database_urls, identity_log
):
    [closed] = free_ports(1)
    settings = {"smtp_host": "127.0.0.1", "smtp_port": closed, "smtp_security": "none"}
    settings |= {"smtp_username": "relay", "smtp_password": "smtp-secret-value"}
    async with build_suite(database_urls, identity=settings) as suite:
        resp = await suite.client.post("/api/v1/accounts", json=_account())
        assert resp.status_code == 202
        assert "could not be sent" in identity_log.text
        assert "Token:" not in identity_log.text
        assert "smtp-secret-value" not in identity_log.text


async def test_until_confirmed_sign_in_answers_exactly_as_a_wrong_password(suite):
    await register(suite.client, "bob")
    await _register_unconfirmed(suite, "ada@agency.example")
    pending = await _sign_in(suite, "ada@agency.example", PASSWORD)
    wrong = await _sign_in(suite, "bob@agency.example", "not bob's password at all")
    unknown = await _sign_in(suite, "nobody@agency.example", PASSWORD)
    assert pending.status_code == wrong.status_code == unknown.status_code == 400
    assert _problem(pending) == _problem(wrong) == _problem(unknown)
    assert pending.headers["content-type"] == wrong.headers["content-type"]


async def test_a_token_works_once(suite):
    token = await _register_unconfirmed(suite, "ada@agency.example")
    await verify(suite.client, token)
    again = await suite.client.post(
        "/api/v1/accounts/verification", json={"token": token, "password": PASSWORD}
    )
    assert again.status_code == 400
    assert again.headers["content-type"] == "application/problem+json"


async def test_an_expired_token_is_refused(suite):
    token = await _register_unconfirmed(suite, "ada@agency.example")
    async with suite.identity.state.database.sessionmaker() as session:
        await session.execute(update(Registration).values(expires_at=utcnow() - timedelta(seconds=1)))
        await session.commit()
    resp = await suite.client.post(
        "/api/v1/accounts/verification", json={"token": token, "password": PASSWORD}
    )
    assert resp.status_code == 400
    assert (await _sign_in(suite, "ada@agency.example", PASSWORD)).status_code == 400


async def test_the_token_is_stored_only_as_a_digest(suite):
    token = await _register_unconfirmed(suite, "ada@agency.example")
    async with suite.identity.state.database.sessionmaker() as session:
        row = await session.scalar(select(Registration))
    assert row is not None
    assert token not in {row.token_digest, row.password_hash, row.email, row.handle}
    assert len(row.token_digest) == 64


async def test_the_token_alone_confirms_nothing_without_the_password_chosen_at_registration(suite):
    """A victim who opens the mail an attacker's registration caused (or a mail scanner that
    follows its link) cannot confirm the attacker's account."""
    token = await _register_unconfirmed(suite, "ada@agency.example", ATTACKER_PASSWORD)
    resp = await suite.client.post(
        "/api/v1/accounts/verification", json={"token": token, "password": "whatever the victim types"}
    )
    assert resp.status_code == 400
    assert await _account_row(suite, "ada@agency.example") is None


async def test_an_attackers_pending_registration_does_not_stop_the_owner_registering(suite):
    await _register_unconfirmed(suite, "ada@agency.example", ATTACKER_PASSWORD, handle="ada_fake")
    await register(suite.client, "ada")
    await login(suite.client, "ada@agency.example")
    assert (await _sign_in(suite, "ada@agency.example", ATTACKER_PASSWORD)).status_code == 400


async def test_registering_again_sends_a_new_token_within_the_hourly_limit_with_the_same_answer(suite):
    mail = logged_mail()
    answers, tokens = [], []
    for _ in range(4):
        mail.take("ada")
        resp = await suite.client.post("/api/v1/accounts", json=_account())
        answers.append((resp.status_code, resp.json()))
        tokens.append(mail.take("ada"))
    assert all(answer == answers[0] for answer in answers)
    assert answers[0][0] == 202
    assert None not in tokens[:3] and len(set(tokens[:3])) == 3
    assert tokens[3] is None  # past the limit of 3 an hour: nothing more is sent
    await verify(suite.client, tokens[1])
    await login(suite.client, "ada@agency.example")


async def test_registration_reveals_neither_addresses_nor_handles(suite):
    """Decision 0001: the same 202 whether the address has an account or not, and whether the
    handle is free or not; registering reserves nothing, so a second probe learns nothing."""
    await register(suite.client, "ada")
    probes = [
        _account("ada@agency.example", handle="probe_one"),  # existing address
        _account("new@agency.example", handle="probe_two"),  # new address
        _account("x1@agency.example", handle="probe_one"),
        _account("x2@agency.example", handle="probe_two"),
        _account("x3@agency.example", handle="ada"),  # a handle in use
    ]
    answers = [await suite.client.post("/api/v1/accounts", json=body) for body in probes]
    assert {resp.status_code for resp in answers} == {202}
    assert len({resp.text for resp in answers}) == 1


async def test_a_handle_taken_meanwhile_is_409_at_confirmation_and_the_token_takes_another(suite):
    token = await _register_unconfirmed(suite, "bob@agency.example", handle="ada")
    await register(suite.client, "ada")
    resp = await suite.client.post(
        "/api/v1/accounts/verification", json={"token": token, "password": PASSWORD}
    )
    assert resp.status_code == 409
    assert resp.headers["content-type"] == "application/problem+json"
    await verify(suite.client, token, handle="bob")
    tokens = await login(suite.client, "bob@agency.example")
    profile = await suite.client.get(
        f"/api/v1/personas/{tokens['persona_id']}", headers=auth(tokens["access_token"])
    )
    assert profile.json()["handle"] == "bob"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"token": "x"},
        {"token": "", "password": PASSWORD},
        {"token": "x", "password": PASSWORD, "role": "admin"},
    ],
)
async def test_bad_confirmations_are_4xx_problems(suite, body):
    resp = await suite.client.post("/api/v1/accounts/verification", json=body)
    assert resp.status_code == 422
    assert resp.headers["content-type"] == "application/problem+json"


async def test_scim_never_inherits_an_unconfirmed_registration(suite):
    token = await scim_token(suite)
    stolen = await _register_unconfirmed(suite, "victim@agency.example", ATTACKER_PASSWORD, handle="victim")
    created = await suite.client.post(f"{SCIM}/Users", json=user("victim"), headers=auth(token))
    assert created.status_code == 201, created.text
    assert (await _sign_in(suite, "victim@agency.example", ATTACKER_PASSWORD)).status_code == 400
    late = await suite.client.post(
        "/api/v1/accounts/verification", json={"token": stolen, "password": ATTACKER_PASSWORD}
    )
    assert late.status_code == 400  # the pending registration went with provisioning
    assert (await _account_row(suite, "victim@agency.example")).password_hash.startswith("!")


async def test_scim_adopting_an_unproved_account_drops_its_password_and_tokens(suite):
    token = await scim_token(suite)
    email = await register(suite.client, "victim")
    await _forget_the_proof(suite, email)
    held = await login(suite.client, email)
    await anyio.sleep(1.1)  # tokens of the same second as a password change still pass
    created = await suite.client.post(f"{SCIM}/Users", json=user("victim"), headers=auth(token))
    assert created.status_code == 201, created.text
    assert (await _sign_in(suite, email, PASSWORD)).status_code == 400
    refresh = await suite.client.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": held["refresh_token"]}
    )
    assert refresh.status_code == 400
    assert (await suite.client.get("/api/v1/me", headers=auth(held["access_token"]))).status_code == 401


async def test_scim_adopts_a_confirmed_account_with_its_password(suite):
    token = await scim_token(suite)
    email = await register(suite.client, "ada")
    created = await suite.client.post(f"{SCIM}/Users", json=user("ada"), headers=auth(token))
    assert created.status_code == 201, created.text
    await login(suite.client, email)


async def test_single_sign_on_never_lands_in_an_unconfirmed_registration(database_urls):
    async with build_suite(database_urls, identity=SSO) as suite:
        suite.router.mount("sso", _provider())
        await _register_unconfirmed(suite, "ada@agency.example", ATTACKER_PASSWORD)
        resp = await suite.client.post(TOKEN, data=EXCHANGE | {"subject_token": _id_token()})
        assert resp.status_code == 400
        assert resp.json()["error"] == "invalid_grant"


async def test_single_sign_on_into_an_unproved_account_drops_its_password_and_tokens(database_urls):
    async with build_suite(database_urls, identity=SSO) as suite:
        suite.router.mount("sso", _provider())
        email = await register(suite.client, "ada")
        await _forget_the_proof(suite, email)
        held = await login(suite.client, email)
        await anyio.sleep(1.1)  # tokens of the same second as a password change still pass
        resp = await suite.client.post(TOKEN, data=EXCHANGE | {"subject_token": _id_token()})
        assert resp.status_code == 200, resp.text
        me = await suite.client.get("/api/v1/me", headers=auth(resp.json()["access_token"]))
        assert me.status_code == 200
        assert (await _sign_in(suite, email, PASSWORD)).status_code == 400
        refresh = await suite.client.post(
            TOKEN, data={"grant_type": "refresh_token", "refresh_token": held["refresh_token"]}
        )
        assert refresh.status_code == 400
        assert (await suite.client.get("/api/v1/me", headers=auth(held["access_token"]))).status_code == 401


async def test_single_sign_on_keeps_a_confirmed_accounts_password(database_urls):
    async with build_suite(database_urls, identity=SSO) as suite:
        suite.router.mount("sso", _provider())
        email = await register(suite.client, "ada")
        resp = await suite.client.post(TOKEN, data=EXCHANGE | {"subject_token": _id_token()})
        assert resp.status_code == 200, resp.text
        await login(suite.client, email)
