"""kit.idempotency on a table of its own: one call replays, stores in the create's transaction,
refuses a key reused for another request, and replays the winner of a race."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from fastapi import Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Integer, String, Text, Uuid, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kit.db import Database, UTCDateTime
from kit.errors import APIError, Conflict, Unprocessable
from kit.idempotency import Created, IdempotencyKeys, Taken, fingerprint
from kit.timeutil import utcnow


class Base(DeclarativeBase):
    pass


class Answer(Base):
    """A key table whose owner column has a name of its own, with a column of its own."""

    __tablename__ = "kit_test_answer"
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    thing_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Thing(Base):
    __tablename__ = "kit_test_thing"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)


class ThingIn(BaseModel):
    name: str


class ThingOut(BaseModel):
    id: uuid.UUID
    name: str


KEYS = IdempotencyKeys(Answer, owner_column="owner_id")
ADA, BOB = uuid.uuid4(), uuid.uuid4()


@pytest.fixture
async def database(database_urls: dict[str, str]) -> AsyncIterator[Database]:
    database = Database(database_urls["feed"])
    async with database.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    try:
        yield database
    finally:
        async with database.engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)
        await database.dispose()


def make_thing(session, name: str, made: list[str]):
    """The create: a thing named ``name``, its answer, and its id for the key's own column."""

    async def make() -> Created[ThingOut]:
        thing = Thing(id=uuid.uuid4(), name=name)
        session.add(thing)
        made.append(name)
        out = ThingOut(id=thing.id, name=name)
        return Created(out, f"/things/{thing.id}", columns={"thing_id": thing.id})

    return make


async def create(database, owner, key, name, made, **options):
    response = Response()
    async with database.sessionmaker() as session:
        answer = await KEYS.create(
            session,
            response,
            owner=owner,
            key=key,
            scope="things",
            request=ThingIn(name=name),
            make=make_thing(session, name, made),
            **options,
        )
    return answer, response


async def count(database, table) -> int:
    async with database.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def test_first_answer_is_the_model_with_its_location(database):
    made: list[str] = []
    answer, response = await create(database, ADA, None, "a", made)
    assert isinstance(answer, ThingOut) and answer.name == "a"
    assert response.status_code == 201
    assert response.headers["Location"] == f"/things/{answer.id}"
    assert made == ["a"] and await count(database, Answer) == 0  # no key, nothing stored


async def test_a_repeat_replays_the_first_answer_without_creating_again(database):
    made: list[str] = []
    first, response = await create(database, ADA, "k-1", "a", made)
    again, _ = await create(database, ADA, "k-1", "a", made)
    assert made == ["a"] and await count(database, Thing) == 1
    assert isinstance(again, JSONResponse) and again.status_code == 201
    assert json.loads(again.body) == first.model_dump(mode="json")
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == response.headers["Location"]
    async with database.sessionmaker() as session:
        stored = await session.get(Answer, (ADA, "k-1"))
    assert stored is not None and stored.thing_id == first.id
    assert stored.fingerprint == fingerprint("things", ThingIn(name="a"))


async def test_the_same_key_of_another_owner_creates(database):
    made: list[str] = []
    await create(database, ADA, "k-1", "a", made)
    answer, _ = await create(database, BOB, "k-1", "b", made)
    assert isinstance(answer, ThingOut) and made == ["a", "b"]


async def test_the_same_key_with_another_request_is_a_mismatch(database):
    made: list[str] = []
    await create(database, ADA, "k-1", "a", made)
    with pytest.raises(Unprocessable) as caught:
        await create(database, ADA, "k-1", "other", made)
    assert caught.value.slug == "idempotency-mismatch"
    assert made == ["a"]


async def test_an_answer_stored_in_the_table_format_replays(database):
    """Rows written before stay replayable: the stored JSON is ``{"body", "location"}``."""
    async with database.sessionmaker() as session:
        session.add(
            Answer(
                owner_id=ADA,
                key="old",
                fingerprint=fingerprint("things", ThingIn(name="a")),
                status_code=201,
                response=json.dumps({"body": {"id": str(ADA), "name": "a"}, "location": "/things/x"}),
            )
        )
        await session.commit()
    made: list[str] = []
    answer, _ = await create(database, ADA, "old", "a", made)
    assert isinstance(answer, JSONResponse) and made == []
    assert json.loads(answer.body) == {"id": str(ADA), "name": "a"}
    assert answer.headers["Location"] == "/things/x"


async def test_the_loser_of_a_race_replays_the_winner(database):
    """While the loser creates, a repeat with the same key commits first: the loser's commit
    fails on the key's primary key, its work is rolled back, and it answers the winner's."""
    made: list[str] = []
    winner: list[ThingOut] = []
    response = Response()
    async with database.sessionmaker() as session:
        make_loser = make_thing(session, "race", made)

        async def make() -> Created[ThingOut]:
            first, _ = await create(database, ADA, "race", "race", made)
            winner.append(first)
            return await make_loser()

        answer = await KEYS.create(
            session, response, owner=ADA, key="race", scope="things", request=ThingIn(name="race"), make=make
        )
    assert isinstance(answer, JSONResponse) and answer.headers["Idempotent-Replayed"] == "true"
    assert json.loads(answer.body) == winner[0].model_dump(mode="json")
    assert "location" not in response.headers
    assert await count(database, Thing) == 1


async def test_a_lost_race_with_nothing_stored_is_a_409(database):
    """Another request took the name but stored no answer for this key."""
    await create(database, ADA, None, "taken", [])
    with pytest.raises(Conflict) as caught:
        await create(database, ADA, "k-1", "taken", [])
    assert "still in progress" in caught.value.detail


async def test_taken_answers_the_stored_repeat_or_the_given_error(database):
    class NameTaken(APIError):
        status = 409

    winner: list[ThingOut] = []

    async def taken() -> Created[ThingOut]:
        raise Taken

    async def taken_after_a_repeat_won() -> Created[ThingOut]:
        first, _ = await create(database, ADA, "k-2", "a", [])
        winner.append(first)
        raise Taken

    async def create_taken(key: str | None, make) -> object:
        async with database.sessionmaker() as session:
            return await KEYS.create(
                session,
                Response(),
                owner=ADA,
                key=key,
                scope="things",
                request=ThingIn(name="a"),
                make=make,
                taken=NameTaken("That name is taken."),
            )

    with pytest.raises(NameTaken):
        await create_taken(None, taken)
    with pytest.raises(NameTaken):
        await create_taken("k-1", taken)
    replayed = await create_taken("k-2", taken_after_a_repeat_won)
    assert isinstance(replayed, JSONResponse) and replayed.headers["Idempotent-Replayed"] == "true"
    assert json.loads(replayed.body) == winner[0].model_dump(mode="json")
