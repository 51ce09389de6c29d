"""Both stores against the same tests: the folder, and S3 as a real S3-protocol server process
(moto's standalone server on loopback, not an in-process mock). A write is whole or absent,
ranges are exact, an absent key is a ``KeyError``, a large file goes to S3 in parts."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from services.media import storage as storage_module
from services.media.settings import MediaSettings
from services.media.storage import CHUNK, LocalStorage, S3Storage, Storage, _session, open_storage
from tests.processes import Process, free_port

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """moto's S3 server in a process of its own, for this module's tests."""
    port = free_port()
    command = [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    server = Process(command, name="moto_server").start()
    url = f"http://127.0.0.1:{port}"
    try:
        server.wait_until_answers(url + "/", timeout=60, status=200)
        yield url
    finally:
        server.stop(timeout=10)


def s3_store(moto_url: str, bucket: str | None = None, *, region: str = "eu-west-1") -> S3Storage:
    return S3Storage(
        bucket or f"media-{uuid.uuid4().hex[:12]}",
        endpoint_url=moto_url,
        region=region,
        access_key_id="test",
        secret_access_key="test",
    )


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    made: Storage
    if request.param == "local":
        made = LocalStorage(tmp_path / "store")
    else:
        made = s3_store(request.getfixturevalue("moto_url"))
    await made.start()
    try:
        yield made
    finally:
        await made.close()


def file_with(tmp_path: Path, data: bytes, name: str = "source") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


async def read_all(store: Storage, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.read(key, start, end)])


async def keys_of(store: Storage, prefix: str = "") -> set[str]:
    return {key async for key in store.keys(prefix)}


DATA = bytes(range(256)) * 1000  # 256 000 bytes: several 64 KiB chunks, the last one short
HASH_KEY = hashlib.sha256(DATA).hexdigest()


# -- the same rules for both stores ------------------------------------------------------------


async def test_put_then_fetch_exists_and_delete(store: Storage, tmp_path: Path) -> None:
    assert not await store.exists(HASH_KEY)
    await store.put(HASH_KEY, file_with(tmp_path, DATA), "application/octet-stream")
    assert await store.exists(HASH_KEY)
    await store.fetch(HASH_KEY, tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == DATA
    # Stored again: replaced with the same bytes.
    await store.put(HASH_KEY, file_with(tmp_path, DATA), "application/octet-stream")
    assert await read_all(store, HASH_KEY) == DATA

    await store.delete(HASH_KEY)
    assert not await store.exists(HASH_KEY)
    await store.delete(HASH_KEY)  # absent: nothing happens
    with pytest.raises(KeyError):
        await store.fetch(HASH_KEY, tmp_path / "again")


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, None),
        (0, 0),
        (5, 9),
        (CHUNK - 1, CHUNK + 1),
        (100_000, None),
        (200_000, 10**9),
        (len(DATA) - 1, None),
    ],
)
async def test_read_gives_exactly_the_range(
    store: Storage, tmp_path: Path, start: int, end: int | None
) -> None:
    await store.put(HASH_KEY, file_with(tmp_path, DATA), "application/octet-stream")
    chunks = [chunk async for chunk in store.read(HASH_KEY, start, end)]
    assert b"".join(chunks) == DATA[start : None if end is None else end + 1]
    assert all(0 < len(chunk) <= CHUNK for chunk in chunks)


async def test_read_past_the_end_gives_nothing_and_bad_ranges_are_refused(
    store: Storage, tmp_path: Path
) -> None:
    await store.put(HASH_KEY, file_with(tmp_path, DATA), "application/octet-stream")
    assert await read_all(store, HASH_KEY, len(DATA)) == b""
    assert await read_all(store, HASH_KEY, len(DATA) + 10, len(DATA) + 20) == b""
    for start, end in [(-1, None), (10, 9)]:
        with pytest.raises(ValueError, match="range"):
            await read_all(store, HASH_KEY, start, end)


async def test_an_absent_key_is_a_key_error_at_the_first_iteration(store: Storage) -> None:
    chunks = store.read("incoming/" + str(uuid.uuid4()))  # nothing happens yet
    with pytest.raises(KeyError):
        await chunks.__anext__()
    assert not await store.exists("missing")


async def test_keys_lists_stored_keys_by_prefix(store: Storage, tmp_path: Path) -> None:
    upload = f"incoming/{uuid.uuid4()}"
    source = file_with(tmp_path, b"hello")
    for key in (HASH_KEY, upload, "abc"):
        await store.put(key, source, "text/plain")
    assert await keys_of(store) == {HASH_KEY, upload, "abc"}
    assert await keys_of(store, "incoming/") == {upload}
    assert await read_all(store, "abc") == b"hello"  # a name shorter than its shards


@pytest.mark.parametrize(
    "key", ["", "../escape", "a/../../b", "/etc/passwd", ".hidden", "a/.tmp", "with space", "a//b", "x" * 600]
)
async def test_a_key_that_could_escape_or_hide_is_refused(store: Storage, tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="not a storage key"):
        await store.put(key, file_with(tmp_path, b"x"), "text/plain")
    with pytest.raises(ValueError, match="not a storage key"):
        await store.exists(key)
    assert await keys_of(store) == set()


async def test_an_empty_file_is_stored(store: Storage, tmp_path: Path) -> None:
    await store.put("empty", file_with(tmp_path, b""), "text/plain")
    assert await store.exists("empty")
    assert await read_all(store, "empty") == b""


async def test_a_large_file_goes_whole_and_in_parts(store: Storage, tmp_path: Path) -> None:
    data = os.urandom(12 * MiB + 3)
    await store.put(HASH_KEY, file_with(tmp_path, data), "application/pdf")
    await store.fetch(HASH_KEY, tmp_path / "copy")
    assert hashlib.sha256((tmp_path / "copy").read_bytes()).digest() == hashlib.sha256(data).digest()
    assert await read_all(store, HASH_KEY, 12 * MiB - 2, 12 * MiB + 1) == data[12 * MiB - 2 : 12 * MiB + 2]
    if isinstance(store, S3Storage):
        head = await raw_client_call(store, "head_object", Key=HASH_KEY)
        assert head["ETag"].endswith('-2"')  # a multipart upload of two parts (8 MiB + 4 MiB)
        assert head["ContentType"] == "application/pdf"


async def test_no_partial_file_is_visible_while_it_is_written(store: Storage, tmp_path: Path) -> None:
    """The source is a pipe the test fills in two halves: while the store has received the
    first half (a temporary file holds bytes, or a multipart upload has a part), the key is
    not there for anyone; once the second half is in, it is, whole."""
    data = os.urandom(12 * MiB)
    half = 9 * MiB  # more than one S3 part
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    second_half = threading.Event()

    def feed() -> None:
        with pipe.open("wb") as writer:
            writer.write(data[:half])
            writer.flush()
            second_half.wait(30)
            writer.write(data[half:])

    feeding = asyncio.create_task(asyncio.to_thread(feed))
    putting = asyncio.create_task(store.put(HASH_KEY, pipe, "application/octet-stream"))
    try:
        await eventually(lambda: bytes_received(store, tmp_path), "the store never received the first half")
        assert not await store.exists(HASH_KEY)
        assert await keys_of(store) == set()
        with pytest.raises(KeyError):
            await read_all(store, HASH_KEY)
    finally:
        second_half.set()
        await feeding
        await putting
    assert await keys_of(store) == {HASH_KEY}
    assert hashlib.sha256(await read_all(store, HASH_KEY)).digest() == hashlib.sha256(data).digest()
    assert await bytes_received(store, tmp_path) is False  # nothing left behind


async def bytes_received(store: Storage, tmp_path: Path) -> bool:
    """Whether a write is under way in ``store`` with bytes already in it."""
    if isinstance(store, LocalStorage):
        return any(
            path.name.startswith(".") and path.stat().st_size > 0
            for path in store.root.rglob("*")
            if path.is_file()
        )
    assert isinstance(store, S3Storage)
    uploads = await raw_client_call(store, "list_multipart_uploads")
    for upload in uploads.get("Uploads", []):
        parts = await raw_client_call(store, "list_parts", Key=upload["Key"], UploadId=upload["UploadId"])
        if parts.get("Parts"):
            return True
    return False


async def eventually(check: Callable[[], Awaitable[bool]], message: str, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, message
        await asyncio.sleep(0.01)


# -- the folder ------------------------------------------------------------------------------


async def test_the_folder_is_sharded_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "store")
    upload = "incoming/1234abcd-0000"
    for key in (HASH_KEY, upload):
        await store.put(key, file_with(tmp_path, DATA), "application/octet-stream")
    assert store.path(HASH_KEY) == tmp_path / "store" / HASH_KEY[:2] / HASH_KEY[2:4] / HASH_KEY
    assert store.path(upload) == tmp_path / "store" / "incoming" / "12" / "34" / "1234abcd-0000"
    files = sorted(p for p in (tmp_path / "store").rglob("*") if p.is_file())
    assert files == sorted([store.path(HASH_KEY), store.path(upload)])
    assert store.path(HASH_KEY).read_bytes() == DATA


async def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "store")
    with pytest.raises(IsADirectoryError):
        await store.put(HASH_KEY, tmp_path, "application/octet-stream")  # a folder: unreadable
    with pytest.raises(FileNotFoundError):
        await store.put(HASH_KEY, tmp_path / "absent", "application/octet-stream")
    assert [p for p in (tmp_path / "store").rglob("*") if p.is_file()] == []


# -- S3 ----------------------------------------------------------------------------------------


async def raw_client_call(store: S3Storage, operation: str, **arguments: Any) -> Any:
    """One call to the same S3 server with a client of the test's own."""
    async with _session().create_client(
        "s3",
        endpoint_url=store.endpoint_url,
        region_name=store.region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ) as client:
        return await getattr(client, operation)(Bucket=store.bucket, **arguments)


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
async def test_the_bucket_is_created_at_startup_when_missing(moto_url: str, region: str) -> None:
    store = s3_store(moto_url, region=region)
    with pytest.raises(Exception, match=r"404|Not Found|NoSuchBucket"):
        await raw_client_call(store, "head_bucket")
    await store.start()
    try:
        await raw_client_call(store, "head_bucket")
        again = s3_store(moto_url, store.bucket, region=region)  # a second replica starting
        await again.start()
        await again.close()
    finally:
        await store.close()


