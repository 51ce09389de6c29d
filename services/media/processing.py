"""What an upload is, and the cleaned file that is stored for it (decision 0036, issue #20).

Synchronous and CPU-bound: the worker runs ``process`` in a thread. It never trusts what the
client said a file is: the type is decided from the bytes with ``filetype`` (magic numbers),
except plain text, which has no magic number: valid UTF-8 without a NUL byte is ``text/plain``
(``text/csv`` when the client declared CSV: the one place the declared type counts, and it can
only choose between two inert text types). Text that starts like markup (HTML, SVG, XML) is
refused outright: a browser that ignored our headers could run it.

Images (JPEG, PNG, WebP, GIF) are decoded with Pillow and written again, which is the only
sure way to drop what a camera or an editor hid in them (EXIF with the GPS position, XMP,
comments, text chunks, ICC profiles) and to neutralise a file that is an image and something
else at once. Before anything is decoded, the pixel count read from the header is checked: a
small file that declares a huge canvas (a decompression bomb) is refused without allocating
it. Documents (PDF, Office, text) are kept as they are: rewriting them is not ours to do, and
they are served as downloads in a sandbox.
"""

from __future__ import annotations

import codecs
import contextlib
import tempfile
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filetype  # type: ignore[import-untyped]
from PIL import Image, ImageOps, ImageSequence

TEXT = "text/plain"
CSV = "text/csv"
DOCUMENTS = frozenset(
    {
        "application/pdf",
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation",
        TEXT,
        CSV,
    }
)
UNKNOWN = "application/octet-stream"

# The images that are cleaned and kept in their own format: Pillow's name, the file suffix,
# and whether the format holds an animation worth keeping (a JPEG's further "frames" are an
# MPO's depth map or gain map: only the picture itself is kept).
IMAGE_FORMATS = {
    "image/jpeg": ("JPEG", ".jpg", False),
    "image/png": ("PNG", ".png", True),
    "image/gif": ("GIF", ".gif", True),
    "image/webp": ("WEBP", ".webp", True),
}
# filetype names an animated PNG ``image/apng``; it is a PNG (same signature, served and
# shown as one), and is kept as one with its frames.
ALIASES = {"image/apng": "image/png"}

# Text starting like this (after whitespace and a byte-order mark, in any case) is markup a
# browser would render: the HTML signatures of the WHATWG MIME sniffing standard, XML, SVG.
MARKUP = (
    "<!doctype html",
    "<html",
    "<head",
    "<script",
    "<iframe",
    "<h1",
    "<div",
    "<font",
    "<table",
    "<a ",
    "<a>",
    "<style",
    "<title",
    "<b ",
    "<b>",
    "<body",
    "<br",
    "<p ",
    "<p>",
    "<!--",
    "<?xml",
    "<svg",
    "<!doctype svg",
    "<!doctype",
)
MARKUP_HEAD = max(len(m) for m in MARKUP)

JPEG_QUALITY = 88
WEBP_QUALITY = 88
PREVIEW_QUALITY = 80
# An animation's frames are all held in memory while it is written again: their pixels
# together may be at most this many times ``max_pixels`` (each frame alone at most once).
ANIMATION_BUDGET = 2
TEXT_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Processed:
    media_type: str  # "image", "document" or "other"
    content_type: str  # decided from the bytes
    path: Path  # the bytes to store (a new file in workdir, or the source itself)
    width: int | None = None
    height: int | None = None
    preview: Path | None = None  # images only
    preview_content_type: str | None = None
    preview_width: int | None = None
    preview_height: int | None = None


