"""A stand-in for ClamAV's daemon, speaking the part of its protocol media uses (``INSTREAM``,
and ``PING``) over a real socket: the virus database cannot be downloaded here, so it "finds"
only the EICAR test string, as clamd does (``Eicar-Test-Signature``).

Use it in a test as ``async with ClamdStandIn() as clamd:`` and give ``clamd.address`` to
``scanning.scan`` or ``MEDIA_CLAMD_ADDRESS``; ``mode`` makes it misbehave: ``"silent"`` reads
the file and never answers, ``"error"`` answers an error, ``"hangup"`` closes the connection
without a word. ``closed_address()`` is an address nothing listens on (clamd down).
Or run it alone: ``python -m tests.media.clamd_standin --port 3310``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import struct
from types import TracebackType
from typing import Literal

from tests.media.samples import EICAR
from tests.processes import free_port

Mode = Literal["normal", "silent", "error", "hangup"]
SIGNATURE = "Eicar-Test-Signature"


class ClamdStandIn:
    def __init__(self, mode: Mode = "normal", *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.mode: Mode = mode
        self.host = host
        self.port = port
        # The files streamed to it, whole, in order; and the commands it received.
        self.scanned: list[bytes] = []
        self.commands: list[bytes] = []
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def __aenter__(self) -> ClamdStandIn:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self._writers.add(writer)
        try:
            await self._session(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._connections.discard(task)
            self._writers.discard(writer)
            writer.close()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        command = await _command(reader)
        self.commands.append(command)
        if command in (b"zPING", b"nPING", b"PING"):
            writer.write(b"PONG" + (b"\0" if command.startswith(b"z") else b"\n"))
        elif command in (b"zINSTREAM", b"nINSTREAM"):
            data = await _stream(reader)
            self.scanned.append(data)
            end = b"\0" if command.startswith(b"z") else b"\n"
            if self.mode == "silent":
                await asyncio.Event().wait()  # until the stand-in stops
            elif self.mode == "hangup":
                return
            elif self.mode == "error":
                writer.write(b"INSTREAM size limit exceeded. ERROR" + end)
            elif EICAR in data:
                writer.write(f"stream: {SIGNATURE} FOUND".encode() + end)
            else:
                writer.write(b"stream: OK" + end)
        else:
            writer.write(b"UNKNOWN COMMAND\0")
        await writer.drain()


async def _command(reader: asyncio.StreamReader) -> bytes:
    """A ``z`` command ends with NUL, an ``n`` one (or a bare one) with a newline."""
    first = await reader.readexactly(1)
    if first == b"z":
        return first + (await reader.readuntil(b"\0"))[:-1]
    return first + (await reader.readuntil(b"\n"))[:-1]


async def _stream(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        (length,) = struct.unpack(">I", await reader.readexactly(4))
        if length == 0:
            return b"".join(parts)
        parts.append(await reader.readexactly(length))


def closed_address() -> str:
    """``127.0.0.1:<port>`` where nothing listens (clamd down)."""
    return f"127.0.0.1:{free_port()}"


async def _main(port: int, mode: Mode) -> None:
    async with ClamdStandIn(mode, port=port) as clamd:
        print(f"clamd stand-in listening on {clamd.address}", flush=True)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=3310)
    parser.add_argument("--mode", choices=["normal", "silent", "error", "hangup"], default="normal")
    arguments = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(arguments.port, arguments.mode))
