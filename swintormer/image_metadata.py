"""What an image file says about its pixels besides their values: orientation and colour profile.

- **Orientation** (EXIF tag 274, which cameras and phones write instead of rotating the pixels):
  every viewer shows the image turned by it, so the reader turns the pixels the same way
  (:func:`apply_orientation`) and results come out the way the input looks. The output carries
  no orientation tag: its pixels are upright.
- **Colour profile** (ICC): a Display P3 or Adobe RGB photograph is read and restored as numbers
  in its own colour space; written without its profile, a viewer would show them as sRGB, with
  visibly shifted colours. :func:`embed_icc_profile` puts the input's profile into PNG (``iCCP``)
  and JPEG (``APP2 ICC_PROFILE``) outputs when it describes the pixels written (RGB or gray; a
  CMYK photo is read as RGB, so its profile is dropped); TIFF, WebP and BMP outputs go without,
  with a warning.

Metadata never stops an image from being read: a file whose metadata cannot be parsed is read as
upright, without a profile.
"""

from __future__ import annotations

import io
import logging
import struct
import warnings
import zlib
from dataclasses import dataclass

import numpy as np

__all__ = ["ImageMetadata", "apply_orientation", "embed_icc_profile", "read_metadata"]

log = logging.getLogger(__name__)

_ORIENTATION_TAG = 0x0112
#: JPEG APP2 segments hold at most 65533 bytes after the length; 14 of them are the ICC header
_ICC_CHUNK = 65519


@dataclass(frozen=True)
class ImageMetadata:
    """``orientation``: EXIF orientation 1-8 (1: upright); ``icc_profile``: the ICC profile's bytes, or None."""

    orientation: int = 1
    icc_profile: bytes | None = None


def read_metadata(data: bytes) -> ImageMetadata:
    """The orientation and ICC profile of the encoded image ``data`` (headers only, no pixels decoded)."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns of damaged EXIF on stderr, which workers share
            with Image.open(io.BytesIO(data)) as image:
                orientation = int(image.getexif().get(_ORIENTATION_TAG, 1))
                icc = image.info.get("icc_profile") or None
    except Exception as exc:  # noqa: BLE001 - metadata is optional; the pixel decoder reports damage
        log.debug("no metadata read: %s", exc)
        return ImageMetadata()
    return ImageMetadata(orientation if 1 <= orientation <= 8 else 1, bytes(icc) if icc else None)


def apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """``pixels`` ``[H, W, ...]`` as a viewer shows them under EXIF ``orientation`` (a view where it can be).

    2 mirrors left-right, 3 turns 180 degrees, 4 mirrors top-bottom, 5 transposes, 6 turns 90
    degrees clockwise, 7 transverses, 8 turns 90 degrees counter-clockwise (Pillow's
    ``ImageOps.exif_transpose``); 1 and unknown values leave the pixels as they are.
    """
    if orientation == 2:
        return pixels[:, ::-1]
    if orientation == 3:
        return pixels[::-1, ::-1]
    if orientation == 4:
        return pixels[::-1]
    if orientation == 5:
        return pixels.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(pixels, -1)
    if orientation == 7:
        return pixels[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:
        return np.rot90(pixels, 1)
    return pixels


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _png_with_icc(encoded: bytes, icc: bytes) -> bytes:
    """The PNG ``encoded`` with an ``iCCP`` chunk right after its IHDR (where the standard wants it)."""
    end_of_ihdr = 8 + 8 + 13 + 4
    return encoded[:end_of_ihdr] + _png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc)) + encoded[end_of_ihdr:]


def _jpeg_with_icc(encoded: bytes, icc: bytes) -> bytes:
    """The JPEG ``encoded`` with the profile in APP2 segments after SOI and any APP0 (JFIF) segment."""
    pos = 2
    if encoded[2:4] == b"\xff\xe0":
        pos = 4 + struct.unpack(">H", encoded[4:6])[0]
    chunks = [icc[i : i + _ICC_CHUNK] for i in range(0, len(icc), _ICC_CHUNK)]
    if len(chunks) > 255:
        raise ValueError(f"an ICC profile of {len(icc)} bytes does not fit in a JPEG's 255 APP2 segments")
    segments = b"".join(
        b"\xff\xe2" + struct.pack(">H", 2 + 14 + len(c)) + b"ICC_PROFILE\x00" + bytes((i + 1, len(chunks))) + c
        for i, c in enumerate(chunks)
    )
    return encoded[:pos] + segments + encoded[pos:]


def embed_icc_profile(encoded: bytes, suffix: str, icc: bytes | None, name: str = "the output", channels: int = 3) -> bytes:
    """``encoded`` (an image file's bytes, format by ``suffix``, ``channels`` colour channels: 1 or 3)
    carrying the ICC profile ``icc``.

    PNG and JPEG take it. The profile must describe the pixels written: an RGB profile for RGB
    outputs, a gray one for gray outputs (a CMYK photo, read as RGB, or a gray photo written as
    RGBA keeps none). Otherwise, and for other formats, the bytes come back unchanged and a
    warning says the colours may look different.
    """
    if not icc:
        return encoded
    space, wanted = icc[16:20], b"GRAY" if channels == 1 else b"RGB "
    if space != wanted:
        log.warning("%s: the input's colour profile describes %s pixels, not the %s ones written; written without it",
                    name, space.decode("latin-1").strip() or "unknown", wanted.decode().strip())
        return encoded
    if suffix == ".png":
        return _png_with_icc(encoded, icc)
    if suffix in (".jpg", ".jpeg"):
        try:
            return _jpeg_with_icc(encoded, icc)
        except ValueError as exc:
            log.warning("%s: %s; written without it", name, exc)
            return encoded
    log.warning("%s: the input's colour profile is not written to %s files (viewers may show other colours); "
                "write .png or .jpg to keep it", name, suffix)
    return encoded
