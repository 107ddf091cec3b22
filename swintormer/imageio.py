"""Image files <-> float arrays: the one loader and writer every entry point uses.

Images travel as ``[H, W, C]`` arrays in RGB order, in the file's own dtype (``uint8``,
``uint16`` or ``float32``): a 16-megapixel photo stays 48 MB instead of 192 MB, and the tiler
converts one batch of tiles at a time to float. ``LoadedImage.pixels`` gives ``float32`` in
``[0, 1]`` where a whole float image is wanted. Damaged files are refused, never decoded to
noise (:mod:`swintormer.decoding`). A grayscale file is read as RGB (its channel
three times, what the models take) and remembers it was gray (``mode``), so a result can be
written back the way it came; :func:`write_image` writes ``[H, W, 1]`` arrays as grayscale.
What the restoration must not lose travels beside the pixels and goes back into the output:
an alpha channel (``alpha``, carried over unchanged: transparency is not blurred) and the colour
profile (``icc_profile``); pixels come upright, turned by the file's EXIF orientation
(:mod:`swintormer.image_metadata`).
PNG, JPEG, TIFF, BMP and WebP are read and written through OpenCV, which handles 16-bit RGB PNG
and TIFF (Pillow does not).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from swintormer.decoding import decode_image
from swintormer.errors import SwintormerError
from swintormer.files import atomic_write_bytes
from swintormer.image_metadata import embed_icc_profile, read_metadata

__all__ = [
    "MIN_IMAGE_SIDE",
    "LoadedImage",
    "dual_pixel_stack",
    "float_to_dtype",
    "from_uint",
    "read_image",
    "to_uint",
    "write_image",
]

log = logging.getLogger(__name__)

#: Smaller images carry no defocus information worth restoring; they are rejected.
MIN_IMAGE_SIDE = 8
WRITABLE = {".png": 16, ".tif": 16, ".tiff": 16, ".jpg": 8, ".jpeg": 8, ".bmp": 8, ".webp": 8}
#: formats OpenCV writes with an alpha channel
WITH_ALPHA = (".png", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class LoadedImage:
    """``array``: ``[H, W, 3]`` uint8/uint16/float32 (RGB); ``bit_depth``: 8, 16 or 32 (float files);
    ``mode``: ``"rgb"``, or ``"gray"`` for a grayscale file (its channel repeated in ``array``);
    ``alpha``: ``[H, W, 1]`` in ``array``'s dtype, or None; ``icc_profile``: the file's colour profile."""

    array: np.ndarray
    bit_depth: int
    path: Path
    mode: str = "rgb"
    alpha: np.ndarray | None = None
    icc_profile: bytes | None = None

    @property
    def channels(self) -> int:
        """Channels of the image as the file has them (1 for grayscale, else 3)."""
        return 1 if self.mode == "gray" else 3

    @property
    def pixels(self) -> np.ndarray:
        """``float32 [H, W, 3]`` in ``[0, 1]``."""
        return from_uint(self.array)[0]


def from_uint(array: np.ndarray) -> tuple[np.ndarray, int]:
    """``uint8/uint16/float [H, W, C]`` -> ``(float32 in [0, 1], bit depth)``."""
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0, 8
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0, 16
    if np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float32), 32
    raise SwintormerError(f"unsupported pixel type {array.dtype}; expected 8- or 16-bit integers or floats")


def to_uint(pixels: np.ndarray, bit_depth: int) -> np.ndarray:
    """``float [H, W, C]`` in ``[0, 1]`` -> rounded, clipped ``uint8`` (8) or ``uint16`` (16)."""
    if bit_depth == 8:
        return np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)
    if bit_depth == 16:
        return np.clip(np.rint(pixels * 65535.0), 0, 65535).astype(np.uint16)
    raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")


def float_to_dtype(pixels: np.ndarray, dtype: np.dtype | type) -> np.ndarray:
    """``float [H, W, C]`` in ``[0, 1]`` -> ``dtype``: uint8/uint16 rounded and clipped, floats unchanged."""
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return to_uint(pixels, 8)
    if dtype == np.uint16:
        return to_uint(pixels, 16)
    return pixels.astype(dtype, copy=False)


def _check_array(pixels: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """``(colour [H, W, 3], alpha [H, W, 1] or None)`` of decoded pixels, checked."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    alpha = None
    if pixels.shape[2] in (2, 4):
        pixels, alpha = pixels[:, :, :-1], np.ascontiguousarray(pixels[:, :, -1:])
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)  # grayscale: the models take RGB
    elif pixels.shape[2] != 3:
        raise SwintormerError(f"{path} has {pixels.shape[2]} channels; expected 1 (grayscale), 3 (RGB) or 4 (RGBA)")
    h, w = pixels.shape[:2]
    if min(h, w) < MIN_IMAGE_SIDE:
        raise SwintormerError(f"{path} is {w}x{h} pixels; images need at least {MIN_IMAGE_SIDE} pixels on each side")
    if np.issubdtype(pixels.dtype, np.floating) and not np.isfinite(pixels).all():
        raise SwintormerError(f"{path} contains NaN or infinite pixel values")
    return np.ascontiguousarray(pixels), alpha


