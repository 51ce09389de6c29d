"""The processing worker (decision 0036): the type decided from the bytes, what is refused,
a worker that fails mid-file (the media stays ``processing`` and is retried once its lease
ends), at most ``max_attempts``, one claim per media, and the malware-scan hook against a
stand-in speaking clamd's protocol over a real socket."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col

from kit.timeutil import utcnow
from services.media import processing, worker
from services.media.models import Media
from tests.helpers import auth
from tests.media.clamd_standin import ClamdStandIn, closed_address
from tests.media.samples import (
    CSV_TEXT,
    EICAR,
    HTML,
    SVG,
    bomb_png_bytes,
    exe_bytes,
    png_bytes,
    truncated_jpeg_bytes,
)
from tests.media.support import people, ready, status, suite_with, upload


async def row(suite: Any, media_id: str) -> Media:
    async with suite.media.state.database.sessionmaker() as session:
        media: Media | None = await session.get(Media, uuid.UUID(str(media_id)))
        assert media is not None
        return media


async def end_lease(suite: Any, media_id: str) -> None:
    """The lease runs out (as time passing would)."""
    async with suite.media.state.database.sessionmaker() as session, session.begin():
        await session.execute(
            update(Media)
            .where(col(Media.id) == uuid.UUID(str(media_id)))
            .values(lease_until=utcnow() - timedelta(seconds=1))
        )


async def incoming_keys(suite: Any) -> list[str]:
    return [k async for k in suite.media.state.storage.keys("incoming/")]


async def test_the_type_comes_from_the_bytes_not_the_name_or_the_declared_type(suite):
    ((token, _),) = await people(suite, "ann")
    disguised = await upload(suite, token, png_bytes(), "invoice.pdf", "application/pdf")
    csv = await upload(suite, token, CSV_TEXT, "cities.csv", "text/csv")

    await ready(suite, disguised["id"])
    await ready(suite, csv["id"])

    resp = await suite.client.get(f"/api/v1/media/{disguised['id']}", headers=auth(token))
    assert resp.json()["content_type"] == "image/png" and resp.json()["media_type"] == "image"
    resp = await suite.client.get(f"/api/v1/media/{csv['id']}", headers=auth(token))
    assert resp.json()["content_type"] == "text/csv" and resp.json()["media_type"] == "document"
    assert await incoming_keys(suite) == []


@pytest.mark.parametrize(
    ("data", "name", "declared", "reason"),
    [
        (HTML, "page.png", "image/png", "HTML"),
        (SVG, "logo.svg", "image/svg+xml", "SVG"),
        (exe_bytes(), "setup.pdf", "application/pdf", "not accepted"),
        (bomb_png_bytes(), "huge.png", "image/png", "too large"),
        (truncated_jpeg_bytes(), "cut.jpg", "image/jpeg", ""),
    ],
)
async def test_what_is_refused_is_rejected_with_a_reason_and_its_bytes_deleted(
    suite, data, name, declared, reason
):
    ((token, _),) = await people(suite, "bo")
    media = await upload(suite, token, data, name, declared)

    await ready(suite, media["id"], expect="rejected")

    resp = await suite.client.get(f"/api/v1/media/{media['id']}", headers=auth(token))
    body = resp.json()
    assert body["status"] == "rejected" and reason in body["reason"] and body["reason"]
    assert body["url"] is None
    assert (
        await suite.client.get(f"/api/v1/media/{media['id']}/file", headers=auth(token))
    ).status_code == 404
    assert await incoming_keys(suite) == []


async def test_a_worker_that_fails_mid_file_leaves_the_media_to_be_retried(suite, monkeypatch):
    ((token, _),) = await people(suite, "cy")
    media = await upload(suite, token, png_bytes(), "once.png", "image/png")
    real = processing.process
    calls = []

    def crashes_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError("the worker fell over")
        return real(*args, **kwargs)

    monkeypatch.setattr(processing, "process", crashes_once)

    assert await worker.process_once(suite.media) == 1
    first = await row(suite, media["id"])
    assert (
        first.status == "processing"
        and first.attempts == 1
        and first.lease_until is not None
        and first.lease_until > utcnow()
    )
    assert await worker.process_once(suite.media) == 0  # leased: nobody takes it meanwhile
    assert await incoming_keys(suite) == [f"incoming/{media['id']}"]  # the bytes wait for the retry

    await end_lease(suite, media["id"])
    assert await worker.process_once(suite.media) == 1

    done = await row(suite, media["id"])
    assert done.status == "ready" and done.attempts == 2 and done.lease_until is None
    assert len(calls) == 2 and await incoming_keys(suite) == []


async def test_after_its_attempts_a_media_is_rejected(database_urls, monkeypatch):
    async with suite_with(database_urls, max_attempts=2) as suite:
        ((token, _),) = await people(suite, "di")
        media = await upload(suite, token, png_bytes(), "never.png", "image/png")

        def always_crashes(*args, **kwargs):
            raise RuntimeError("no")

        monkeypatch.setattr(processing, "process", always_crashes)
        for _ in range(2):
            assert await worker.process_once(suite.media) == 1
            assert await status(suite, media["id"]) == "processing"
            await end_lease(suite, media["id"])
        assert await worker.process_once(suite.media) == 1

        gave_up = await row(suite, media["id"])
        assert gave_up.status == "rejected" and gave_up.reason == worker.GAVE_UP
        assert await incoming_keys(suite) == []


async def test_one_media_is_claimed_by_one_worker(suite):
    ((token, _),) = await people(suite, "ed")
    media = await upload(suite, token, png_bytes(), "one.png", "image/png")
    database, settings = suite.media.state.database, suite.media.state.settings

    jobs = await asyncio.gather(*(worker.claim(database, settings) for _ in range(4)))

    taken = [job for job in jobs if job is not None]
    assert len(taken) == 1 and str(taken[0].id) == media["id"] and taken[0].attempts == 1


async def test_a_worker_overtaken_after_its_lease_gives_up(suite):
    ((token, _),) = await people(suite, "fi")
    media = await upload(suite, token, png_bytes(), "slow.png", "image/png")
    database, storage, settings = (
        suite.media.state.database,
        suite.media.state.storage,
        suite.media.state.settings,
    )
    slow = await worker.claim(database, settings)
    await end_lease(suite, media["id"])
    fast = await worker.claim(database, settings)
    assert slow is not None and fast is not None and fast.attempts == 2

    await worker.run_job(database, storage, settings, fast)
    await worker.run_job(database, storage, settings, slow)  # finds the media no longer its own

    done = await row(suite, media["id"])
    assert done.status == "ready" and done.attempts == 2


async def test_a_media_deleted_while_it_is_processed_stays_deleted(suite):
    ((token, _),) = await people(suite, "gi")
    media = await upload(suite, token, png_bytes(), "gone.png", "image/png")
    database, storage, settings = (
        suite.media.state.database,
        suite.media.state.storage,
        suite.media.state.settings,
    )
    job = await worker.claim(database, settings)
    assert job is not None
    assert (await suite.client.delete(f"/api/v1/media/{media['id']}", headers=auth(token))).status_code == 204

    await worker.run_job(database, storage, settings, job)

    assert await status(suite, media["id"]) is None


async def test_with_clamd_an_infected_file_is_rejected_and_its_bytes_deleted(database_urls):
    async with ClamdStandIn() as clamd, suite_with(database_urls, clamd_address=clamd.address) as suite:
        ((token, _),) = await people(suite, "hu")
        clean = await upload(suite, token, png_bytes(), "clean.png", "image/png")
        infected = await upload(suite, token, b"notes\n" + EICAR + b"\n", "notes.txt", "text/plain")

        await ready(suite, clean["id"])
        await ready(suite, infected["id"], expect="rejected")

        rejected = await row(suite, infected["id"])
        assert rejected.reason == "Malware found (Eicar-Test-Signature)."
        assert rejected.file_key is None and await incoming_keys(suite) == []
        assert len(clamd.scanned) == 2 and any(EICAR in data for data in clamd.scanned)


async def test_with_clamd_down_a_file_waits_and_is_scanned_once_it_is_back(database_urls):
    address = closed_address()
    async with suite_with(database_urls, clamd_address=address, max_attempts=1) as suite:
        ((token, _),) = await people(suite, "iv")
        media = await upload(suite, token, png_bytes(), "later.png", "image/png")

        for _ in range(3):  # an outage does not use up the attempts
            assert await worker.process_once(suite.media) == 1
            waiting = await row(suite, media["id"])
            assert waiting.status == "processing" and waiting.attempts == 0
            assert waiting.lease_until is not None and waiting.lease_until > utcnow()
            assert await worker.process_once(suite.media) == 0
            await end_lease(suite, media["id"])

        host, port = address.rsplit(":", 1)
        async with ClamdStandIn(host=host, port=int(port)) as clamd:
            assert await worker.process_once(suite.media) == 1
        assert await status(suite, media["id"]) == "ready"
        assert len(clamd.scanned) == 1


async def test_without_clamd_nothing_is_scanned(suite):
    ((token, _),) = await people(suite, "jo")
    assert suite.media.state.settings.clamd_address == ""
    media = await upload(suite, token, b"notes\n" + EICAR + b"\n", "notes.txt", "text/plain")
    await ready(suite, media["id"])  # documented: without clamd, files are not scanned
