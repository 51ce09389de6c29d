"""A small HTTP/1.1 server over real TCP, in the test's event loop, for what a real server
cannot be made to do on demand: answer with chosen statuses, close a connection without
answering, or lose the race between its keep-alive timeout and a request every time.

uvicorn closes an idle connection when its keep-alive timer fires. A client that finds the
connection closed already opens another one (httpcore sees the socket readable); only a
request sent in the instant before the close is lost, which a test cannot time. This server
closes an idle connection when the next request arrives on it, unanswered: the lost race,
made certain."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Seen:
    """A request the server read, on which connection (1, 2, …), and whether it answered."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    connection: int
    answered: bool


class StubServer:
    """``statuses`` are the answers' statuses in turn (None: close the connection without
    answering), 200 after them. With ``keep_alive``, a request that arrives on a connection
    idle for longer than that many seconds is not answered: the connection is closed. With
    ``persistent=False``, every answer says ``Connection: close`` and the connection is closed
    after it."""

    def __init__(
        self,
        *,
        statuses: Iterable[int | None] = (),
        keep_alive: float | None = None,
        persistent: bool = True,
    ) -> None:
        self.statuses = list(statuses)
        self.keep_alive = keep_alive
        self.persistent = persistent
        self.requests: list[Seen] = []
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def dropped(self) -> list[Seen]:
        return [seen for seen in self.requests if not seen.answered]

    async def __aenter__(self) -> StubServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._open):
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        connection = self.connections
        idle_since: float | None = None
        self._open.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return  # the client closed the connection
                request_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
                method, target, _ = request_line.split(" ", 2)
                headers = {
                    name.strip().lower(): value.strip() for name, value in (h.split(":", 1) for h in lines)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                expired = (
                    self.keep_alive is not None
                    and idle_since is not None
                    and time.monotonic() - idle_since > self.keep_alive
                )
                status = None if expired else (self.statuses.pop(0) if self.statuses else 200)
                self.requests.append(Seen(method, target, headers, body, connection, status is not None))
                if status is None:
                    return
                answer = json.dumps({"connection": connection, "items": []}).encode()
                closing = "" if self.persistent else "connection: close\r\n"
                writer.write(
                    f"HTTP/1.1 {status} Stub\r\ncontent-type: application/json\r\n{closing}"
                    f"content-length: {len(answer)}\r\n\r\n".encode()
                    + answer
                )
                await writer.drain()
                if not self.persistent:
                    return
                idle_since = time.monotonic()
        finally:
            self._open.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
