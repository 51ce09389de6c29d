"""Files end to end, through the gateway to the real processes (decision 0036): a photo with its
GPS position and a PDF are uploaded, processed by media's own worker, attached to a post, and
read back by another member of the organisation, the photo without its metadata; the author's
personal persona and a stranger of the personal context get the 404 of a missing file."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.e2e.people import Headers, Person
from tests.media.samples import jpeg_with_gps, pdf_bytes
from tests.processes import LIMITS, Running, eventually

pytestmark = pytest.mark.e2e


def _upload(client: httpx.Client, headers: Headers, name: str, data: bytes, content_type: str) -> str:
    def sent() -> httpx.Response | None:  # media learns of a new persona through an event
        resp = client.post("/api/v1/media", files={"file": (name, data, content_type)}, headers=headers)
        return resp if resp.status_code == 202 else None

    resp = eventually(sent, timeout=60)
    assert resp is not None, "the upload was never accepted"
    return str(resp.json()["id"])


def _ready(client: httpx.Client, headers: Headers, media_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        media: dict[str, Any] = client.get(f"/api/v1/media/{media_id}", headers=headers).json()
        return media if media["status"] != "processing" else None

    media = eventually(done, timeout=60)
    assert media is not None and media["status"] == "ready", media
    return media


def test_a_photo_and_a_pdf_on_a_post_are_read_by_another_member(running: Running) -> None:
    with httpx.Client(base_url=running.url(), timeout=30, limits=LIMITS) as client:
        author, reader = Person(client, running, "imogen"), Person(client, running, "pascal")
        pro = author.headers("professional")
        photo = _upload(client, pro, "site.jpg", jpeg_with_gps(), "image/jpeg")
        pdf = _upload(client, pro, "minutes.pdf", pdf_bytes(), "application/pdf")
        assert _ready(client, pro, photo)["media_type"] == "image"
        assert _ready(client, pro, pdf)["content_type"] == "application/pdf"
        posted = client.post(
            "/api/v1/posts",
            json={"body": "Site visit, and the minutes", "media_ids": [photo, pdf]},
            headers=pro,
        )
        assert posted.status_code == 201, posted.text
        assert [item["id"] for item in posted.json()["media"]] == [photo, pdf]

        seen = reader.headers("professional")
        image = client.get(f"/api/v1/media/{photo}/file", headers=seen)
        assert image.status_code == 200, image.text
        assert image.headers["content-type"] == "image/jpeg"
        assert b"Exif" not in image.content[:4096]
        assert not Image.open(io.BytesIO(image.content)).getexif()
        document = client.get(f"/api/v1/media/{pdf}/file", headers=seen)
        assert document.status_code == 200, document.text
        assert document.content == pdf_bytes()
        assert document.headers["content-disposition"].startswith("attachment")
        link = client.get(f"/api/v1/media/{photo}", headers=seen).json()["url"]
        assert client.get(link).content == image.content  # the signed link, without a token

        # the other context sees none of it: the author's personal persona, and a stranger's
        for other in (author.headers("personal"), reader.headers("personal")):
            for media_id in (photo, pdf):
                missing = client.get(f"/api/v1/media/{media_id}/file", headers=other)
                assert missing.status_code == 404, missing.text
