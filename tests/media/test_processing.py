"""What an upload is decided to be, and what is stored for it (issue #20): the type from the
bytes only, markup refused, metadata gone from the stored image, bombs refused before they are
decoded, animations kept, previews bounded."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageFile

from services.media.processing import Processed, Rejected, process
from services.media.settings import DEFAULT_ALLOWED
from tests.media import samples

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def run(
    tmp_path: Path,
    data: bytes,
    *,
    declared: str | None = None,
    allowed: tuple[str, ...] = DEFAULT_ALLOWED,
    max_pixels: int = 50_000_000,
    preview_pixels: int = 640,
) -> Processed:
    source = tmp_path / "upload"
    source.write_bytes(data)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return process(
        source,
        work,
        allowed=allowed,
        max_pixels=max_pixels,
        preview_pixels=preview_pixels,
        declared_type=declared,
    )


def refused(tmp_path: Path, data: bytes, **options: object) -> str:
    """The reason ``data`` is refused; nothing may be left in the work folder."""
    with pytest.raises(Rejected) as caught:
        run(tmp_path, data, **options)  # type: ignore[arg-type]
    assert list((tmp_path / "work").iterdir()) == []
    assert str(caught.value) == caught.value.reason
    return caught.value.reason


# -- the type comes from the bytes ------------------------------------------------------------


def test_a_png_declared_as_a_pdf_is_a_png(tmp_path: Path) -> None:
    result = run(tmp_path, samples.png_bytes(), declared="application/pdf")
    assert (result.media_type, result.content_type) == ("image", "image/png")
    assert image_of(result.path).format == "PNG"


@pytest.mark.parametrize(
    "data",
    [
        samples.HTML,
        b"<html><body>hi</body></html>",
        b"\xef\xbb\xbf\r\n\t <HTML lang=en>",
        b"<!-- made by hand --><div>x</div>",
        b"<script>alert(1)</script>",
        samples.SVG,
        b"<svg onload=alert(1)>",
        b"  \n<SVG xmlns='http://www.w3.org/2000/svg'/>",
        b"<?XML version='1.0'?><root/>",
        b"<!DOCTYPE svg PUBLIC '-//W3C//DTD SVG 1.1//EN'><svg/>",
    ],
    ids=[
        "html",
        "html-tag",
        "bom-spaces-upper",
        "comment",
        "script",
        "svg",
        "svg-tag",
        "svg-upper",
        "xml",
        "doctype",
    ],
)
def test_html_and_svg_are_refused_whatever_they_are_declared(tmp_path: Path, data: bytes) -> None:
    reason = refused(tmp_path, data, declared="image/png")
    assert "SVG and HTML are not accepted" in reason


def test_text_that_only_mentions_markup_is_text(tmp_path: Path) -> None:
    result = run(tmp_path, b"Use <html> tags sparingly.\n", declared="text/html")
    assert result.content_type == "text/plain"


def test_a_program_is_refused_naming_its_type(tmp_path: Path) -> None:
    reason = refused(tmp_path, samples.exe_bytes(), declared="text/csv")
    assert "application/x-msdownload" in reason


@pytest.mark.parametrize(
    ("data", "declared", "expected"),
    [
        (samples.CSV_TEXT, "text/csv", "text/csv"),
        (samples.CSV_TEXT, "text/csv; charset=utf-8", "text/csv"),
        (samples.CSV_TEXT, "application/pdf", "text/plain"),
        (samples.CSV_TEXT, None, "text/plain"),
        (b"\xef\xbb\xbfplain words, with a BOM\n", "text/plain", "text/plain"),
        ("Grüße aus Zürich - ✓\n".encode(), "image/png", "text/plain"),
    ],
)
def test_text_and_csv_are_accepted_as_they_are(
    tmp_path: Path, data: bytes, declared: str | None, expected: str
) -> None:
    result = run(tmp_path, data, declared=declared)
    assert (result.media_type, result.content_type) == ("document", expected)
    assert result.path == tmp_path / "upload"
    assert result.path.read_bytes() == data
    assert result.preview is None


@pytest.mark.parametrize(
    ("data", "declared", "expected"),
    [
        (b"BMI,height\n21.5,180\n", "text/csv", "text/csv"),  # "BM": a bitmap's signature
        (b"MZ is where the program starts\n", "application/x-msdownload", "text/plain"),
        (b"ID3 tags, a list\n", None, "text/plain"),
    ],
)
def test_text_that_starts_like_a_short_signature_is_text(
    tmp_path: Path, data: bytes, declared: str | None, expected: str
) -> None:
    assert run(tmp_path, data, declared=declared).content_type == expected


def test_a_real_bitmap_is_a_bitmap(tmp_path: Path) -> None:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "BMP")
    assert "image/bmp" in refused(tmp_path, out.getvalue(), declared="text/csv")


@pytest.mark.parametrize(
    "data",
    [b"abc\x00def", b"\xff\xfe\x00h\x00i", b"caf\xe9 latin-1", b"ends mid-character \xe2\x82"],
    ids=["nul", "utf16", "latin1", "cut-utf8"],
)
def test_bytes_that_are_not_utf8_text_are_refused(tmp_path: Path, data: bytes) -> None:
    assert "application/octet-stream" in refused(tmp_path, data, declared="text/plain")


def test_a_docx_is_recognised_and_kept_as_it_is(tmp_path: Path) -> None:
    data = samples.docx_bytes()
    result = run(tmp_path, data, declared="application/octet-stream")
    assert (result.media_type, result.content_type) == ("document", DOCX)
    assert result.path.read_bytes() == data


def test_a_pdf_is_recognised_and_kept_as_it_is(tmp_path: Path) -> None:
    data = samples.pdf_bytes()
    result = run(tmp_path, data, declared="image/jpeg")
    assert (result.media_type, result.content_type, result.width) == ("document", "application/pdf", None)
    assert result.path.read_bytes() == data


def test_a_type_the_operator_does_not_allow_is_refused(tmp_path: Path) -> None:
    allowed = tuple(t for t in DEFAULT_ALLOWED if t != "image/gif")
    reason = refused(tmp_path, samples.animated_gif_bytes(), allowed=allowed)
    assert "image/gif" in reason
    assert "application/pdf" in refused(tmp_path, samples.pdf_bytes(), allowed=("image/png",))


def test_an_allowed_image_type_that_cannot_be_cleaned_is_refused(tmp_path: Path) -> None:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "BMP")
    reason = refused(tmp_path, out.getvalue(), allowed=(*DEFAULT_ALLOWED, "image/bmp"))
    assert "image/bmp" in reason


# -- images are cleaned ------------------------------------------------------------------------


def test_a_photo_loses_its_metadata_and_is_turned_upright(tmp_path: Path) -> None:
    original = samples.jpeg_with_gps()
    assert b"Exif\x00\x00" in original  # the sample does carry what must go

    result = run(tmp_path, original, declared="image/jpeg")

    stored = result.path.read_bytes()
    assert result.path.parent == tmp_path / "work"
    for hidden in (
        b"Exif\x00\x00",
        samples.CAMERA_MAKE.encode(),
        b"adobe:ns:meta",
        samples.JPEG_COMMENT,
        b"ICC_PROFILE",
    ):
        assert hidden not in stored, hidden
    image = image_of(result.path)
    assert image.format == "JPEG"
    assert dict(image.getexif()) == {}
    assert not {"exif", "xmp", "comment", "icc_profile"} & set(image.info)
    # Orientation 6: the 40x20 picture, red on the left, is shown 20x40, red on top.
    assert image.size == (20, 40)
    assert (result.width, result.height) == (20, 40)
    rgb = image.convert("RGB")
    assert _near(rgb.getpixel((10, 5)), samples.RED)
    assert _near(rgb.getpixel((10, 35)), samples.BLUE)
    # The preview is as clean, and upright too.
    assert result.preview is not None
    preview_bytes = result.preview.read_bytes()
    assert b"Exif" not in preview_bytes
    assert b"ICCP" not in preview_bytes
    assert image_of(result.preview).size == (20, 40)


def test_a_png_loses_its_text_chunks(tmp_path: Path) -> None:
    data = samples.png_bytes(text=samples.PNG_TEXT)
    assert samples.PNG_TEXT.encode() in data
    result = run(tmp_path, data)
    assert samples.PNG_TEXT.encode() not in result.path.read_bytes()
    assert image_of(result.path).text == {}


def test_a_truncated_image_is_refused(tmp_path: Path) -> None:
    assert "damaged" in refused(tmp_path, samples.truncated_jpeg_bytes())


# -- decompression bombs -----------------------------------------------------------------------


def test_a_bomb_is_refused_without_being_decoded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[object] = []
    original_load = ImageFile.ImageFile.load

    def load(self: ImageFile.ImageFile) -> object:
        decoded.append(self)
        return original_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    bomb = samples.bomb_png_bytes()
    assert len(bomb) < 100

    reason = refused(tmp_path, bomb, declared="image/png")

    assert reason.startswith("Image too large")
    assert decoded == []
    # The same file within the limit is decoded (the probe does see decoding).
    run(tmp_path, samples.png_bytes(10, 10), max_pixels=100)
    assert decoded


def test_too_many_pixels_are_refused_even_where_pillow_only_warns(tmp_path: Path) -> None:
    """Pillow raises above twice its limit and only warns between once and twice: the
    service's own check refuses the image either way."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        reason = refused(tmp_path, samples.png_bytes(100, 100), max_pixels=9_999)
    assert reason.startswith("Image too large")
    assert "100x100" in reason
    assert run(tmp_path, samples.png_bytes(100, 100), max_pixels=10_000).width == 100


