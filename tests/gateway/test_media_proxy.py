"""The gateway in front of media (decision 0036), in process: an upload's body streamed to
media under its own cap (the one body not read whole), files and previews streamed back with
their headers and Range answers, and signed links let through without a bearer on exactly the
file paths. Media is the stand-in of ``tests.gateway.media_stub``, mounted as the suite's
``media`` host, which writes down what reached it; the real aiohttp client is exercised by
``test_media_streaming.py`` on real processes."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.routing import is_media_file, opens_file_with_signature
from tests.gateway import media_stub
from tests.helpers import auth, person
from tests.suite import build_suite

CAP = 2_000_000  # the gateway's upload cap in these tests
MAX_RESPONSE = 100_000  # far below a file's size: a file is never read whole
LIMITS = {"default": {"per_token": 100, "per_address": 100, "window_seconds": 60}}


@pytest.fixture
async def suite(database_urls):
    gateway = {"upload_max_bytes": CAP, "upstream_max_response_bytes": MAX_RESPONSE, "rate_limits": LIMITS}
    async with build_suite(database_urls, gateway=gateway) as built:
        built.router.mount("media", media_stub.create_app())  # type: ignore[arg-type]
        yield built


async def _state(suite) -> dict[str, Any]:
    resp = await suite.client.get("http://media/_state")
    state: dict[str, Any] = resp.json()
    return state


async def _token(suite, handle: str = "ada") -> str:
    token, _ = await person(suite.client, handle)
    return token


def _payload(size: int) -> bytes:
    return hashlib.shake_256(b"upload").digest(size)


async def _chunks(data: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _is_problem(resp: httpx.Response, status: int, slug: str | None = None) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    if slug is not None:
        assert resp.json()["type"].endswith("/" + slug)


# -- uploads ---------------------------------------------------------------------------------


async def test_an_upload_over_the_body_limit_streams_to_media_with_its_length(suite):
    """1.5 MB is over every other route's body limit (1 MB) and within the upload's cap: it
    reaches media whole, as the client sent it, with its Content-Length, and media's Location
    comes back as a path on the gateway."""
    token = await _token(suite)
    data = _payload(1_500_000)
    resp = await suite.client.post(
        "/api/v1/media", content=data, headers={**auth(token), "content-type": "application/octet-stream"}
    )
    assert resp.status_code == 202, resp.text
    assert resp.json()["sha256"] == hashlib.sha256(data).hexdigest()
    assert resp.headers["location"] == "/api/v1/media/m1"
    (upload,) = (await _state(suite))["uploads"]
    assert upload == {
        "content_length": str(len(data)),
        "chunked": False,
        "complete": True,
        "received": len(data),
        "chunks": upload["chunks"],
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    # the RateLimit headers of a write with a token: both partitions counted
    assert '"default-token"' in resp.headers["ratelimit"]
    assert '"default-address"' in resp.headers["ratelimit"]


async def test_a_chunked_upload_is_passed_on_chunk_by_chunk(suite):
    """Chunks reach media as the client sends them: a gateway that read the body first would
    hand media one piece."""
    token = await _token(suite)
    data = _payload(1_200_000)
    resp = await suite.client.post("/api/v1/media", content=_chunks(data), headers=auth(token))
    assert resp.status_code == 202, resp.text
    (upload,) = (await _state(suite))["uploads"]
    assert upload["complete"] is True
    assert upload["content_length"] is None
    assert upload["received"] == len(data)
    assert upload["sha256"] == hashlib.sha256(data).hexdigest()
    assert upload["chunks"] >= len(data) // 65536


async def test_an_upload_declared_over_the_cap_is_413_before_anything_is_forwarded(suite):
    token = await _token(suite)
    resp = await suite.client.post("/api/v1/media", content=_payload(CAP + 1), headers=auth(token))
    _is_problem(resp, 413, "payload-too-large")
    assert str(CAP) in resp.json()["detail"]
    assert resp.headers["connection"] == "close"
    assert (await _state(suite))["requests"] == []
    # exactly the cap passes
    ok = await suite.client.post("/api/v1/media", content=_payload(CAP), headers=auth(token))
    assert ok.status_code == 202, ok.text


async def test_a_chunked_upload_passing_the_cap_is_cut_and_413(suite):
    """Media sees the body break off (as if the client had gone) before the cap is passed; the
    client gets the 413."""
    token = await _token(suite)
    resp = await suite.client.post(
        "/api/v1/media", content=_chunks(_payload(CAP + 300_000)), headers=auth(token)
    )
    _is_problem(resp, 413, "payload-too-large")
    (upload,) = (await _state(suite))["uploads"]
    assert upload["complete"] is False
    assert 0 < upload["received"] <= CAP


async def test_other_bodies_keep_the_body_limit_even_under_media(suite):
    token = await _token(suite)
    big = _payload(1_100_000)
    for method, path in (
        ("POST", "/api/v1/posts"),
        ("PATCH", "/api/v1/media/m1"),
        ("POST", "/api/v1/media/"),
        ("PUT", "/api/v1/media"),
    ):
        resp = await suite.client.request(method, path, content=big, headers=auth(token))
        _is_problem(resp, 413, "payload-too-large")
        assert "1000000" in resp.json()["detail"], (method, path)
    assert (await _state(suite))["requests"] == []


async def test_an_upload_needs_a_token_and_counts_against_its_limit(database_urls):
    limits = {"default": {"per_token": 2, "per_address": 100, "window_seconds": 60}}
    async with build_suite(database_urls, gateway={"rate_limits": limits}) as suite:
        suite.router.mount("media", media_stub.create_app())  # type: ignore[arg-type]
        anonymous = await suite.client.post("/api/v1/media", content=b"x" * 10)
        _is_problem(anonymous, 401)
        token = await _token(suite)
        for _ in range(2):
            ok = await suite.client.post("/api/v1/media", content=b"x" * 10, headers=auth(token))
            assert ok.status_code == 202, ok.text
        limited = await suite.client.post("/api/v1/media", content=b"x" * 10, headers=auth(token))
        _is_problem(limited, 429, "rate-limited")
        assert len((await _state(suite))["uploads"]) == 2


# -- files -----------------------------------------------------------------------------------


async def test_a_file_streams_through_whole_with_its_length_and_headers(suite):
    token = await _token(suite)
    resp = await suite.client.get("/api/v1/media/m1/file", headers=auth(token))
    assert resp.status_code == 200, resp.text
    assert len(media_stub.FILE) > MAX_RESPONSE  # a JSON page this size would be a 502
    assert resp.content == media_stub.FILE
    assert resp.headers["content-length"] == str(len(media_stub.FILE))
    assert resp.headers["content-type"] == "application/pdf"
    assert resp.headers["etag"] == media_stub.ETAG
    assert resp.headers["accept-ranges"] == "bytes"
    assert resp.headers["cache-control"] == "private, max-age=60"  # media's, not the gateway's no-store
    assert resp.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["content-disposition"] == "attachment; filename*=UTF-8''file.pdf"
    preview = await suite.client.get("/api/v1/media/m1/preview", headers=auth(token))
    assert preview.status_code == 200
    assert preview.content == media_stub.FILE


async def test_a_file_of_any_type_passes_unchecked(suite):
    """A file is bytes, whatever its type says: not a JSON page to validate."""
    token = await _token(suite)
    resp = await suite.client.get("/api/v1/media/notjson/file", headers=auth(token))
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    assert resp.content == media_stub.FILE


async def test_range_and_conditional_requests_pass_both_ways(suite):
    token = await _token(suite)
    size = len(media_stub.FILE)

    part = await suite.client.get(
        "/api/v1/media/m1/file", headers={**auth(token), "Range": "bytes=1000-1099"}
    )
    assert part.status_code == 206, part.text
    assert part.content == media_stub.FILE[1000:1100]
    assert part.headers["content-range"] == f"bytes 1000-1099/{size}"
    assert part.headers["content-length"] == "100"

    tail = await suite.client.get("/api/v1/media/m1/file", headers={**auth(token), "Range": "bytes=1048000-"})
    assert tail.status_code == 206
    assert tail.content == media_stub.FILE[1048000:]

    stale = await suite.client.get(
        "/api/v1/media/m1/file", headers={**auth(token), "Range": "bytes=0-9", "If-Range": '"other"'}
    )
    assert stale.status_code == 200
    assert stale.content == media_stub.FILE

    beyond = await suite.client.get(
        "/api/v1/media/m1/file", headers={**auth(token), "Range": f"bytes={size}-"}
    )
    _is_problem(beyond, 416)
    assert beyond.headers["content-range"] == f"bytes */{size}"

    cached = await suite.client.get(
        "/api/v1/media/m1/file", headers={**auth(token), "If-None-Match": media_stub.ETAG}
    )
    assert cached.status_code == 304
    assert cached.content == b""
    assert cached.headers["etag"] == media_stub.ETAG
    assert "content-length" not in cached.headers or cached.headers["content-length"] == "0"

    forwarded = [r["headers"] for r in (await _state(suite))["requests"]]
    assert forwarded[0]["range"] == "bytes=1000-1099"
    assert forwarded[2]["if-range"] == '"other"'
    assert forwarded[4]["if-none-match"] == media_stub.ETAG


# -- signed links ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "opens"),
    [
        ("GET", "/api/v1/media/m1/file", b"expires=1&signature=s", [], True),
        ("GET", "/api/v1/media/m1/preview", b"signature=s&expires=1&x=y", [], True),
        ("GET", "/api/v1/media/m1/file", b"expir%65s=1&signature=s", [], True),  # as Starlette decodes it
        ("GET", "/api/v1/media/m1/file", b"expires=1", [], False),
        ("GET", "/api/v1/media/m1/file", b"signature=s", [], False),
        ("GET", "/api/v1/media/m1/file", b"expires=&signature=s", [], False),
        ("GET", "/api/v1/media/m1/file", b"expires=1&signature=", [], False),
        ("GET", "/api/v1/media/m1/file", b"expires=1&signature=s", [(b"authorization", b"Bearer t")], False),
        ("HEAD", "/api/v1/media/m1/file", b"expires=1&signature=s", [], False),
        ("POST", "/api/v1/media/m1/file", b"expires=1&signature=s", [], False),
        ("DELETE", "/api/v1/media/m1/file", b"expires=1&signature=s", [], False),
        ("GET", "/api/v1/media/m1", b"expires=1&signature=s", [], False),
        ("GET", "/api/v1/media", b"expires=1&signature=s", [], False),
        ("GET", "/api/v1/media/m1/file/", b"expires=1&signature=s", [], False),
        ("GET", "/api/v1/media/m1/file/x", b"expires=1&signature=s", [], False),
        ("GET", "/api/v1/media//file", b"expires=1&signature=s", [], False),
        ("GET", "/api/v1/media/m1/original", b"expires=1&signature=s", [], False),
        ("GET", "/api/v1/posts/m1/file", b"expires=1&signature=s", [], False),
        ("GET", "/api/v1/mediafile/m1/file", b"expires=1&signature=s", [], False),
    ],
)
def test_only_a_get_of_a_file_with_both_signature_parameters_and_no_authorization_opens(
    method, path, query, headers, opens
):
    scope = {"type": "http", "query_string": query, "headers": headers}
    assert opens_file_with_signature(method, path, scope) is opens


@pytest.mark.parametrize(
    ("path", "is_file"),
    [
        ("/api/v1/media/m1/file", True),
        ("/api/v1/media/m1/preview", True),
        ("/api/v1/media/m1", False),
        ("/api/v1/media/m1/files", False),
        ("/api/v1/media/file", False),
        ("/api/v1/media//preview", False),
    ],
)
def test_the_file_paths(path, is_file):
    assert is_media_file(path) is is_file


async def test_a_signed_link_reaches_media_without_a_bearer_and_nothing_else_does(database_urls):
    limits = {"default": {"per_token": 100, "per_address": 8, "window_seconds": 60}}
    async with build_suite(database_urls, gateway={"rate_limits": limits}) as suite:
        suite.router.mount("media", media_stub.create_app())  # type: ignore[arg-type]
        signed = {"expires": "1999999999", "signature": media_stub.GOOD_SIGNATURE}

        resp = await suite.client.get("/api/v1/media/m1/file", params=signed)
        assert resp.status_code == 200, resp.text
        assert resp.content == media_stub.FILE
        tampered = await suite.client.get("/api/v1/media/m1/preview", params={**signed, "signature": "bad"})
        _is_problem(tampered, 403, "bad-signature")  # media's answer: the gateway let it through
        assert len((await _state(suite))["requests"]) == 2

        for method, path, params, headers in (
            ("GET", "/api/v1/media/m1/file", {"expires": "1999999999"}, {}),
            ("GET", "/api/v1/media/m1/file", {"signature": "good"}, {}),
            ("GET", "/api/v1/media/m1", signed, {}),
            ("POST", "/api/v1/media/m1/file", signed, {}),
            ("GET", "/api/v1/media/m1/file", signed, {"Authorization": "Bearer not.a.token"}),
        ):
            refused = await suite.client.request(method, path, params=params, headers=headers)
            _is_problem(refused, 401)
            assert refused.headers["www-authenticate"].startswith("Bearer"), (method, path)
        assert len((await _state(suite))["requests"]) == 2  # none of them reached media

        # a signed link counts against the client address's limit (8 a minute here, 7 used)
        last = await suite.client.get("/api/v1/media/m1/file", params=signed)
        assert last.status_code == 200
        assert last.headers["ratelimit"].startswith('"default-address";r=0')
        limited = await suite.client.get("/api/v1/media/m1/file", params=signed)
        _is_problem(limited, 429, "rate-limited")
        assert len((await _state(suite))["requests"]) == 3


async def test_a_browser_may_ask_for_ranges_and_read_a_files_headers(database_urls):
    origin = "https://intranet.agency.example"
    async with build_suite(database_urls, gateway={"cors_origins": [origin]}) as suite:
        suite.router.mount("media", media_stub.create_app())  # type: ignore[arg-type]
        preflight = await suite.client.options(
            "/api/v1/media/m1/file",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization, range, if-range, if-none-match",
            },
        )
        assert preflight.status_code == 204, preflight.text
        signed = {"expires": "1999999999", "signature": media_stub.GOOD_SIGNATURE}
        resp = await suite.client.get(
            "/api/v1/media/m1/file", params=signed, headers={"Origin": origin, "Range": "bytes=0-9"}
        )
        assert resp.status_code == 206
        assert resp.headers["access-control-allow-origin"] == origin
        exposed = {h.strip() for h in resp.headers["access-control-expose-headers"].split(",")}
        assert {"Content-Range", "Accept-Ranges", "ETag", "Content-Disposition", "Location"} <= exposed


# -- with the media service itself ------------------------------------------------------------


def _multipart(data: bytes, boundary: str = "gateway-test") -> tuple[bytes, dict[str, str]]:
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="notes.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    )
    body = head.encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"content-type": f"multipart/form-data; boundary={boundary}"}


async def test_media_takes_a_streamed_upload_and_keeps_nothing_of_one_the_gateway_cut(database_urls):
    from sqlmodel import func, select

    from services.media.models import Media
    from services.media.storage import spool_dir

    async with build_suite(database_urls, gateway={"upload_max_bytes": 200_000}) as suite:
        token, _ = await person(suite.client, "ada")
        await suite.deliver()  # media knows the persona
        body, headers = _multipart(b"a" * 150_000)
        ok = await suite.client.post(
            "/api/v1/media", content=_chunks(body), headers={**auth(token), **headers}
        )
        assert ok.status_code == 202, ok.text
        assert ok.json()["size"] == 150_000

        body, headers = _multipart(b"b" * 300_000)
        cut = await suite.client.post(
            "/api/v1/media", content=_chunks(body), headers={**auth(token), **headers}
        )
        _is_problem(cut, 413, "payload-too-large")
        assert str(200_000) in cut.json()["detail"]  # the gateway's answer, not media's
        async with suite.media.state.database.sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(Media)) == 1
        assert list(spool_dir(suite.media.state.settings).iterdir()) == []


async def test_the_document_names_the_uploads_408_and_the_signed_way_into_a_file(database_urls):
    async with build_suite(database_urls) as suite:
        document = (await suite.client.get("/openapi.json")).json()
    upload = document["paths"]["/api/v1/media"]["post"]
    assert {"401", "408", "413", "429"} <= set(upload["responses"])
    assert upload["responses"]["408"]["content"]["application/problem+json"]
    for variant in ("file", "preview"):
        read = document["paths"][f"/api/v1/media/{{media_id}}/{variant}"]["get"]
        assert read["security"] == [{"bearer": []}, {}]  # a token, or none with a signed link
        assert "408" not in read["responses"]
    assert document["paths"]["/api/v1/media/{media_id}"]["get"]["security"] == [{"bearer": []}]
