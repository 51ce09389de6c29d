"""Serving a media's file and preview (decision 0036): the stored bytes (an image without its
metadata), ranges, entity tags, the headers that keep a file inert, signed links and what
withdraws a media from every reader."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from PIL import Image

from services.media import links
from tests.helpers import auth
from tests.media.samples import (
    CAMERA_MAKE,
    animated_gif_bytes,
    docx_bytes,
    jpeg_with_gps,
    pdf_bytes,
)
from tests.media.support import attach, media_client, people, send_events, upload, upload_ready

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def signed(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


async def test_a_photo_is_served_upright_and_without_its_metadata(suite):
    ((token, _),) = await people(suite, "ann")
    original = jpeg_with_gps()
    assert b"Exif\x00\x00" in original and CAMERA_MAKE.encode() in original

    media = await upload_ready(suite, token, original, "holiday.jpg", "image/jpeg")
    resp = await suite.client.get(f"/api/v1/media/{media['id']}/file", headers=auth(token))

    assert resp.status_code == 200, resp.text
    stored = resp.content
    assert b"Exif\x00\x00" not in stored and CAMERA_MAKE.encode() not in stored
    assert b"taken at home" not in stored and b"xmpmeta" not in stored
    image = Image.open(io.BytesIO(stored))
    assert image.format == "JPEG" and not image.getexif()
    assert image.size == (20, 40) == (media["width"], media["height"])  # turned upright
    pixel = image.convert("RGB").getpixel((10, 5))
    assert isinstance(pixel, tuple)
    red, green, blue = pixel[:3]
    assert red > 200 and blue < 60 and green < 60  # red on top
    assert resp.headers["content-type"] == "image/jpeg"
    assert resp.headers["content-disposition"].startswith("inline;")
    assert media["sha256"] != resp.headers["etag"].strip('"')  # the stored file is not what was sent
    preview = await suite.client.get(f"/api/v1/media/{media['id']}/preview", headers=auth(token))
    assert preview.status_code == 200
    small = Image.open(io.BytesIO(preview.content))
    assert max(small.size) <= 640 and not small.getexif()
    assert b"Exif\x00\x00" not in preview.content


@pytest.mark.parametrize(
    ("data", "name", "declared", "content_type"),
    [
        (pdf_bytes(), "report.pdf", "application/pdf", "application/pdf"),
        (docx_bytes(), "minutes.docx", DOCX, DOCX),
        (b"Plain words\nand more\n", "notes.txt", "text/plain", "text/plain"),
    ],
)
async def test_documents_are_stored_as_sent_and_downloaded(suite, data, name, declared, content_type):
    ((token, _),) = await people(suite, "bo")
    media = await upload_ready(suite, token, data, name, declared)

    resp = await suite.client.get(f"/api/v1/media/{media['id']}/file", headers=auth(token))

    assert resp.status_code == 200
    assert resp.content == data
    assert media["media_type"] == "document" and media["content_type"] == content_type
    assert resp.headers["content-type"].split(";")[0] == content_type
    assert resp.headers["content-disposition"] == f"attachment; filename=\"{name}\"; filename*=UTF-8''{name}"
    assert resp.headers["content-length"] == str(len(data))
    assert media["preview"] is None and media["preview_url"] is None
    no_preview = await suite.client.get(f"/api/v1/media/{media['id']}/preview", headers=auth(token))
    assert no_preview.status_code == 404


async def test_every_file_answer_keeps_the_file_inert(suite):
    ((token, _),) = await people(suite, "cy")
    media = await upload_ready(suite, token, pdf_bytes(), "résumé «final».pdf", "application/pdf")

    resp = await suite.client.get(f"/api/v1/media/{media['id']}/file", headers=auth(token))

    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert resp.headers["accept-ranges"] == "bytes"
    assert resp.headers["cache-control"] == "private, max-age=60"
    disposition = resp.headers["content-disposition"]
    assert disposition.startswith("attachment; ")
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%20%C2%ABfinal%C2%BB.pdf" in disposition


async def test_ranges(suite):
    ((token, _),) = await people(suite, "di")
    data = pdf_bytes("ranges " * 40)
    size = len(data)
    media = await upload_ready(suite, token, data, "r.pdf", "application/pdf")
    path = f"/api/v1/media/{media['id']}/file"

    async def get(range_header: str, **headers: str) -> httpx.Response:
        resp: httpx.Response = await suite.client.get(
            path, headers={**auth(token), "Range": range_header, **headers}
        )
        return resp

    part = await get("bytes=10-19")
    assert part.status_code == 206 and part.content == data[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{size}" and part.headers["content-length"] == "10"
    tail = await get("bytes=-7")
    assert tail.status_code == 206 and tail.content == data[-7:]
    rest = await get(f"bytes={size - 5}-")
    assert rest.status_code == 206 and rest.content == data[-5:]
    past_end = await get(f"bytes={size - 3}-{size + 100}")
    assert past_end.status_code == 206 and past_end.content == data[-3:]
    several = await get("bytes=0-1,5-6")
    assert several.status_code == 200 and several.content == data
    other_unit = await get("items=0-1")
    assert other_unit.status_code == 200 and other_unit.content == data
    for bad in (f"bytes={size}-", "bytes=9-3", "bytes=-0", "bytes=abc", "bytes=-", "bytes=1-2-3"):
        resp = await get(bad)
        assert resp.status_code == 416, bad
        assert resp.headers["content-range"] == f"bytes */{size}"
        assert resp.headers["content-type"] == "application/problem+json"
    # If-Range with another tag: the whole file.
    stale = await get("bytes=0-3", **{"If-Range": '"not-it"'})
    assert stale.status_code == 200 and stale.content == data
    fresh = await get("bytes=0-3", **{"If-Range": part.headers["etag"]})
    assert fresh.status_code == 206 and fresh.content == data[:4]


async def test_entity_tags(suite):
    ((token, _),) = await people(suite, "ed")
    media = await upload_ready(suite, token, pdf_bytes(), "e.pdf", "application/pdf")
    path = f"/api/v1/media/{media['id']}/file"
    first = await suite.client.get(path, headers=auth(token))
    tag = first.headers["etag"]
    assert tag.startswith('"') and tag.endswith('"')

    same = await suite.client.get(path, headers={**auth(token), "If-None-Match": tag})
    assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == tag
    listed = await suite.client.get(path, headers={**auth(token), "If-None-Match": f'"x", W/{tag}'})
    assert listed.status_code == 304
    other = await suite.client.get(path, headers={**auth(token), "If-None-Match": '"other"'})
    assert other.status_code == 200 and other.content == pdf_bytes()
    # The same bytes uploaded again are the same stored file: the same tag.
    again = await upload_ready(suite, token, pdf_bytes(), "copy.pdf", "application/pdf")
    copy = await suite.client.get(f"/api/v1/media/{again['id']}/file", headers=auth(token))
    assert copy.headers["etag"] == tag


async def test_an_animation_keeps_its_frames(suite):
    ((token, _),) = await people(suite, "fi")
    media = await upload_ready(suite, token, animated_gif_bytes(), "spin.gif", "image/gif")
    resp = await suite.client.get(f"/api/v1/media/{media['id']}/file", headers=auth(token))
    image = Image.open(io.BytesIO(resp.content))
    assert image.format == "GIF" and getattr(image, "n_frames", 1) > 1


async def test_signed_links(suite):
    ((token, _),) = await people(suite, "gi")
    media = await upload_ready(suite, token)
    other = await upload_ready(suite, token)
    path, query = signed(media["url"])
    preview_path, preview_query = signed(media["preview_url"])

    # No token needed; the bytes are those a bearer reads.
    async with media_client(suite) as client:
        by_link = await client.get(path, params=query)
        assert by_link.status_code == 200
        by_token = await client.get(path, headers=auth(token))
        assert by_link.content == by_token.content
        assert (await client.get(preview_path, params=preview_query)).status_code == 200

        async def refused(at: str, params: dict[str, str], slug: str) -> None:
            resp = await client.get(at, params=params)
            assert resp.status_code == 403, (at, params)
            assert resp.json()["type"].endswith(f"/{slug}")

        await refused(path, {**query, "signature": query["signature"][::-1]}, "bad-signature")
        await refused(path, {**query, "expires": str(int(query["expires"]) + 60)}, "bad-signature")
        await refused(path, {"expires": query["expires"]}, "bad-signature")
        await refused(path, {"signature": query["signature"]}, "bad-signature")
        await refused(path, {**query, "expires": "soon"}, "bad-signature")
        # A link opens only its own media and variant.
        await refused(f"/api/v1/media/{other['id']}/file", query, "bad-signature")
        await refused(f"/api/v1/media/{media['id']}/preview", query, "bad-signature")
        # Checked before any lookup: a link to no media is refused as any other.
        await refused(f"/api/v1/media/{uuid.uuid4()}/file", query, "bad-signature")
        # An expired link, signed properly.
        key = links.signing_key(suite.media.state.settings)
        past = int(time.time()) - 1
        old = {"expires": str(past), "signature": links.signature(key, uuid.UUID(media["id"]), "file", past)}
        await refused(path, old, "link-expired")
        # A link to a media that is gone is a 404, as for a bearer.
        missing = uuid.uuid4()
        later = int(time.time()) + 60
        gone = {"expires": str(later), "signature": links.signature(key, missing, "file", later)}
        assert (await client.get(f"/api/v1/media/{missing}/file", params=gone)).status_code == 404
        # And the gateway lets a signed link through without a token.
    through = await suite.client.get(path, params=query)
    assert through.status_code == 200 and through.content == by_link.content


async def test_links_are_signed_with_a_key_derived_from_the_internal_token_unless_one_is_set(suite):
    settings = suite.media.state.settings
    derived = links.signing_key(settings)
    assert derived != settings.internal_token.get_secret_value().encode() and len(derived) == 32
    configured = settings.model_copy(update={"url_key": type(settings.url_key)("a-key-of-its-own")})
    assert links.signing_key(configured) == b"a-key-of-its-own"


async def test_a_file_not_processed_yet(suite):
    (token, _), (other, _) = await people(suite, "hu", "iv")
    media = await upload(suite, token, pdf_bytes(), "wait.pdf", "application/pdf")
    resp = await suite.client.get(f"/api/v1/media/{media['id']}/file", headers=auth(token))
    assert resp.status_code == 409 and resp.json()["type"].endswith("/media-not-ready")
    # Anyone else: as missing.
    for path in (f"/api/v1/media/{media['id']}/file", f"/api/v1/media/{media['id']}"):
        assert (await suite.client.get(path, headers=auth(other))).status_code == 404


async def test_others_never_read_an_unattached_upload(suite):
    (token, _), (other, _) = await people(suite, "jo", "ka")
    media = await upload_ready(suite, token)
    missing = await suite.client.get(f"/api/v1/media/{uuid.uuid4()}", headers=auth(other))
    for path in (f"/api/v1/media/{media['id']}", f"/api/v1/media/{media['id']}/file"):
        resp = await suite.client.get(path, headers=auth(other))
        assert resp.status_code == 404
        assert resp.json()["detail"] == missing.json()["detail"]


async def test_a_withdrawn_media_is_served_to_no_one_until_it_is_back(suite):
    ((token, persona),) = await people(suite, "lu")
    media = await upload_ready(suite, token)
    post_id = str(uuid.uuid4())
    assert (await attach(suite, "post", post_id, persona, [media["id"]])).status_code == 200
    path, query = signed(media["url"])
    assert (await suite.client.get(path, params=query)).status_code == 200

    await send_events(suite, ("post.deleted", post_id, {"id": post_id}), source="feed")

    assert (await suite.client.get(path, params=query)).status_code == 404
    assert (await suite.client.get(path, headers=auth(token))).status_code == 404
    own = await suite.client.get(f"/api/v1/media/{media['id']}", headers=auth(token))
    assert own.status_code == 200 and own.json()["url"] is None  # the uploader still sees it

    await send_events(suite, ("post.restored", post_id, {"id": post_id}), source="feed")

    assert (await suite.client.get(path, params=query)).status_code == 200
    assert (await suite.client.get(path, headers=auth(token))).status_code == 200


async def test_a_store_that_lost_the_bytes_or_is_away_is_not_a_500(suite, monkeypatch):
    ((token, _),) = await people(suite, "mo")
    media = await upload_ready(suite, token, pdf_bytes("lost"), "lost.pdf", "application/pdf")
    storage = suite.media.state.storage
    path = f"/api/v1/media/{media['id']}/file"

    def away(key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        async def chunks() -> AsyncIterator[bytes]:
            raise OSError("the store is away")
            yield b""

        return chunks()

    monkeypatch.setattr(storage, "read", away)
    resp = await suite.client.get(path, headers=auth(token))
    assert resp.status_code == 503 and resp.headers["retry-after"]
    monkeypatch.undo()

    keys = [k async for k in storage.keys("")]
    for key in keys:
        await storage.delete(key)
    resp = await suite.client.get(path, headers=auth(token))
    assert resp.status_code == 404 and resp.headers["content-type"] == "application/problem+json"