def read_image(path: str | Path) -> LoadedImage:
    """Read an image file: ``array`` ``[H, W, 3]`` in the file's dtype (RGB; grayscale repeated),
    upright (EXIF orientation applied), with its alpha channel and colour profile if it has them.

    A damaged or truncated file is refused with one clear error (:mod:`swintormer.decoding`);
    nothing is printed to the process's stderr.
    """
    path = Path(path)
    if not path.is_file():
        raise SwintormerError(f"image not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SwintormerError(f"cannot read {path}: {exc.strerror or exc}") from None
    metadata = read_metadata(data)
    raw = decode_image(data, str(path), metadata)
    if raw.dtype not in (np.uint8, np.uint16):
        raw = raw.astype(np.float32)  # float TIFFs; other integer types are rejected by from_uint
    depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16, np.dtype(np.float32): 32}[raw.dtype]
    mode = "gray" if raw.ndim == 2 or raw.shape[2] <= 2 else "rgb"
    array, alpha = _check_array(raw, path)
    return LoadedImage(array=array, bit_depth=depth, path=path, mode=mode, alpha=alpha, icc_profile=metadata.icc_profile)


def dual_pixel_stack(right: LoadedImage, left: LoadedImage) -> np.ndarray:
    """The 6-channel dual-pixel input ``[H, W, 6]`` = concat(right, left), as the reference code orders it.

    Both views keep their dtype when it is the same, else both become float32 in ``[0, 1]``.
    """
    if right.array.shape != left.array.shape:
        raise SwintormerError(
            f"dual-pixel views differ in size: {right.path} is {right.array.shape[1]}x{right.array.shape[0]}, "
            f"{left.path} is {left.array.shape[1]}x{left.array.shape[0]}"
        )
    if right.array.dtype == left.array.dtype:
        return np.concatenate([right.array, left.array], axis=2)
    return np.concatenate([right.pixels, left.pixels], axis=2)


def write_image(path: str | Path, array: np.ndarray, bit_depth: int | None = None, alpha: np.ndarray | None = None,
                icc_profile: bytes | None = None) -> Path:
    """Write an RGB ``[H, W, 3]`` or grayscale ``[H, W, 1]`` image; the folder is created if needed.

    ``array`` is uint8/uint16 (written as is) or float in ``[0, 1]`` (clipped and quantised to
    ``bit_depth``, default 8). Formats that cannot hold 16 bits (JPEG, BMP, WebP) get 8.
    ``alpha`` (``[H, W, 1]``, any of those dtypes) is written as the fourth channel where the
    format has one (PNG, TIFF, WebP; a grayscale image with alpha is written as RGBA);
    ``icc_profile`` goes into PNG and JPEG files (:func:`swintormer.image_metadata.embed_icc_profile`).
    The file is encoded in memory and written atomically (:func:`swintormer.files.atomic_write_bytes`).
    """
    import cv2

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITABLE:
        raise SwintormerError(f"cannot write {path}: unknown extension; use one of {', '.join(sorted(WRITABLE))}")
    if bit_depth is None:
        bit_depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(array.dtype, 8)
    if bit_depth not in (8, 16):
        raise SwintormerError(f"bit depth must be 8 or 16, got {bit_depth}")
    if bit_depth > WRITABLE[suffix]:
        log.info("%s holds at most 8 bits per channel; writing %s as 8-bit", suffix, path.name)
        bit_depth = 8
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    data = array if array.dtype == dtype else float_to_dtype(from_uint(array)[0], dtype)
    if alpha is not None:
        data = _with_alpha(data, alpha, path)
    colour_channels = 1 if data.shape[2] == 1 else 3
    bgr = [2, 1, 0, 3][: data.shape[2]]  # RGB(A) -> BGR(A) for OpenCV
    data = np.ascontiguousarray(data[:, :, 0] if data.shape[2] == 1 else data[:, :, bgr])
    try:
        ok, encoded = cv2.imencode(suffix, data)
    except cv2.error as exc:
        raise SwintormerError(f"cannot encode {path.name}: {exc}") from None
    if not ok:
        raise SwintormerError(f"cannot encode {path.name} as {suffix}")
    return atomic_write_bytes(path, embed_icc_profile(encoded.tobytes(), suffix, icc_profile, path.name, colour_channels))


def _with_alpha(data: np.ndarray, alpha: np.ndarray, path: Path) -> np.ndarray:
    """``data`` ``[H, W, 1|3]`` with ``alpha`` as a fourth channel in its dtype, where ``path``'s format has one."""
    if alpha.shape[:2] != data.shape[:2]:
        raise SwintormerError(f"the alpha channel for {path.name} is {alpha.shape[1]}x{alpha.shape[0]}, "
                              f"the image {data.shape[1]}x{data.shape[0]}")
    if path.suffix.lower() not in WITH_ALPHA:
        log.warning("%s: %s files have no alpha channel; the input's transparency is not kept "
                    "(write %s to keep it)", path.name, path.suffix.lower(), ", ".join(WITH_ALPHA[:-1]) + " or " + WITH_ALPHA[-1])
        return data
    alpha = alpha[:, :, :1] if alpha.dtype == data.dtype else float_to_dtype(from_uint(alpha[:, :, :1])[0], data.dtype)
    colour = np.repeat(data, 3, axis=2) if data.shape[2] == 1 else data
    return np.concatenate([colour, alpha], axis=2)