class Rejected(Exception):
    """The file is refused for good; ``reason`` is a short sentence for the uploader."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def media_type_of(content_type: str) -> str:
    """``image``, ``document`` or ``other``, from a decided content type."""
    if content_type.startswith("image/"):
        return "image"
    return "document" if content_type in DOCUMENTS else "other"


def process(
    source: Path,
    workdir: Path,
    *,
    allowed: Collection[str],
    max_pixels: int,
    preview_pixels: int,
    declared_type: str | None = None,
) -> Processed:
    """Decides what ``source`` is and prepares what is stored for it; ``Rejected`` when it is
    refused. Files written for it go to ``workdir`` (the caller removes them once stored);
    nothing is left there when it raises."""
    content_type = detect(source, declared_type)
    if content_type not in allowed:
        raise Rejected(f"Files of type {content_type} are not accepted.")
    if content_type.startswith("image/"):
        if content_type not in IMAGE_FORMATS:
            supported = ", ".join(sorted(IMAGE_FORMATS))
            raise Rejected(f"Images of type {content_type} are not supported (only {supported}).")
        return _image(source, Path(workdir), content_type, max_pixels, preview_pixels)
    return Processed(media_type=media_type_of(content_type), content_type=content_type, path=source)


# -- the type --------------------------------------------------------------------------------


def detect(source: Path, declared_type: str | None = None) -> str:
    """The content type of the file's bytes (see the module's docstring); ``Rejected`` for
    markup. ``application/octet-stream`` when nothing is recognised.

    Some of ``filetype``'s signatures are two or three letters (``BM`` for a bitmap, ``MZ``
    for a program, ``ID3`` for an MP3): a CSV file starting ``BMI,height`` would be called a
    bitmap. So only the types media keeps (its images and documents) are taken from
    ``filetype`` outright; a file it calls anything else is text when it is UTF-8 without a
    NUL byte, which no real bitmap, program or sound file is."""
    kind = filetype.guess(str(source))
    mime = ALIASES.get(str(kind.mime), str(kind.mime)) if kind is not None else UNKNOWN
    if mime in IMAGE_FORMATS or mime in DOCUMENTS or not _is_text(source):
        return mime
    declared = (declared_type or "").split(";", 1)[0].strip().lower()
    return CSV if declared == CSV else TEXT


def _is_text(source: Path) -> bool:
    """Whether the whole file is UTF-8 (ASCII included) without a NUL byte, read in chunks.
    ``Rejected`` when it starts like markup."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    head = ""
    with source.open("rb") as reader:
        while chunk := reader.read(TEXT_CHUNK):
            if b"\x00" in chunk:
                return False
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError:
                return False
            if len(head) < MARKUP_HEAD:
                head = (head + text).lstrip("\ufeff \t\r\n\f\v")
                _refuse_markup(head)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def _refuse_markup(head: str) -> None:
    start = head[:MARKUP_HEAD].lower()
    if any(start.startswith(marker) for marker in MARKUP):
        raise Rejected("SVG and HTML are not accepted.")


# -- images ----------------------------------------------------------------------------------


def _image(source: Path, workdir: Path, content_type: str, max_pixels: int, preview_pixels: int) -> Processed:
    pillow_format, suffix, animations = IMAGE_FORMATS[content_type]
    # Pillow's own guard (raising above twice its limit, warning above it) also checks what
    # it meets while reading frames; the explicit checks below are the ones that decide. Its
    # limit is process-wide: set for the call and put back after, so that nothing else in the
    # process inherits an upload's limit (the worker passes the same setting every time).
    previous_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    written: list[Path] = []
    try:
        with _pillow_errors(), Image.open(source, formats=[pillow_format]) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise Rejected(f"Image too large: {width}x{height} pixels (at most {max_pixels}).")
            frames = getattr(image, "n_frames", 1) if animations else 1
            if frames * width * height > ANIMATION_BUDGET * max_pixels:
                raise Rejected(
                    f"Animation too large: {frames} frames of {width}x{height} pixels "
                    f"(at most {ANIMATION_BUDGET * max_pixels} pixels in all)."
                )
            target = _new_file(workdir, suffix, written)
            if frames > 1:
                stored = _write_animation(image, target, pillow_format, max_pixels)
            else:
                stored = _write_still(image, target, pillow_format, source)
            preview_path = _new_file(workdir, ".webp", written)
            preview = _write_preview(stored, preview_path, preview_pixels)
            result = Processed(
                media_type="image",
                content_type=content_type,
                path=target,
                width=stored.width,
                height=stored.height,
                preview=preview_path,
                preview_content_type="image/webp",
                preview_width=preview.width,
                preview_height=preview.height,
            )
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    finally:
        Image.MAX_IMAGE_PIXELS = previous_limit
    return result