async def test_a_store_used_without_start_starts_itself(moto_url: str, tmp_path: Path) -> None:
    store = s3_store(moto_url)
    try:
        await store.put("abcd", file_with(tmp_path, b"hi"), "text/plain")
        assert await read_all(store, "abcd") == b"hi"
    finally:
        await store.close()


async def test_an_interrupted_multipart_upload_is_aborted(moto_url: str, tmp_path: Path) -> None:
    store = s3_store(moto_url)
    await store.start()
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    stop_feeding = threading.Event()

    def feed() -> None:
        try:
            with pipe.open("wb") as writer:
                writer.write(b"x" * (9 * MiB))
                writer.flush()
                stop_feeding.wait(30)
        except BrokenPipeError:
            # The cancelled upload closed its end before reading the last megabyte: that is
            # what this test does to it, whichever comes first.
            return

    feeding = asyncio.create_task(asyncio.to_thread(feed))
    putting = asyncio.create_task(store.put("abcd", pipe, "text/plain"))
    try:
        await eventually(lambda: bytes_received(store, tmp_path), "the first part never arrived")
        putting.cancel()
        stop_feeding.set()  # the pipe ends, so the read under way in a thread ends too
        with pytest.raises(asyncio.CancelledError):
            await putting
        await feeding
        assert not await store.exists("abcd")
        assert (await raw_client_call(store, "list_multipart_uploads")).get("Uploads", []) == []
    finally:
        stop_feeding.set()
        await store.close()


