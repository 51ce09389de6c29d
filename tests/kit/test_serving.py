"""kit.serving: a response's head and body leave in one write; nothing is held back, lost or
reordered (decision 0052). The protocol is driven as uvicorn drives it, on a transport that
records the writes the socket would get; then served for real by uvicorn, on a socket."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from kit.serving import HTTP_PROTOCOL, SEND_AT, HttpProtocol
from tests.processes import free_port

REQUEST = b"GET /answer HTTP/1.1\r\nHost: test\r\n\r\n"


class Socket(asyncio.Transport):
    """Where a protocol's writes would go: each ``write`` is one send to the socket."""

    def __init__(self) -> None:
        super().__init__()
        self.sends: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.sends.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 40000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def answer(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]})
    await send({"type": "http.response.body", "body": b"hello"})


async def stream(scope: Scope, receive: Receive, send: Send) -> None:
    """A stream's start, and its first event a while later."""
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
    )
    await asyncio.sleep(0.3)
    await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def _connected(protocol_class: type[HttpToolsProtocol], app: Any) -> tuple[HttpToolsProtocol, Socket]:
    config = uvicorn.Config(app, http=protocol_class, lifespan="off", log_level="warning")
    protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
    sock = Socket()
    protocol.connection_made(sock)
    return protocol, sock


async def _settled() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.mark.parametrize(("protocol_class", "sends"), [(HttpToolsProtocol, 2), (HttpProtocol, 1)])
async def test_a_response_leaves_in_one_send_where_uvicorns_takes_two(protocol_class, sends):
    """uvicorn's own protocol is the comparison: it sends the head and then the body."""
    protocol, sock = _connected(protocol_class, answer)
    protocol.data_received(REQUEST)
    await _settled()
    assert len(sock.sends) == sends
    response = b"".join(sock.sends)
    assert response.startswith(b"HTTP/1.1 200 OK\r\n") and response.endswith(b"\r\n\r\nhello")


async def test_two_requests_on_one_connection_get_their_answers_in_order():
    protocol, sock = _connected(HttpProtocol, answer)
    protocol.data_received(REQUEST + REQUEST)  # pipelined
    await _settled()
    assert len(sock.sends) == 2
    assert all(send.startswith(b"HTTP/1.1 200 OK\r\n") and send.endswith(b"hello") for send in sock.sends)


async def test_a_streams_head_is_sent_without_waiting_for_its_first_event():
    protocol, sock = _connected(HttpProtocol, stream)
    protocol.data_received(REQUEST)
    await _settled()
    assert len(sock.sends) == 1 and sock.sends[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert sock.sends[0].endswith(b"\r\n\r\n")  # the head alone: no body yet
    await asyncio.sleep(0.4)
    assert b"".join(sock.sends[1:]) == b"9\r\ndata: 1\n\n\r\n0\r\n\r\n"


async def test_a_large_body_is_sent_as_it_comes_not_held_to_the_end_of_the_turn():
    """Sent on: the socket's buffer fills and uvicorn pauses the app, as it would without
    gathering."""
    protocol, sock = _connected(HttpProtocol, answer)
    protocol.transport.write(b"h" * 100)
    assert sock.sends == []  # small: gathered
    protocol.transport.write(b"x" * SEND_AT)
    assert sock.sends == [b"h" * 100 + b"x" * SEND_AT]  # before the turn ends
    await _settled()
    assert len(sock.sends) == 1  # and nothing sent twice


async def test_closing_sends_what_was_written_first():
    protocol, sock = _connected(HttpProtocol, answer)
    protocol.transport.write(b"last words")
    protocol.transport.close()
    assert sock.sends == [b"last words"] and sock.closed


async def test_aborting_drops_what_was_written():
    """An abort drops what the kernel has not sent yet; what is still gathered goes with it."""
    aborted: list[bool] = []
    protocol, sock = _connected(HttpProtocol, answer)
    sock.abort = lambda: aborted.append(True)  # type: ignore[method-assign]
    protocol.transport.write(b"never sent")
    protocol.transport.abort()
    await _settled()
    assert sock.sends == [] and aborted == [True]


async def test_uvicorn_serves_with_it_on_a_real_socket():
    """A server started as the processes start: answers, a stream, a connection kept."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await (stream if scope["path"] == "/stream" else answer)(scope, receive, send)

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, http=HTTP_PROTOCOL, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            first, second = await client.get("/answer"), await client.get("/answer")
            assert (first.status_code, first.text, second.text) == (200, "hello", "hello")
            async with client.stream("GET", "/stream") as events:
                assert events.headers["content-type"] == "text/event-stream"
                assert [chunk async for chunk in events.aiter_text()] == ["data: 1\n\n"]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)  # a client that hangs up
        writer.write(REQUEST.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        assert (await reader.read()).endswith(b"\r\n\r\nhello")  # all of it, then the end
        writer.close()
    finally:
        server.should_exit = True
        await task
