"""An HTTP request makes no import attempt. httpx (through httpcore) asks which async library
it runs under by importing ``sniffio`` on every request; with ``sniffio`` missing, each request
searched ``sys.path`` for it four times, about 0.3 ms of CPU (measured against a local server,
docs/decisions/0045-fewer-writes-per-event.md). The lock file carries it, so the import is
found once and cached."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

import httpx


class _Counting:
    """A finder that finds nothing and counts what it was asked for."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        self.asked.append(name)
        return None


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers every request on the connection with 200 "ok" until the client closes it."""
    try:
        while await reader.readuntil(b"\r\n\r\n"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def test_an_http_request_searches_for_no_module():
    server = await asyncio.start_server(_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    finder = _Counting()
    try:
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://127.0.0.1:{port}/")).text == "ok"  # first use imports
            sys.meta_path.insert(0, finder)
            try:
                for _ in range(3):
                    assert (await client.get(f"http://127.0.0.1:{port}/")).status_code == 200
            finally:
                sys.meta_path.remove(finder)
    finally:
        server.close()
    assert finder.asked == []
