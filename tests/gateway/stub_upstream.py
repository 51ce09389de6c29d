"""A misbehaving upstream for the gateway's fault tests, run as its own process:

    python -m tests.gateway.stub_upstream --port PORT --name feed [--jwks FILE]

It speaks HTTP/1.1 by hand (one request per connection) so that it can also break the
protocol. What it answers depends on the last path segment:

    ok           200 JSON                      html500      500 HTML page with a traceback
    problem503   503 problem+json, Retry-After truncated    Content-Length 1000, 20 bytes, close
    garbage      bytes that are not HTTP        badjson      200 application/json, not JSON
    big          Content-Length 50 MB           bigchunked   chunked, without end
    slow         nothing for 30 s               stream       server-sent events, 0.4 s apart
    echo         200 with the body's size       set-cookies  200 with three Set-Cookie headers

``/_seen`` counts the requests received so far (itself excluded).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

STATE: dict[str, Any] = {"seen": 0, "paths": [], "targets": [], "cookies": []}


def _response(status: str, body: bytes, content_type: str = "application/json", extra: str = "") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\n"
        f"{extra}connection: close\r\n\r\n"
    )
    return head.encode() + body


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    length = 0
    for line in lines[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == "content-length":
            length = int(value.strip())
        if key.strip().lower() == "cookie":
            STATE["cookies"].append(value.strip())
    body = await reader.readexactly(length) if length else b""
    if not target.startswith("/_seen"):
        STATE["targets"].append(f"{method} {target}")
    return method, target.split("?", 1)[0], body


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str, jwks: bytes) -> None:
    try:
        method, path, body = await _read_request(reader)
        if path != "/_seen":
            STATE["seen"] += 1
            STATE["paths"].append(f"{method} {path}")
        last = path.rstrip("/").rsplit("/", 1)[-1]
        if path == "/_seen":
            writer.write(_response("200 OK", json.dumps(STATE).encode()))
        elif path == "/health/ready":
            writer.write(_response("200 OK", b'{"status":"ready"}'))
        elif path == "/openapi.json":
            doc = {"openapi": "3.1.0", "info": {"title": name, "version": "0"}, "paths": {}}
            writer.write(_response("200 OK", json.dumps(doc).encode()))
        elif path == "/.well-known/jwks.json":
            writer.write(_response("200 OK", jwks))
        elif last == "ok":
            writer.write(_response("200 OK", json.dumps({"ok": True, "service": name}).encode()))
        elif last == "set-cookie":
            extra = "set-cookie: session=someone-elses; Path=/\r\n"
            writer.write(_response("200 OK", b'{"ok": true}', extra=extra))
        elif last == "set-cookies":  # several cookies in one answer, as a sign-in page sets them
            extra = (
                "set-cookie: gs_session=one; Path=/oauth; HttpOnly; SameSite=lax\r\n"
                "set-cookie: gs_csrf=two; Path=/oauth; HttpOnly; SameSite=lax\r\n"
                'set-cookie: gs_sso=""; Max-Age=0; Path=/oauth\r\n'
            )
            writer.write(_response("200 OK", b'{"ok": true}', extra=extra))
        elif last == "echo":
            writer.write(_response("200 OK", json.dumps({"received": len(body)}).encode()))
        elif last == "html500":
            page = b"<html><body><h1>Internal Server Error</h1><pre>Traceback (most recent call last):\n"
            page += b'  File "/srv/app.py", line 1, in handler\nSecretError: db password hunter2</pre>'
            writer.write(_response("500 Internal Server Error", page + b"</body></html>", "text/html"))
        elif last == "problem503":
            problem = b'{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"busy"}'
            writer.write(
                _response(
                    "503 Service Unavailable", problem, "application/problem+json", "retry-after: 7\r\n"
                )
            )
        elif last == "truncated":
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n"
                b'connection: close\r\n\r\n{"items": [{"id": 1'
            )
        elif last == "garbage":
            writer.write(b"\x00\x01\x02 this is not HTTP at all \xff\xfe\r\n\r\n")
        elif last == "badjson":
            writer.write(_response("200 OK", b'{"items": [1, 2,'))
        elif last == "big":
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 50000000\r\n"
                b"connection: close\r\n\r\n" + b" " * 65536
            )
        elif last in ("bigzip", "cutzip"):
            # a download over the answer cap: whole, or cut off after a megabyte
            size = 12_000_000
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/zip\r\n"
                + f"content-length: {size}\r\nconnection: close\r\n\r\n".encode()
            )
            chunk = b"z" * 65536
            sent = 0
            while sent < (size if last == "bigzip" else 1_000_000):
                piece = chunk[: min(len(chunk), size - sent)]
                writer.write(piece)
                sent += len(piece)
                await writer.drain()
        elif last == "bigchunked":
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n"
                b"connection: close\r\n\r\n"
            )
            chunk = b" " * 65536
            for _ in range(800):
                writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                await writer.drain()
        elif last == "slow":
            await asyncio.sleep(30)
            writer.write(_response("200 OK", b"{}"))
        elif last == "stream":
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-store\r\n"
                b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
            )
            for n in range(5):
                event = f"id: {n}\nevent: tick\ndata: {n}\n\n".encode()
                writer.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
                await writer.drain()
                await asyncio.sleep(0.4)
            writer.write(b"0\r\n\r\n")
        else:
            problem = b'{"type":"about:blank","title":"Not Found","status":404,"detail":"no such stub"}'
            writer.write(_response("404 Not Found", problem, "application/problem+json"))
        await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        writer.close()


async def serve(port: int, name: str, jwks: bytes) -> None:
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, name, jwks), "127.0.0.1", port, reuse_address=True, backlog=128
    )
    print(f"stub {name} listening on {port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", default="stub")
    parser.add_argument("--jwks", type=Path)
    args = parser.parse_args()
    jwks = args.jwks.read_bytes() if args.jwks else b'{"keys": []}'
    asyncio.run(serve(args.port, args.name, jwks))


if __name__ == "__main__":
    main()
