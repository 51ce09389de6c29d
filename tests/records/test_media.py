"""Media in the records copy (decision 0036): media's ``internal.records.media`` events kept with
every version, a media's class following its post, holds covering the media of what they hold,
disposition taking a post's or a comment's media with it and telling media, and exports
carrying each media's metadata and bytes, fetched from the real media service of the suite.

The copy's tests send media's events straight to records' event receiver, as the other records
tests do; the export tests upload through the gateway and attach with media's internal call,
then let the suite's relays carry media's events to records."""

from __future__ import annotations

import hashlib
import io
import json
import re
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlmodel import col

from kit.ids import new_id
from services.records import exports
from services.records.models import Item, ItemVersion, MediaRecord, MediaVersion, outbox_tables
from tests.helpers import auth
from tests.media.samples import pdf_bytes
from tests.media.support import attach, internal_auth, media_client, people, status, upload_ready
from tests.records.support import (
    MATTERS,
    account_of,
    comment_data,
    dispose,
    hold,
    matter,
    officer,
    post_data,
    published,
    put_policies,
    record_post,
    release,
    rows,
    run_disposition,
    send,
)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
EVENT = "internal.records.media"


def ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def media_data(
    owner_id: uuid.UUID,
    uploader: uuid.UUID,
    at: datetime,
    *,
    owner_kind: str = "post",
    post_id: uuid.UUID | None = None,
    group_id: uuid.UUID | None = None,
    context: str = "professional",
    description: str | None = "A picture",
    attached_at: datetime | None = None,
    withdrawn_at: datetime | None = None,
    filename: str = "picture.png",
    content_type: str = "image/png",
    **extra: Any,
) -> dict[str, Any]:
    """``internal.records.media`` as media publishes it."""
    return {
        "owner_kind": owner_kind,
        "owner_id": str(owner_id),
        "post_id": str(post_id or owner_id) if owner_kind in ("post", "comment") else None,
        "group_id": str(group_id) if group_id else None,
        "uploader_id": str(uploader),
        "context": context,
        "media_type": "image" if content_type.startswith("image/") else "document",
        "content_type": content_type,
        "filename": filename,
        "description": description,
        "size": 1234,
        "sha256": hashlib.sha256(filename.encode()).hexdigest(),
        "attached_at": (attached_at or at).isoformat(),
        "withdrawn_at": withdrawn_at.isoformat() if withdrawn_at else None,
        "at": at.isoformat(),
        **extra,
    }