def test_an_animation_is_limited_by_its_frames_together(tmp_path: Path) -> None:
    gif = samples.animated_gif_bytes(30, 20)  # 3 frames of 600 pixels
    assert "Animation too large" in refused(tmp_path, gif, max_pixels=899)
    assert run(tmp_path, gif, max_pixels=900).width == 30


# -- animations and previews -------------------------------------------------------------------


def test_an_animated_gif_keeps_its_frames(tmp_path: Path) -> None:
    result = run(tmp_path, samples.animated_gif_bytes())
    image = image_of(result.path)
    assert (image.format, result.content_type) == ("GIF", "image/gif")
    assert image.n_frames == len(samples.ANIMATION_DURATIONS)
    durations = []
    colors = []
    for index in range(image.n_frames):
        image.seek(index)
        durations.append(image.info["duration"])
        colors.append(image.convert("RGB").getpixel((5, 5)))
    assert tuple(durations) == samples.ANIMATION_DURATIONS
    assert colors == [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    assert image.info.get("loop") == 0
    assert result.preview is not None
    assert getattr(image_of(result.preview), "n_frames", 1) == 1


def test_an_animated_webp_keeps_its_frames(tmp_path: Path) -> None:
    result = run(tmp_path, samples.webp_bytes(frames=4))
    image = image_of(result.path)
    assert (image.format, result.content_type) == ("WEBP", "image/webp")
    assert image.n_frames == 4


@pytest.mark.parametrize(
    ("size", "preview_size"), [((1000, 500), (64, 32)), ((300, 900), (21, 64)), ((20, 10), (20, 10))]
)
def test_the_preview_fits_within_the_preview_size(
    tmp_path: Path, size: tuple[int, int], preview_size: tuple[int, int]
) -> None:
    result = run(tmp_path, samples.png_bytes(*size), preview_pixels=64)
    assert (result.width, result.height) == size
    assert result.preview is not None
    assert result.preview.parent == tmp_path / "work"
    preview = image_of(result.preview)
    assert (preview.format, result.preview_content_type) == ("WEBP", "image/webp")
    assert preview.size == preview_size == (result.preview_width, result.preview_height)
    assert image_of(result.path).size == size


def test_a_transparent_image_keeps_its_transparency(tmp_path: Path) -> None:
    result = run(tmp_path, samples.png_bytes(alpha=True))
    assert image_of(result.path).mode == "RGBA"
    assert result.preview is not None
    preview = image_of(result.preview)
    assert preview.mode == "RGBA"
    assert preview.getpixel((0, 0))[3] == 128


def image_of(path: Path) -> Any:
    """The image in ``path``, read from memory (no file left open)."""
    return Image.open(io.BytesIO(path.read_bytes()))


def _near(pixel: object, color: tuple[int, int, int], tolerance: int = 40) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, color, strict=True))
