"""The malware scan (decision 0036): every upload is sent to a ClamAV daemon (``clamd``) before
it is ready, when the operator names one (``MEDIA_CLAMD_ADDRESS``); without one nothing is
scanned (docs/media.md says so to operators).

The client is written here rather than taken from PyPI: the clamd client libraries there
(``clamd``, ``pyclamd``) are unmaintained, synchronous, and bring more than the one command
used, while the protocol of that command is a few lines: ``zINSTREAM\\0``, then the file as
chunks each preceded by its length (4 bytes, big-endian), then a chunk of length zero; clamd
answers ``stream: OK``, ``stream: <signature> FOUND`` or ``<message> ERROR``, ending with a NUL
byte (the ``z`` prefix asks for that).

An infected file is ``processing.Rejected`` for good. Anything that says nothing about the file
(clamd down or refusing, too slow, an error of its own, such as a file above its
``StreamMaxLength``, which must be at least ``MEDIA_MAX_FILE_BYTES``) is ``ScanUnavailable``:
the worker leaves the upload for a later attempt, and a file is never ready unscanned.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from pathlib import Path

from services.media.processing import Rejected

CHUNK = 64 * 1024
# The longest answer read: a signature name is short; anything longer is not clamd.
MAX_REPLY = 4096


class ScanUnavailable(Exception):
    """The scan could not be done now (clamd unreachable, too slow, or in error); the file
    is neither clean nor infected as far as anyone knows."""


async def scan(
    path: Path,
    address: str,
    timeout: float,  # noqa: ASYNC109 - each step's bound, as a socket timeout: not one deadline
) -> None:
    """Scans the file at ``path`` with the clamd at ``address`` (``host:port``, ``[v6]:port``,
    or a Unix socket's path, ``unix:/path`` or ``/path``). Returns when clamd finds it clean;
    ``Rejected`` when it finds malware; ``ScanUnavailable`` otherwise. ``timeout`` bounds each
    step (connecting, each write, waiting for the answer), as a socket timeout would: a big
    file may take longer in all, a silent daemon never holds the worker longer than that."""
    try:
        reader, writer = await asyncio.wait_for(_connect(address), timeout)
    except (OSError, TimeoutError) as error:
        raise ScanUnavailable(f"clamd at {address} cannot be reached: {error!r}") from None
    try:
        try:
            await _send(path, writer, timeout)
        except (ConnectionError, TimeoutError) as error:
            # clamd may have hung up early with an answer that says why (a size limit).
            reply = await _reply(reader, min(timeout, 1.0), quiet=True)
            raise ScanUnavailable(f"clamd stopped reading: {reply or repr(error)}") from None
        reply = await _reply(reader, timeout)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), timeout)
    _judge(reply)


async def _connect(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if address.startswith(("unix:", "/")):
        return await asyncio.open_unix_connection(address.removeprefix("unix:"))
    host, separator, port = address.rpartition(":")
    if not separator or not host or not port.isdigit():
        raise OSError(f"not a clamd address (host:port): {address!r}")
    return await asyncio.open_connection(host.strip("[]"), int(port))


async def _send(path: Path, writer: asyncio.StreamWriter, seconds: float) -> None:
    writer.write(b"zINSTREAM\0")
    reading = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(reading.read, CHUNK):
            writer.write(struct.pack(">I", len(chunk)) + chunk)
            await asyncio.wait_for(writer.drain(), seconds)
    finally:
        reading.close()
    writer.write(struct.pack(">I", 0))
    await asyncio.wait_for(writer.drain(), seconds)


async def _reply(reader: asyncio.StreamReader, seconds: float, *, quiet: bool = False) -> str:
    """clamd's answer, up to its NUL byte (or the end of the connection)."""
    try:
        raw = await asyncio.wait_for(reader.readuntil(b"\0"), seconds)
    except asyncio.IncompleteReadError as error:
        raw = error.partial
    except asyncio.LimitOverrunError:
        raw = b""
    except (OSError, TimeoutError) as error:
        if quiet:
            return ""
        raise ScanUnavailable(f"clamd did not answer: {error!r}") from None
    return raw[:MAX_REPLY].rstrip(b"\0").decode("utf-8", "replace").strip()


def _judge(reply: str) -> None:
    if reply == "stream: OK":
        return
    if reply.startswith("stream: ") and reply.endswith(" FOUND"):
        name = reply.removeprefix("stream: ").removesuffix(" FOUND").strip()
        raise Rejected(f"Malware found ({name}).")
    if reply.endswith("ERROR"):
        raise ScanUnavailable(f"clamd answered an error: {reply}")
    raise ScanUnavailable(f"clamd's answer is not understood: {reply!r}")
