"""Sample files for media's tests, built with Pillow in memory: small and fast, each with the
one property a test looks for (GPS in a photo, a huge declared canvas, several frames…)."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

from PIL import Image, ImageCms, ImageDraw
from PIL.ExifTags import IFD
from PIL.PngImagePlugin import PngInfo

# The anti-malware test file, built from two halves so that this source file is not itself
# the 68-byte EICAR file a scanner on a developer's machine would quarantine.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

# What the JPEG sample hides, for tests that look for it in the stored bytes.
GPS_LATITUDE = (52.0, 22.0, 15.0)
CAMERA_MAKE = "SampleCam"
JPEG_COMMENT = b"taken at home"
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
PNG_TEXT = "secret-note"

# The stored picture of ``jpeg_with_gps``: 40 wide, 20 high, red on the left, blue on the
# right; its EXIF orientation (6) asks viewers to turn it 90° clockwise: 20 wide, 40 high,
# red on top.
RED = (255, 0, 0)
BLUE = (0, 0, 255)


def _write(data: bytes, path: Path | None) -> bytes:
    if path is not None:
        Path(path).write_bytes(data)
    return data


def jpeg_with_gps(path: Path | None = None, *, orientation: int = 6) -> bytes:
    """A JPEG with EXIF (camera make, GPS position, ``orientation``), XMP, a comment and an
    ICC profile; written to ``path`` too when given."""
    image = Image.new("RGB", (40, 20), BLUE)
    ImageDraw.Draw(image).rectangle((0, 0, 19, 19), fill=RED)
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    exif[0x010F] = CAMERA_MAKE  # Make
    gps = exif.get_ifd(IFD.GPSInfo)
    gps[1] = "N"
    gps[2] = GPS_LATITUDE
    gps[3] = "E"
    gps[4] = (4.0, 53.0, 24.0)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95, exif=exif.tobytes(), comment=JPEG_COMMENT, xmp=XMP, icc_profile=icc)
    return _write(out.getvalue(), path)


def png_bytes(width: int = 32, height: int = 24, *, alpha: bool = False, text: str | None = None) -> bytes:
    """A PNG of ``width``x``height`` (with an alpha channel when ``alpha``, and a ``tEXt``
    chunk holding ``text`` when given)."""
    image = Image.new("RGBA" if alpha else "RGB", (width, height), (10, 120, 200, 128 if alpha else 255))
    info = None
    if text is not None:
        info = PngInfo()
        info.add_text("Comment", text)
    out = io.BytesIO()
    image.save(out, "PNG", pnginfo=info)
    return out.getvalue()


def webp_bytes(width: int = 32, height: int = 24, *, frames: int = 1) -> bytes:
    """A WebP, animated when ``frames`` > 1 (150 ms a frame, looping)."""
    images = [Image.new("RGB", (width, height), (40 * i % 256, 90, 160)) for i in range(frames)]
    out = io.BytesIO()
    if frames == 1:
        images[0].save(out, "WEBP", quality=90)
    else:
        images[0].save(out, "WEBP", save_all=True, append_images=images[1:], duration=150, loop=0)
    return out.getvalue()


ANIMATION_DURATIONS = (100, 200, 300)


def animated_gif_bytes(width: int = 30, height: int = 20) -> bytes:
    """An animated GIF: three frames of different colours (``ANIMATION_DURATIONS`` ms each),
    looping forever."""
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    frames = [Image.new("RGB", (width, height), color) for color in colors]
    out = io.BytesIO()
    frames[0].save(
        out, "GIF", save_all=True, append_images=frames[1:], duration=list(ANIMATION_DURATIONS), loop=0
    )
    return out.getvalue()


def pdf_bytes(text: str = "Hello") -> bytes:
    """A tiny valid PDF: one page showing ``text``, with a correct cross-reference table."""
    stream = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def docx_bytes(text: str = "Hello") -> bytes:
    """A minimal Word document: a zip whose first entry is ``[Content_Types].xml`` and whose
    next is ``word/document.xml``, which is how ``filetype`` recognises a .docx."""
    content_types = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/word/document.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
    )
    document = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f"<w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", content_types)
        archive.writestr("word/document.xml", document)
    return out.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png_bytes(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG whose header declares ``width``x``height`` pixels (10 billion by default: 30 GB
    once decoded) in a few dozen bytes: decoding it would exhaust the machine's memory."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    data = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )


def truncated_jpeg_bytes() -> bytes:
    """A JPEG cut off halfway: its header is whole, its picture is not."""
    image = Image.effect_noise((64, 64), 40).convert("RGB")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    data = out.getvalue()
    return data[: len(data) // 2]


def exe_bytes() -> bytes:
    """The start of a Windows program (the ``MZ`` header)."""
    return b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48


SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
HTML = b"  <!DOCTYPE html><html><body><script>alert(1)</script></body></html>"
CSV_TEXT = "name,city\nAda,Zürich\nBo,Oslo\n".encode()
