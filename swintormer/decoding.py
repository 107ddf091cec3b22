"""Image bytes -> pixels, refusing damaged files instead of decoding them to noise.

Each format goes to a decoder that reports damage as an error rather than printing a warning
to the process's stderr (which concurrent workers share):

- PNG: every chunk's CRC is checked, the compressed image data must inflate to exactly the size
  the header promises (a truncated or bit-flipped file fails one or the other), then OpenCV
  decodes it (8 or 16 bits, gray, RGB, alpha).
- JPEG: libjpeg-turbo through ``simplejpeg`` in strict mode: "Premature end of JPEG file" and
  "Corrupt JPEG data" are errors, not warnings.
- WebP, BMP: Pillow, which raises on truncated data.
- TIFF: OpenCV (8/16-bit and float), its own log silenced; a strip it cannot read is an error.

Pixels come out turned by the file's EXIF orientation, as viewers show them
(:mod:`swintormer.image_metadata`).

A flip in data a format does not check (JPEG's entropy-coded bits when they still decode, lossy
WebP, BMP and uncompressed TIFF pixels) gives another valid image: no decoder can tell. Headers
are checked against :data:`MAX_DECODED_PIXELS` before any pixel is allocated.
"""

from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np

from swintormer.errors import SwintormerError
from swintormer.image_metadata import ImageMetadata, apply_orientation, read_metadata

__all__ = ["FORMATS", "MAX_DECODED_PIXELS", "decode_image", "sniff"]

#: Largest image decoded (pixels; ``SWINTORMER_MAX_IMAGE_PIXELS``), OpenCV's own default limit.
MAX_DECODED_PIXELS = int(os.environ.get("SWINTORMER_MAX_IMAGE_PIXELS", str(2**30)))
FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "WebP")
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel


def sniff(data: bytes) -> str | None:
    """The format the bytes start like, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if data.startswith(b"BM"):
        return "BMP"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return None


def _check_size(width: int, height: int, name: str) -> None:
    if width * height > MAX_DECODED_PIXELS:
        raise SwintormerError(
            f"{name} declares {width}x{height} pixels, above the {MAX_DECODED_PIXELS:,} this reader decodes "
            "(set SWINTORMER_MAX_IMAGE_PIXELS to raise the limit)"
        )


def _png_raw_size(width: int, height: int, samples: int, depth: int, interlaced: bool) -> int:
    """Bytes of filtered scanlines the image data must inflate to."""

    def rows(w: int, h: int) -> int:
        return 0 if w == 0 or h == 0 else h * (1 + (w * samples * depth + 7) // 8)

    if not interlaced:
        return rows(width, height)
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    return sum(rows((width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy) for x0, y0, dx, dy in passes)


def _check_png(data: bytes, name: str) -> None:
    """Chunk CRCs, IHDR first, IEND present, and the image data inflating to the promised size."""
    pos, header, inflate, inflated, ended = 8, None, zlib.decompressobj(), 0, False
    while pos < len(data) and not ended:
        if pos + 12 > len(data):
            raise SwintormerError(f"{name} is a truncated PNG (a chunk header is cut off)")
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if header is None and (kind != b"IHDR" or length != 13):
            raise SwintormerError(f"{name} is a damaged PNG (it does not start with an IHDR chunk)")
        body = data[pos + 8 : pos + 8 + length]
        if len(body) != length or pos + 12 + length > len(data):
            raise SwintormerError(f"{name} is a truncated PNG (its {kind.decode('latin-1')} chunk is cut off)")
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        if zlib.crc32(kind + body) != crc:
            raise SwintormerError(f"{name} is a damaged PNG (checksum error in its {kind.decode('latin-1')} chunk)")
        if header is None:
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            _check_size(width, height, name)
            header = (width, height, _PNG_CHANNELS.get(color, 0), depth, interlace == 1)
        elif kind == b"IDAT":
            try:
                while body:
                    inflated += len(inflate.decompress(body, 1 << 20))
                    body = inflate.unconsumed_tail
            except zlib.error as exc:
                raise SwintormerError(f"{name} is a damaged PNG (its image data does not inflate: {exc})") from None
        ended = kind == b"IEND"
        pos += 12 + length
    if header is None or not ended:
        raise SwintormerError(f"{name} is a truncated PNG (it ends before its IEND chunk)")
    inflated += len(inflate.flush())
    if not inflate.eof or inflated != _png_raw_size(*header):
        raise SwintormerError(f"{name} is a damaged PNG (its image data inflates to {inflated} bytes, not {_png_raw_size(*header)})")


def _decode_png_or_tiff(data: bytes, name: str, kind: str) -> np.ndarray:
    import cv2

    cv2.setLogLevel(0)  # OpenCV's LOG_LEVEL_SILENT: a failure comes back as None, not as stderr lines
    raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise SwintormerError(f"{name} is a damaged or truncated {kind}, or a variant OpenCV cannot read")
    if raw.ndim == 3 and raw.shape[2] >= 3:
        raw = raw[:, :, [2, 1, 0] + list(range(3, raw.shape[2]))]  # OpenCV is BGR(A)
    if kind == "PNG" and data[25] == 4 and raw.ndim == 3 and raw.shape[2] == 4:
        raw = raw[:, :, [0, 3]]  # gray + alpha (IHDR colour type 4), which OpenCV expands to BGRA
    return raw


def _decode_jpeg(data: bytes, name: str) -> np.ndarray:
    import simplejpeg

    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        _check_size(width, height, name)
        if colorspace.upper() in ("CMYK", "YCCK"):
            return _decode_pillow(data, name, "JPEG")
        gray = colorspace.upper() == "GRAY"
        return simplejpeg.decode_jpeg(data, colorspace="GRAY" if gray else "RGB", strict=True)
    except ValueError as exc:
        raise SwintormerError(f"{name} is a damaged or truncated JPEG ({exc})") from None


def _decode_pillow(data: bytes, name: str, kind: str) -> np.ndarray:
    from PIL import Image, ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with Image.open(io.BytesIO(data)) as image:
            _check_size(image.width, image.height, name)
            image.load()
            mode = {"L": "L", "LA": "LA", "RGBA": "RGBA", "P": "RGBA" if "transparency" in image.info else "RGB"}.get(image.mode, "RGB")
            return np.asarray(image.convert(mode))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise SwintormerError(f"{name} is a damaged or truncated {kind} ({exc})") from None


def decode_image(data: bytes, name: str, metadata: ImageMetadata | None = None) -> np.ndarray:
    """The pixels of an encoded image, ``[H, W]`` or ``[H, W, C]`` (RGB(A) order) in the file's dtype,
    turned the way its EXIF orientation says viewers show it (``metadata``: read from ``data`` if None).

    Raises :class:`SwintormerError` naming the file and the damage when the bytes are not a
    whole, undamaged image of a supported format.
    """
    if not data:
        raise SwintormerError(f"{name} is empty (0 bytes): nothing to decode")
    kind = sniff(data)
    if kind is None:
        raise SwintormerError(f"{name} could not be decoded as an image (is it a {', '.join(FORMATS[:-1])} or {FORMATS[-1]} file?)")
    if kind == "PNG":
        _check_png(data, name)
        pixels = _decode_png_or_tiff(data, name, kind)
    elif kind == "JPEG":
        pixels = _decode_jpeg(data, name)
    elif kind == "TIFF":
        pixels = _decode_png_or_tiff(data, name, kind)
    else:
        pixels = _decode_pillow(data, name, kind)
    return apply_orientation(pixels, (metadata or read_metadata(data)).orientation)
