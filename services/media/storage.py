"""Where media files are kept (decision 0036): a folder (the embedded default) or an
S3-compatible object store. Keys are opaque strings chosen by media: a stored file's SHA-256,
or ``incoming/<media id>`` for the bytes of an upload not yet processed. Nothing in a key names
a persona or an account.

Both stores make a write whole or absent: the folder writes a temporary file next to the final
one and renames it over (``os.replace`` is atomic within a folder), the object store makes an
object visible only once its single PUT or its multipart upload is complete. A reader, another
worker or the sweeper therefore never sees half a file, and a worker that crashes mid-write
leaves at most a temporary file (or an unfinished multipart upload, which object stores expire
by their own lifecycle rules) that no key names.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import secrets
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from fastapi import FastAPI

from services.media.settings import MediaSettings

if TYPE_CHECKING:
    from aiobotocore.session import AioSession
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef

CHUNK = 64 * 1024
# Above this size a file goes to the object store as a multipart upload, in parts of this size
# (S3's smallest part is 5 MiB); below it, as one PUT. One part is in memory at a time.
PART_SIZE = 8 * 1024 * 1024

# A key is slash-separated folders of letters, digits, ``_`` and ``-``, then a name that starts
# with a letter or a digit. No ``..``, no absolute path, no hidden name: a key can never point
# outside the store's folder, nor at a temporary file.
_KEY = re.compile(r"(?:[A-Za-z0-9_-]+/)*[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_KEY_LENGTH = 512


def check_key(key: str) -> str:
    """``key`` if it is a valid key, else ``ValueError``."""
    if len(key) > MAX_KEY_LENGTH or ".." in key or not _KEY.fullmatch(key):
        raise ValueError(f"not a storage key: {key!r}")
    return key


class Storage(Protocol):
    async def start(self) -> None:
        """Makes the store ready for use: creates the folder, or connects to the object store
        and creates its bucket when it is missing. Called once, at startup (``on_startup``);
        the other methods also start the store on first use when nobody did."""

    async def put(self, key: str, source: Path, content_type: str) -> None:
        """Stores the file at ``source`` under ``key``, whole or not at all (a reader never
        sees half a file). Storing a key again replaces it with the same bytes."""

    async def fetch(self, key: str, target: Path) -> None:
        """Copies the stored bytes of ``key`` into the file ``target``. ``KeyError`` when absent."""

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes of ``key`` from ``start`` to ``end`` (inclusive; None: to the end), in
        chunks of at most 64 KiB. ``KeyError`` (at the first iteration) when absent. Nothing
        when ``start`` is past the end of the file; ``end`` past the end means the end."""
        ...

    async def delete(self, key: str) -> None:
        """Deletes ``key``; nothing when it is absent."""

    async def exists(self, key: str) -> bool: ...

    def keys(self, prefix: str = "") -> AsyncIterator[str]:
        """Every stored key that starts with ``prefix``, in no particular order; only whole
        files (never one being written). For the operator's checks and the tests; the service
        itself finds its files through its rows."""
        ...

    async def close(self) -> None: ...


def _check_range(start: int, end: int | None) -> None:
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"bad byte range {start}-{end}")


# -- the folder -----------------------------------------------------------------------------