async def send_media(suite: Any, media_id: uuid.UUID, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return await send(suite, EVENT, str(media_id), data, source="media", **kwargs)


async def media_on(
    suite: Any, owner_id: uuid.UUID, uploader: uuid.UUID, at: datetime, **fields: Any
) -> uuid.UUID:
    """A media attached to ``owner_id`` at ``at``, as media tells records."""
    media_id = uuid.uuid4()
    await send_media(suite, media_id, media_data(owner_id, uploader, at, **fields))
    return media_id


async def comment_on(
    suite: Any, post_id: uuid.UUID, author: uuid.UUID, at: datetime, **fields: Any
) -> uuid.UUID:
    comment_id = uuid.uuid4()
    data = comment_data(comment_id, post_id, author, "created", at, body="A comment on it", **fields)
    await send(suite, "internal.records.comment", str(comment_id), data)
    return comment_id


async def record(suite: Any, media_id: uuid.UUID) -> MediaRecord | None:
    found = await rows(suite, MediaRecord, id=media_id)
    return found[0] if found else None


async def klass_of(suite: Any, media_id: uuid.UUID) -> str:
    kept = await record(suite, media_id)
    assert kept is not None
    return kept.klass


async def versions(suite: Any, media_id: uuid.UUID) -> list[MediaVersion]:
    return sorted(await rows(suite, MediaVersion, media_id=media_id), key=lambda v: v.version)


async def media_ids(suite: Any) -> set[uuid.UUID]:
    return {m.id for m in await rows(suite, MediaRecord)}


async def disposed_media(suite: Any) -> list[list[str]]:
    """The ``ids`` of each ``{"kind": "media"}`` disposal records published, in order."""
    return [
        data["ids"]
        for _, _, data in await published(suite, "internal.records.dispose")
        if data.get("kind") == "media"
    ]


def digest(*ids: Any) -> str:
    return hashlib.sha256("\n".join(sorted(str(i) for i in ids)).encode()).hexdigest()


# --- the copy -------------------------------------------------------------------------------


async def test_a_media_keeps_every_state_it_had(suite):
    post_id, author, media_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    states: list[tuple[datetime, dict[str, Any]]] = [
        (T0, {"description": "The site plan"}),
        (T0 + timedelta(hours=1), {"description": "The site plan, phase 2"}),
        (
            T0 + timedelta(hours=2),
            {"description": "The site plan, phase 2", "withdrawn_at": T0 + timedelta(hours=2)},
        ),
        (T0 + timedelta(hours=3), {"description": "The site plan, phase 2"}),
    ]
    for at, fields in states:
        await send_media(suite, media_id, media_data(post_id, author, at, attached_at=T0, **fields))

    found = await versions(suite, media_id)
    assert [v.version for v in found] == [1, 2, 3, 4]
    assert [v.change for v in found] == ["attached", "edited", "withdrawn", "restored"]
    assert [v.description for v in found] == ["The site plan", *["The site plan, phase 2"] * 3]
    assert [v.withdrawn_at for v in found] == [None, None, T0 + timedelta(hours=2), None]
    kept = await record(suite, media_id)
    assert kept is not None
    assert kept.owner_kind == "post" and kept.owner_id == post_id and kept.post_id == post_id
    assert kept.comment_id is None and kept.author_id == author and kept.created_at == T0
    assert kept.description == "The site plan, phase 2" and kept.withdrawn_at is None
    assert kept.filename == "picture.png" and kept.content_type == "image/png" and kept.size == 1234
    assert kept.versions == 4 and kept.changed_at == T0 + timedelta(hours=3)

    # the same change again (another event id, the same media time) adds nothing
    answer = await send_media(suite, media_id, media_data(post_id, author, T0 + timedelta(hours=1)))
    assert answer == {"received": 1, "applied": 1}
    assert len(await versions(suite, media_id)) == 4
    # a late event (older than the latest change) adds its version and leaves the state alone
    late = T0 + timedelta(minutes=30)
    await send_media(suite, media_id, media_data(post_id, author, late, description="A draft title"))
    found = await versions(suite, media_id)
    assert [v.version for v in found][-1] == 5 and found[-1].description == "A draft title"
    kept = await record(suite, media_id)
    assert kept is not None and kept.description == "The site plan, phase 2"
    assert kept.changed_at == T0 + timedelta(hours=3)
    # media's own change, when it names it, is taken as it is
    await send_media(
        suite,
        media_id,
        media_data(post_id, author, T0 + timedelta(hours=4), change="edited", description="X"),
    )
    assert (await versions(suite, media_id))[-1].change == "edited"


async def test_a_media_released_and_attached_elsewhere_follows_its_new_owner(suite):
    """An owner whose own write failed releases the file (media tells records it is withdrawn);
    its uploader then attaches it to another post."""
    author, media_id = uuid.uuid4(), uuid.uuid4()
    failed, posted = uuid.uuid4(), await record_post(suite, author, T0, audience="followers")
    await send_media(suite, media_id, media_data(failed, author, T0))
    later = T0 + timedelta(minutes=1)
    await send_media(suite, media_id, media_data(failed, author, later, attached_at=T0, withdrawn_at=later))
    again = T0 + timedelta(minutes=5)
    await send_media(suite, media_id, media_data(posted, author, again))

    found = await versions(suite, media_id)
    assert [(v.change, v.owner_id) for v in found] == [
        ("attached", failed),
        ("withdrawn", failed),
        ("attached", posted),
    ]
    kept = await record(suite, media_id)
    assert kept is not None and kept.owner_id == kept.post_id == posted and kept.withdrawn_at is None
    assert kept.created_at == again and kept.klass == "followers_posts"


async def test_a_media_takes_its_posts_class(suite):
    author, group_id = uuid.uuid4(), uuid.uuid4()
    post_id = uuid.uuid4()
    # media's event comes first (media attached the file before feed wrote the post)
    early = await media_on(suite, post_id, author, T0)
    assert await klass_of(suite, early) == "organisation_posts"
    comment_id = uuid.uuid4()
    on_comment = await media_on(suite, comment_id, author, T0, owner_kind="comment", post_id=post_id)
    await send(
        suite,
        "internal.records.post",
        str(post_id),
        post_data(post_id, author, "created", T0, body="For my followers", audience="followers"),
    )
    for media_id in (early, on_comment):
        assert await klass_of(suite, media_id) == "followers_posts"
    kept = await record(suite, on_comment)
    assert kept is not None and kept.comment_id == comment_id and kept.post_id == post_id

    # the post known first: its class at once; a group's post and a personal one
    in_group = await record_post(suite, author, T0, group_id=group_id)
    assert (
        await klass_of(suite, await media_on(suite, in_group, author, T0, group_id=group_id)) == "group_posts"
    )
    personal = await record_post(suite, author, T0, context="personal", audience="followers")
    assert await klass_of(suite, await media_on(suite, personal, author, T0, context="personal")) == (
        "personal_content"
    )

    # avatars and group images are not records; a comment's media without its post is refused
    avatar = uuid.uuid4()
    await send_media(suite, avatar, media_data(author, author, T0, owner_kind="avatar"))
    assert await record(suite, avatar) is None
    broken = media_data(comment_id, author, T0, owner_kind="comment")
    broken["post_id"] = None
    await send_media(suite, uuid.uuid4(), broken)
    async with suite.records.state.database.sessionmaker() as session:
        dead = (await session.execute(select(outbox_tables.dead_letter.c.type))).scalars().all()
    assert dead == [EVENT]


# --- disposition ----------------------------------------------------------------------------


async def test_a_disposed_post_takes_its_media_and_tells_media(suite):
    token, _ = await officer(suite)
    author, reader = uuid.uuid4(), uuid.uuid4()
    old = await record_post(suite, author, ago(3))
    old_media = [await media_on(suite, old, author, ago(3)) for _ in range(2)]
    old_comment = await comment_on(suite, old, reader, ago(2))
    comment_media = await media_on(suite, old_comment, reader, ago(2), owner_kind="comment", post_id=old)
    fresh = await record_post(suite, author, ago(0.5))
    fresh_media = await media_on(suite, fresh, author, ago(0.5))
    assert (await put_policies(suite, token, dispose("organisation_posts", 1))).status_code == 200

    certificate = await run_disposition(suite, token)
    assert await media_ids(suite) == {fresh_media}
    assert {v.media_id for v in await rows(suite, MediaVersion)} == {fresh_media}
    gone = sorted(str(m) for m in (*old_media, comment_media))
    assert await disposed_media(suite) == [gone]
    (event,) = [e for e in await published(suite, "internal.records.dispose") if e[2].get("kind") == "media"]
    assert event[1] == certificate["id"]  # the subject is the run, as for the other kinds
    assert certificate["counts"] == {"organisation_posts": 1, "comments": 1, "media": 3}
    assert certificate["digest"] == digest(old, old_comment, *old_media, comment_media)


async def test_a_disposed_comment_takes_its_own_media_only(suite):
    token, _ = await officer(suite)
    author, reader = uuid.uuid4(), uuid.uuid4()
    post = await record_post(suite, author, ago(10))
    post_media = await media_on(suite, post, author, ago(10))
    old_comment = await comment_on(suite, post, reader, ago(5))
    old_media = await media_on(suite, old_comment, reader, ago(5), owner_kind="comment", post_id=post)
    new_comment = await comment_on(suite, post, reader, ago(0.1))
    new_media = await media_on(suite, new_comment, reader, ago(0.1), owner_kind="comment", post_id=post)
    assert (await put_policies(suite, token, dispose("comments", 2))).status_code == 200

    certificate = await run_disposition(suite, token)
    assert await media_ids(suite) == {post_media, new_media}
    assert await disposed_media(suite) == [[str(old_media)]]
    assert certificate["counts"] == {"comments": 1, "media": 1}


async def test_held_media_survive_disposition(suite):
    token, _ = await officer(suite)
    (_, held_id), (_, free_id) = await people(suite, "held", "free")
    held, free = uuid.UUID(held_id), uuid.UUID(free_id)
    case = await matter(suite, token)
    custodian = await hold(suite, token, case["id"], custodians=[await account_of(suite, held_id)])
    other_case = await matter(suite, token)
    terms = await hold(
        suite, token, other_case["id"], custodians=[await account_of(suite, free_id)], terms=["Tower crane"]
    )

    held_post = await record_post(suite, held, ago(30))
    held_media = await media_on(suite, held_post, held, ago(30))
    free_post = await record_post(suite, free, ago(30))
    free_media = await media_on(suite, free_post, free, ago(30))
    # the custodian's comment, and its media, on someone else's post keep that post
    other_post = await record_post(suite, free, ago(30))
    other_media = await media_on(suite, other_post, free, ago(30))
    held_comment = await comment_on(suite, other_post, held, ago(29))
    comment_media = await media_on(
        suite, held_comment, held, ago(29), owner_kind="comment", post_id=other_post
    )
    # a description naming a held term keeps the file and what it hangs from, whatever the text
    described = await record_post(suite, free, ago(30), body="Nothing to see here")
    described_media = await media_on(
        suite, described, free, ago(30), description="The tower crane, north side"
    )
    changed = await put_policies(suite, token, dispose("organisation_posts", 1), acknowledge=True)
    assert changed.status_code == 200, changed.text

    certificate = await run_disposition(suite, token)
    assert await media_ids(suite) == {held_media, other_media, comment_media, described_media}
    assert await disposed_media(suite) == [[str(free_media)]]
    assert certificate["counts"] == {"organisation_posts": 1, "media": 1}
    assert {i.id for i in await rows(suite, Item, kind="post")} == {held_post, other_post, described}

    # once released, the next run disposes of them
    assert (await release(suite, token, case["id"], custodian["id"])).status_code == 200
    assert (await release(suite, token, other_case["id"], terms["id"])).status_code == 200
    again = await run_disposition(suite, token)
    assert await media_ids(suite) == set()
    events = await disposed_media(suite)
    assert events[0] == [str(free_media)]
    assert sorted(i for ids in events[1:] for i in ids) == sorted(
        str(m) for m in (held_media, other_media, comment_media, described_media)
    )
    assert again["counts"] == {"organisation_posts": 3, "comments": 1, "media": 4}


async def test_media_whose_owner_is_not_in_the_copy_go_under_their_class(suite):
    token, _ = await officer(suite)
    ((_, held_id),) = await people(suite, "keeper")
    author = uuid.uuid4()
    # a media whose post never reached the copy (or was disposed of before its event came)
    orphan = await media_on(suite, uuid.uuid4(), author, ago(3))
    fresh = await media_on(suite, uuid.uuid4(), author, ago(0.5))
    followers = await media_on(suite, uuid.uuid4(), author, ago(3))
    async with suite.records.state.database.sessionmaker() as session:
        await session.execute(
            update(MediaRecord).where(col(MediaRecord.id) == followers).values(klass="followers_posts")
        )
        await session.commit()
    case = await matter(suite, token)
    await hold(suite, token, case["id"], custodians=[await account_of(suite, held_id)])
    kept = await media_on(suite, uuid.uuid4(), uuid.UUID(held_id), ago(3))
    changed = await put_policies(suite, token, dispose("organisation_posts", 1), acknowledge=True)
    assert changed.status_code == 200, changed.text

    certificate = await run_disposition(suite, token)
    assert await media_ids(suite) == {fresh, followers, kept}
    assert await disposed_media(suite) == [[str(orphan)]]
    assert certificate["counts"] == {"media": 1}


async def test_a_disposal_event_names_at_most_1000_media(suite):
    token, _ = await officer(suite)
    author, created = uuid.uuid4(), ago(5)
    posts, media = [], []
    for _ in range(300):
        post = Item(
            id=new_id(),
            kind="post",
            klass="organisation_posts",
            context="professional",
            author_id=author,
            created_at=created,
            last_activity_at=created,
            changed_at=created,
        )
        posts += [post, ItemVersion(item_id=post.id, version=1, change="created", body="x", at=created)]
        for _ in range(4):
            media.append(
                MediaRecord(
                    id=new_id(),
                    owner_kind="post",
                    owner_id=post.id,
                    post_id=post.id,
                    author_id=author,
                    context="professional",
                    klass="organisation_posts",
                    media_type="image",
                    content_type="image/png",
                    created_at=created,
                    changed_at=created,
                    versions=1,
                )
            )
    async with suite.records.state.database.sessionmaker() as session:
        session.add_all([*posts, *media])
        await session.commit()
    assert (await put_policies(suite, token, dispose("organisation_posts", 1))).status_code == 200

    certificate = await run_disposition(suite, token)
    events = await disposed_media(suite)
    assert [len(ids) for ids in events] == [1000, 200]
    assert sorted(i for ids in events for i in ids) == sorted(str(m.id) for m in media)
    assert certificate["counts"] == {"organisation_posts": 300, "media": 1200}
    assert await media_ids(suite) == set()


# --- exports, with the suite's media service ----------------------------------------------


async def ask_export(suite: Any, token: str, matter_id: str, **fields: Any) -> dict[str, Any]:
    body = {
        "date_from": ago(10).isoformat(),
        "date_to": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
        **fields,
    }
    resp = await suite.client.post(f"{MATTERS}/{matter_id}/exports", json=body, headers=auth(token))
    assert resp.status_code == 202, resp.text
    created: dict[str, Any] = resp.json()
    return created


async def produce(suite: Any, token: str, path: str, **parts: Any) -> dict[str, Any]:
    assert await exports.run_once(suite.records, **parts)
    resp = await suite.client.get(path, headers=auth(token))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    assert body["status"] == "ready", body
    return body


async def package_of(suite: Any, token: str, export: dict[str, Any]) -> zipfile.ZipFile:
    resp = await suite.client.get(export["download"]["url"], headers=auth(token))
    assert resp.status_code == 200, resp.text
    assert hashlib.sha256(resp.content).hexdigest() == export["sha256"]
    return zipfile.ZipFile(io.BytesIO(resp.content))


def jsonl(package: zipfile.ZipFile, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in package.read(name).decode().splitlines()]


async def stored_file(suite: Any, media_id: str) -> bytes:
    """The bytes media keeps for a media, as its internal route gives them to records."""
    async with media_client(suite) as client:
        resp = await client.get(f"/internal/records/media/{media_id}/file", headers=internal_auth(suite))
    assert resp.status_code == 200, resp.text
    return resp.content


async def attached_scene(suite: Any) -> dict[str, Any]:
    """Ada's post (in the copy) with a picture and a PDF attached at media; Bob's comment on it
    with a picture whose description names Carol; and a media of Ada's post that media does not
    have (its bytes cannot be fetched). Media's events reach records through the relays."""
    (ada_token, ada), (bob_token, bob), (_, carol) = await people(suite, "ada", "bob", "carol")
    carol_handle = (await suite.client.get(f"/api/v1/personas/{carol}", headers=auth(ada_token))).json()[
        "handle"
    ]
    post_id = await record_post(suite, uuid.UUID(ada), ago(1), body="The quarterly pictures")
    picture = await upload_ready(suite, ada_token, description="The new office")
    document = await upload_ready(suite, ada_token, pdf_bytes("Quarterly"), "report.pdf", "application/pdf")
    resp = await attach(suite, "post", str(post_id), ada, [picture["id"], document["id"]])
    assert resp.status_code == 200, resp.text
    comment_id = await comment_on(suite, post_id, uuid.UUID(bob), ago(0.5))
    bobs = await upload_ready(suite, bob_token, description=f"Taken by @{carol_handle}")
    resp = await attach(suite, "comment", str(comment_id), bob, [bobs["id"]], post_id=str(post_id))
    assert resp.status_code == 200, resp.text
    await suite.deliver()
    lost = await media_on(suite, post_id, uuid.UUID(ada), ago(1), filename="lost.png")
    for media_id in (picture["id"], document["id"], bobs["id"]):
        assert await record(suite, uuid.UUID(media_id)) is not None
    return {
        "ada": ada,
        "ada_token": ada_token,
        "bob": bob,
        "carol": carol,
        "post": str(post_id),
        "comment": str(comment_id),
        "picture": picture["id"],
        "document": document["id"],
        "bobs": bobs["id"],
        "lost": str(lost),
    }


async def test_an_export_holds_each_media_and_its_bytes(suite):
    token, _ = await officer(suite)
    scene = await attached_scene(suite)
    case = await matter(suite, token)
    created = await ask_export(
        suite, token, case["id"], custodians=[await account_of(suite, scene["ada"])], redact=True
    )
    export = await produce(suite, token, f"{MATTERS}/{case['id']}/exports/{created['id']}")
    assert export["media_missing"] == 1 and export["counted"] == export["total"] == 2 + 4
    package = await package_of(suite, token, export)

    names = package.namelist()
    files = {
        scene["picture"]: f"media/{scene['picture']}.png",
        scene["document"]: f"media/{scene['document']}.pdf",
        scene["bobs"]: f"media/{scene['bobs']}.png",
    }
    # the files in id order, then their lines; nothing named but by the media's id
    assert [n for n in names if n.startswith("media")] == [
        *sorted(files.values()),
        "media.jsonl",
        "media.csv",
    ]
    assert all(re.fullmatch(r"media/[0-9a-f-]{36}\.(png|pdf)", n) for n in names if n.startswith("media/"))
    for media_id, name in files.items():
        data = package.read(name)
        assert data == await stored_file(suite, media_id)
        info = package.getinfo(name)
        assert info.compress_type == zipfile.ZIP_STORED
        kept = await record(suite, uuid.UUID(media_id))
        assert kept is not None and hashlib.sha256(data).hexdigest() == kept.sha256
    assert package.read(files[scene["document"]]).startswith(b"%PDF")

    lines = {line["id"]: line for line in jsonl(package, "media.jsonl")}
    assert set(lines) == {scene["picture"], scene["document"], scene["bobs"], scene["lost"]}
    picture = lines[scene["picture"]]
    assert picture["owner_kind"] == "post" and picture["owner_id"] == scene["post"]
    assert picture["author_id"] == scene["ada"] and picture["description"] == "The new office"
    assert picture["file"] == files[scene["picture"]] and picture["missing"] is None
    assert picture["change"] == "attached" and picture["class"] == "organisation_posts"
    assert lines[scene["document"]]["filename"] == "report.pdf"
    assert lines[scene["document"]]["content_type"] == "application/pdf"
    # Bob is no custodian: his media's line names him, and Carol, by pseudonyms alone
    bobs = lines[scene["bobs"]]
    assert bobs["owner_kind"] == "comment" and bobs["comment_id"] == scene["comment"]
    assert bobs["post_id"] == scene["post"] and bobs["author_id"].startswith("person-")
    assert re.fullmatch(r"Taken by @person-[0-9a-f]{10}", bobs["description"])
    text = package.read("media.jsonl").decode() + package.read("media.csv").decode()
    assert scene["bob"] not in text and scene["carol"] not in text
    assert export["redacted"]["authors"] >= 2 and export["redacted"]["handles"] >= 1
    # a media whose bytes media does not have is listed, not a failed export
    assert lines[scene["lost"]]["file"] is None and lines[scene["lost"]]["missing"] == "not-found"
    manifest = json.loads(package.read("manifest.json"))
    assert manifest["media"] == {"files": 3, "missing": [{"id": scene["lost"], "reason": "not-found"}]}
    entries = {e["name"]: e for e in manifest["entries"]}
    for name in files.values():
        assert entries[name]["sha256"] == hashlib.sha256(package.read(name)).hexdigest()
    assert entries["media.jsonl"]["items"] == 4
    csv_header = package.read("media.csv").decode().splitlines()[0]
    assert csv_header.startswith("id,version,owner_kind,owner_id")


async def test_files_media_cannot_give_are_listed_missing(suite):
    token, _ = await officer(suite)
    scene = await attached_scene(suite)
    case = await matter(suite, token)
    custodians = [await account_of(suite, scene["ada"])]
    path = f"{MATTERS}/{case['id']}/exports"

    # media down: every file is missing, the export is still made
    suite.router.down.add("media")
    try:
        created = await ask_export(suite, token, case["id"], custodians=custodians)
        export = await produce(suite, token, f"{path}/{created['id']}")
    finally:
        suite.router.down.discard("media")
    package = await package_of(suite, token, export)
    assert export["media_missing"] == 4
    assert not [n for n in package.namelist() if n.startswith("media/")]
    listed = json.loads(package.read("manifest.json"))["media"]["missing"]
    assert {m["reason"] for m in listed} == {"unavailable"} and len(listed) == 4

    async def missing(**parts: Any) -> dict[str, str]:
        created = await ask_export(suite, token, case["id"], custodians=custodians)
        export = await produce(suite, token, f"{path}/{created['id']}", **parts)
        package = await package_of(suite, token, export)
        found = json.loads(package.read("manifest.json"))["media"]["missing"]
        assert export["media_missing"] == len(found)
        return {m["id"]: m["reason"] for m in found}

    # bytes that are not the ones media recorded for the file
    async with suite.records.state.database.sessionmaker() as session:
        await session.execute(
            update(MediaRecord)
            .where(col(MediaRecord.id) == uuid.UUID(scene["document"]))
            .values(sha256="0" * 64)
        )
        await session.commit()
    assert await missing() == {scene["document"]: "digest-mismatch", scene["lost"]: "not-found"}
    # files longer than an export takes
    small = suite.records.state.settings.model_copy(update={"export_media_max_bytes": 16})
    assert await missing(settings=small) == {
        scene["picture"]: "too-large",
        scene["document"]: "too-large",
        scene["bobs"]: "too-large",
        scene["lost"]: "not-found",
    }


async def test_a_persona_exports_its_own_media_and_nobody_elses(suite):
    scene = await attached_scene(suite)
    resp = await suite.client.post("/api/v1/me/export", headers=auth(scene["ada_token"]))
    assert resp.status_code == 202, resp.text
    export = await produce(suite, scene["ada_token"], f"/api/v1/me/exports/{resp.json()['id']}")
    assert export["media_missing"] == 1
    package = await package_of(suite, scene["ada_token"], export)
    lines = jsonl(package, "media.jsonl")
    assert {line["id"] for line in lines} == {scene["picture"], scene["document"], scene["lost"]}
    assert {line["author_id"] for line in lines} == {scene["ada"]}
    files = sorted(n for n in package.namelist() if n.startswith("media/"))
    assert files == sorted([f"media/{scene['picture']}.png", f"media/{scene['document']}.pdf"])
    assert scene["bobs"] not in " ".join(package.namelist())


async def test_an_export_leaves_out_withdrawn_media_without_versions(suite):
    token, _ = await officer(suite)
    ((_, ada),) = await people(suite, "ada")
    post_id = await record_post(suite, uuid.UUID(ada), ago(1))
    shown = await media_on(suite, post_id, uuid.UUID(ada), ago(1))
    gone = await media_on(suite, post_id, uuid.UUID(ada), ago(1), description="First")
    await send_media(suite, gone, media_data(post_id, uuid.UUID(ada), ago(0.5), description="Second"))
    await send_media(
        suite,
        gone,
        media_data(post_id, uuid.UUID(ada), ago(0.2), description="Second", withdrawn_at=ago(0.2)),
    )
    case = await matter(suite, token)
    custodians = [await account_of(suite, ada)]
    path = f"{MATTERS}/{case['id']}/exports"
    suite.router.down.add("media")  # the bytes do not matter here
    try:
        made = []
        for include_versions in (True, False):
            created = await ask_export(
                suite, token, case["id"], custodians=custodians, include_versions=include_versions
            )
            made.append(await produce(suite, token, f"{path}/{created['id']}"))
        every, latest = made
    finally:
        suite.router.down.discard("media")
    lines = jsonl(await package_of(suite, token, every), "media.jsonl")
    assert [(line["id"], line["version"], line["change"]) for line in lines if line["id"] == str(gone)] == [
        (str(gone), 1, "attached"),
        (str(gone), 2, "edited"),
        (str(gone), 3, "withdrawn"),
    ]
    lines = jsonl(await package_of(suite, token, latest), "media.jsonl")
    assert [line["id"] for line in lines] == [str(shown)]


async def test_disposition_destroys_the_files_at_media(suite):
    token, _ = await officer(suite)
    scene = await attached_scene(suite)
    assert await status(suite, scene["picture"]) == "ready"
    assert (await put_policies(suite, token, dispose("organisation_posts", 0))).status_code == 200
    certificate = await run_disposition(suite, token)
    assert certificate["counts"]["media"] == 4
    assert await media_ids(suite) == set()
    await suite.deliver()
    for media_id in (scene["picture"], scene["document"], scene["bobs"]):
        assert await status(suite, media_id) is None
    async with media_client(suite) as client:
        resp = await client.get(
            f"/internal/records/media/{scene['picture']}/file", headers=internal_auth(suite)
        )
    assert resp.status_code == 404


async def test_a_large_file_is_copied_whole(suite):
    """A file of several chunks (each handed on as it arrives, spooled a megabyte at a time)."""
    token, _ = await officer(suite)
    ((ada_token, ada),) = await people(suite, "ada")
    post_id = await record_post(suite, uuid.UUID(ada), ago(1))
    data = b"".join(b"line %07d of the minutes\n" % n for n in range(110_000))  # about 2.9 MB
    big = await upload_ready(suite, ada_token, data, "minutes.txt", "text/plain")
    assert (await attach(suite, "post", str(post_id), ada, [big["id"]])).status_code == 200
    await suite.deliver()
    case = await matter(suite, token)
    created = await ask_export(suite, token, case["id"], custodians=[await account_of(suite, ada)])
    export = await produce(suite, token, f"{MATTERS}/{case['id']}/exports/{created['id']}")
    package = await package_of(suite, token, export)
    assert export["media_missing"] == 0
    assert package.read(f"media/{big['id']}.txt") == await stored_file(suite, big["id"]) == data