# -- wiring ------------------------------------------------------------------------------------


def app_with(settings: MediaSettings) -> FastAPI:
    app = FastAPI()
    app.state.settings = settings
    return app


async def test_startup_opens_the_folder_and_the_spool(tmp_path: Path) -> None:
    settings = MediaSettings(media_dir=str(tmp_path / "media"), internal_token="x")
    app = app_with(settings)
    await storage_module.on_startup(app)
    try:
        assert isinstance(app.state.storage, LocalStorage)
        assert app.state.storage.root == tmp_path / "media"
        assert (tmp_path / "media" / "spool").is_dir()
    finally:
        await storage_module.on_shutdown(app)

    settings = MediaSettings(
        media_dir=str(tmp_path / "media2"), spool_dir=str(tmp_path / "elsewhere"), internal_token="x"
    )
    await storage_module.on_startup(app_with(settings))
    assert (tmp_path / "elsewhere").is_dir()
    assert not (tmp_path / "media2" / "spool").exists()


async def test_startup_opens_s3_as_the_settings_say(moto_url: str, tmp_path: Path) -> None:
    bucket = f"media-{uuid.uuid4().hex[:12]}"
    settings = MediaSettings(
        storage="s3",
        media_dir=str(tmp_path / "media"),
        s3_endpoint_url=moto_url,
        s3_bucket=bucket,
        s3_region="eu-west-1",
        s3_access_key_id="test",
        s3_secret_access_key="test",
        internal_token="x",
    )
    assert isinstance(open_storage(settings), S3Storage)
    app = app_with(settings)
    await storage_module.on_startup(app)
    try:
        store = app.state.storage
        assert isinstance(store, S3Storage)
        assert store.bucket == bucket
        await raw_client_call(store, "head_bucket")
        assert (tmp_path / "media" / "spool").is_dir()
    finally:
        await storage_module.on_shutdown(app)