class LocalStorage:
    """Files under ``root``, two folder levels of sharding from the key's name so that no
    folder holds millions of files: ``ab/cd/abcdef…`` for a content hash, ``incoming/12/34/
    1234…`` for an upload (a name shorter than four characters is padded with ``_``).

    File IO is blocking, so every call runs in a worker thread (reads one 64 KiB chunk per
    hop, as Starlette's own ``FileResponse`` does): a large file never holds the event loop.
    A put is fsynced before it is renamed into place, and its folder after, so a crash never
    leaves a key naming a file whose bytes did not reach the disk, nor loses a stored one."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        """Where ``key``'s file lives (whether or not it exists)."""
        *folders, name = check_key(key).split("/")
        padded = name.ljust(4, "_")
        return self.root.joinpath(*folders, padded[:2], padded[2:4], name)

    async def start(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)

    async def put(self, key: str, source: Path, content_type: str) -> None:
        await asyncio.to_thread(self._put, self.path(key), Path(source))

    @staticmethod
    def _put(target: Path, source: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        # A hidden name in the same folder: never a key (keys' names start with a letter or a
        # digit), and on the same file system, so the rename is atomic.
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            with source.open("rb") as reader, temporary.open("xb") as writer:
                shutil.copyfileobj(reader, writer, 1024 * 1024)
                writer.flush()
                os.fsync(writer.fileno())
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        # The rename itself lasts once the folder is synced: a row that says "stored" never
        # outlives a power cut that the file did not.
        folder = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    async def fetch(self, key: str, target: Path) -> None:
        path = self.path(key)

        def copy() -> None:
            try:
                reader = path.open("rb")
            except FileNotFoundError:
                raise KeyError(key) from None
            with reader, Path(target).open("wb") as writer:
                shutil.copyfileobj(reader, writer, 1024 * 1024)

        await asyncio.to_thread(copy)

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        _check_range(start, end)
        path = self.path(key)

        def open_at() -> IO[bytes]:
            try:
                handle = path.open("rb")
            except FileNotFoundError:
                raise KeyError(key) from None
            handle.seek(start)
            return handle

        handle = await asyncio.to_thread(open_at)
        try:
            left = None if end is None else end - start + 1
            while left is None or left > 0:
                size = CHUNK if left is None else min(CHUNK, left)
                chunk = await asyncio.to_thread(handle.read, size)
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk
        finally:
            handle.close()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, missing_ok=True)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path(key).is_file)

    async def keys(self, prefix: str = "") -> AsyncIterator[str]:
        for key in await asyncio.to_thread(self._keys):
            if key.startswith(prefix):
                yield key

    def _keys(self) -> list[str]:
        found = []
        for folder, _, names in os.walk(self.root):
            relative = Path(folder).relative_to(self.root).parts
            if len(relative) < 2:
                continue
            for name in names:
                if name.startswith("."):
                    continue  # a file being written
                key = "/".join([*relative[:-2], name])
                with contextlib.suppress(ValueError):
                    if self.path(key) == Path(folder) / name:
                        found.append(key)
        return found

    async def close(self) -> None:
        return None


# -- the object store -----------------------------------------------------------------------


