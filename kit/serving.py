"""The HTTP protocol every process serves with: uvicorn's (httptools' parser), with the writes
of one turn of the event loop sent together (decision 0052).

uvicorn writes a response's status line and headers when the app starts the response, and its
body when the app sends it: two ``send`` calls, and at the other end two segments to read,
for every answer however small. Here the connection's writes are gathered and sent at the end
of the loop's turn, so a response whose body follows its start at once (every response but a
stream's) leaves in one call. A stream's start goes out at the end of the turn it was written
in: nothing waits for a body that has not come.

Started with ``uvicorn --http kit.serving:HttpProtocol`` (``HTTP_PROTOCOL``): the launcher,
the container's entrypoint, the tests' processes and the benchmark's, the floor included."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# What ``uvicorn --http`` takes to serve with ``HttpProtocol``.
HTTP_PROTOCOL = "kit.serving:HttpProtocol"
# Gathered writes that reach this size are sent at once, without waiting for the turn to end:
# a body streamed without a pause between its chunks is not held in memory whole, and the
# transport's flow control (uvicorn pauses the app while the socket's buffer is full) sees it.
SEND_AT = 64 * 1024


class _GatheredWrites(asyncio.Transport):
    """A transport that gathers the writes of one turn of the loop into one write of the
    transport it wraps, or sooner once they reach ``SEND_AT`` bytes. Closing sends what is
    gathered first, as a transport's close does."""

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__()
        self._transport = transport
        self._pending: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.append(bytes(data))
        self._size += len(data)
        if self._size >= SEND_AT:
            self._flush()

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def _flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        self._size = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._size = 0
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._size

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing through ``_GatheredWrites``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_GatheredWrites(transport))