@contextlib.contextmanager
def _pillow_errors() -> Iterator[None]:
    """Turns what Pillow raises on a file it cannot read into ``Rejected``. Its plugins raise
    many kinds (``OSError`` "truncated", ``SyntaxError``, ``ValueError``, ``EOFError``,
    ``struct.error``…), so any exception counts, except those that say something about this
    machine rather than the file: an ``OSError`` with an ``errno`` (a full disk), a
    ``MemoryError``: those propagate and the worker tries again later."""
    try:
        yield
    except Rejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Rejected("Image too large.") from None
    except MemoryError:
        raise
    except OSError as error:
        if error.errno is not None:
            raise
        raise Rejected("The image is damaged or truncated.") from None
    except Exception:
        raise Rejected("The image is damaged or truncated.") from None


def _new_file(workdir: Path, suffix: str, written: list[Path]) -> Path:
    handle, name = tempfile.mkstemp(dir=workdir, prefix="processed-", suffix=suffix)
    path = Path(name)
    written.append(path)
    with open(handle, "wb"):  # closes the descriptor mkstemp opened
        pass
    return path


def _clean(image: Image.Image) -> Image.Image:
    """The image turned upright, with nothing left of the file's metadata: ``info`` is
    what Pillow's writers may fall back on (an ICC profile, a GIF comment, PNG text), so it
    keeps only the transparency that the pixels need."""
    upright = ImageOps.exif_transpose(image)
    if upright is image:
        upright = image.copy()
    transparency = upright.info.get("transparency")
    upright.info = {} if transparency is None else {"transparency": transparency}
    return upright


def _write_still(image: Image.Image, target: Path, pillow_format: str, source: Path) -> Image.Image:
    image.seek(0)
    image.load()
    clean = _clean(image)
    options: dict[str, Any] = {}
    if pillow_format == "JPEG":
        if clean.mode not in ("L", "RGB", "CMYK"):
            clean = clean.convert("RGB")
        options = {"quality": JPEG_QUALITY, "optimize": True}
    elif pillow_format == "WEBP":
        options = {"quality": WEBP_QUALITY, "lossless": _lossless_webp(source)}
    clean.save(target, format=pillow_format, **options)
    return clean


def _write_animation(image: Image.Image, target: Path, pillow_format: str, max_pixels: int) -> Image.Image:
    """Every frame, whole, with its duration, and the loop count when the file had one. A
    GIF frame may reach past the canvas its header declared, which grows the image: each
    frame's size is checked again before it is decoded."""
    loop = image.info.get("loop")
    frames: list[Image.Image] = []
    durations: list[int] = []
    for frame in ImageSequence.Iterator(image):
        if frame.width * frame.height > max_pixels:
            raise Rejected(f"Image too large: a frame of {frame.width}x{frame.height} pixels.")
        frame.load()
        durations.append(int(frame.info.get("duration", 100)))
        frames.append(_clean(frame))
    options: dict[str, Any] = {"save_all": True, "append_images": frames[1:], "duration": durations}
    if loop is not None:
        options["loop"] = loop
    if pillow_format == "WEBP":
        options["quality"] = WEBP_QUALITY
    frames[0].save(target, format=pillow_format, **options)
    return frames[0]


def _lossless_webp(source: Path) -> bool:
    """Whether a WebP holds lossless data (a ``VP8L`` chunk and no lossy ``VP8 `` one): a
    screenshot stays sharp."""
    with source.open("rb") as reader:
        head = reader.read(64 * 1024)
    return b"VP8L" in head and b"VP8 " not in head


def _write_preview(image: Image.Image, target: Path, preview_pixels: int) -> Image.Image:
    """The first frame, its longest side at most ``preview_pixels`` (never enlarged), as
    WebP: small, with transparency when the image has it, shown by every current browser."""
    alpha = image.mode in ("RGBA", "LA", "PA") or image.has_transparency_data
    preview = image.convert("RGBA" if alpha else "RGB")
    preview.thumbnail((preview_pixels, preview_pixels), Image.Resampling.LANCZOS)
    preview.save(target, format="WEBP", quality=PREVIEW_QUALITY)
    return preview