class S3Storage:
    """Objects in one bucket of an S3-compatible store (AWS S3, MinIO, Ceph), through
    aiobotocore: one client for the process, opened at startup, its bucket created when
    missing.

    With an ``endpoint_url`` (a store other than AWS) requests use path-style addresses
    (``http://store/bucket/key``: a private store's host name seldom resolves with the bucket
    in front) and send checksums only where the API requires them, which older MinIO and
    Ceph releases need. Empty credentials leave botocore's own chain (environment, instance
    role) to find them."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str = "",
        region: str = "us-east-1",
        access_key_id: str = "",
        secret_access_key: str = "",
        part_size: int = PART_SIZE,
    ) -> None:
        if part_size < 5 * 1024 * 1024:
            raise ValueError("an S3 part is at least 5 MiB")
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.region = region
        self.part_size = part_size
        self._credentials = (access_key_id, secret_access_key)
        self._client: S3Client | None = None
        self._exits = contextlib.AsyncExitStack()
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        await self._s3()

    async def _s3(self) -> S3Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                client = await self._exits.enter_async_context(self._create_client())
                try:
                    await self._ensure_bucket(client)
                except BaseException:
                    await self._exits.aclose()
                    raise
                self._client = client
        return self._client

    def _create_client(self) -> Any:
        from aiobotocore.config import AioConfig

        options: dict[str, Any] = {"retries": {"mode": "standard", "max_attempts": 3}}
        if self.endpoint_url:
            options |= {
                "s3": {"addressing_style": "path"},
                "request_checksum_calculation": "when_required",
                "response_checksum_validation": "when_required",
            }
        key_id, secret = self._credentials
        return _session().create_client(
            "s3",
            region_name=self.region,
            endpoint_url=self.endpoint_url or None,
            aws_access_key_id=key_id or None,
            aws_secret_access_key=secret or None,
            config=AioConfig(**options),
        )

    async def _ensure_bucket(self, client: S3Client) -> None:
        try:
            await client.head_bucket(Bucket=self.bucket)
            return
        except client.exceptions.ClientError as error:
            if _status(error) != 404:
                raise
        try:
            if self.region == "us-east-1":
                await client.create_bucket(Bucket=self.bucket)
            else:
                await client.create_bucket(
                    Bucket=self.bucket,
                    CreateBucketConfiguration={"LocationConstraint": self.region},  # type: ignore[typeddict-item]
                )
        except (client.exceptions.BucketAlreadyOwnedByYou, client.exceptions.BucketAlreadyExists):
            pass  # another replica created it in the meantime

    async def put(self, key: str, source: Path, content_type: str) -> None:
        check_key(key)
        client = await self._s3()
        reader = await asyncio.to_thread(Path(source).open, "rb")
        try:
            first = await asyncio.to_thread(reader.read, self.part_size)
            # One byte more tells whether the file ends within the first part, without
            # trusting its size (it may still be growing) or holding two parts in memory.
            more = await asyncio.to_thread(reader.read, 1) if len(first) == self.part_size else b""
            if not more:
                await client.put_object(Bucket=self.bucket, Key=key, Body=first, ContentType=content_type)
                return
            await self._multipart(client, key, content_type, first, more, reader)
        finally:
            # In a thread: a read of it may still be running in one when the put is cancelled.
            await asyncio.to_thread(reader.close)

    async def _multipart(
        self, client: S3Client, key: str, content_type: str, first: bytes, more: bytes, reader: IO[bytes]
    ) -> None:
        """Uploads ``first``, then the rest of ``reader`` (starting with ``more``), one part
        in memory at a time. The object appears only at ``complete_multipart_upload``; on any
        failure the upload is aborted, so its parts are not kept (and billed) for nothing."""
        upload = await client.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType=content_type)
        upload_id = upload["UploadId"]
        parts: list[CompletedPartTypeDef] = []
        try:
            body = first
            while body:
                number = len(parts) + 1
                answer = await client.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
                )
                parts.append({"ETag": answer["ETag"], "PartNumber": number})
                body = more + await asyncio.to_thread(reader.read, self.part_size - len(more))
                more = b""
            await client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.shield(
                    client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
                )
            raise

    async def fetch(self, key: str, target: Path) -> None:
        writer = await asyncio.to_thread(Path(target).open, "wb")
        try:
            async for chunk in self._get(key, None):
                await asyncio.to_thread(writer.write, chunk)
        finally:
            writer.close()

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        _check_range(start, end)
        whole = start == 0 and end is None
        wanted = None if whole else f"bytes={start}-{'' if end is None else end}"
        async for chunk in self._get(key, wanted):
            yield chunk

    async def _get(self, key: str, byte_range: str | None) -> AsyncIterator[bytes]:
        check_key(key)
        client = await self._s3()
        extra: dict[str, Any] = {"Range": byte_range} if byte_range else {}
        try:
            answer = await client.get_object(Bucket=self.bucket, Key=key, **extra)
        except client.exceptions.NoSuchKey:
            raise KeyError(key) from None
        except client.exceptions.ClientError as error:
            if _status(error) == 404:
                raise KeyError(key) from None
            if _status(error) == 416:
                return  # the range starts past the end: nothing, as the folder answers
            raise
        body = answer["Body"]
        try:
            async for chunk in body.iter_chunks(CHUNK):
                yield chunk
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        check_key(key)
        client = await self._s3()
        await client.delete_object(Bucket=self.bucket, Key=key)

    async def exists(self, key: str) -> bool:
        check_key(key)
        client = await self._s3()
        try:
            await client.head_object(Bucket=self.bucket, Key=key)
        except client.exceptions.ClientError as error:
            if _status(error) == 404:
                return False
            raise
        return True

    async def keys(self, prefix: str = "") -> AsyncIterator[str]:
        client = await self._s3()
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        async for page in pages:
            for item in page.get("Contents", []):
                if "Key" in item:
                    yield item["Key"]

    async def close(self) -> None:
        self._client = None
        await self._exits.aclose()


@functools.cache
def _session() -> AioSession:
    """One botocore session for the process: it loads S3's service description (a second
    or so) once, whatever the number of clients."""
    from aiobotocore.session import get_session

    return get_session()


def _status(error: Exception) -> int | None:
    response: Any = getattr(error, "response", {})
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


# -- wiring ---------------------------------------------------------------------------------


def open_storage(settings: object) -> Storage:
    """The store the settings name (``MediaSettings.storage``), not yet started."""
    assert isinstance(settings, MediaSettings)
    if settings.storage == "s3":
        return S3Storage(
            settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id.get_secret_value(),
            secret_access_key=settings.s3_secret_access_key.get_secret_value(),
        )
    return LocalStorage(settings.media_dir)


def spool_dir(settings: MediaSettings) -> Path:
    """Where uploads are written while they arrive and while they are processed:
    ``spool_dir``, or ``<media_dir>/spool``. Local to the process, whichever the store."""
    return Path(settings.spool_dir) if settings.spool_dir else Path(settings.media_dir) / "spool"


async def on_startup(app: FastAPI) -> None:
    """Opens the store into ``app.state.storage`` (creating its folder or bucket) and creates
    the spool folder. A store that cannot be reached stops the startup: better than a
    service that answers and loses every upload."""
    settings = app.state.settings
    assert isinstance(settings, MediaSettings)
    await asyncio.to_thread(spool_dir(settings).mkdir, parents=True, exist_ok=True)
    storage = open_storage(settings)
    await storage.start()
    app.state.storage = storage


async def on_shutdown(app: FastAPI) -> None:
    """Closes ``app.state.storage``."""
    storage: Storage | None = getattr(app.state, "storage", None)
    if storage is not None:
        await storage.close()
