"""Physically modelled defocus blur: disk (pillbox) and half-aperture point-spread functions.

A defocused thin lens images a point as a uniform disk whose radius grows with the distance from
the focal plane; ``disk_psf`` rasterises that disk with anti-aliased edges (each kernel cell is
weighted by the fraction of it inside the circle, estimated on a 16x16 sub-grid).

A dual-pixel sensor splits every pixel under its micro-lens into a left and a right photodiode,
each seeing one half of the aperture: the left and right views are blurred by the two halves of
the disk (:func:`half_aperture_psf`), and which half each view gets flips with the sign of the
defocus (in front of or behind the focal plane), so the disparity between the views follows that
sign. Our convention: a positive signed radius (behind the focal plane) gives the left view the
left half of the disk (its image of a point sits left of the point), a negative one the right
half; the right view always gets the mirror of the left view's kernel. The two half kernels
partition the disk exactly, so ``(left + right) / 2`` is the full-aperture image.

:func:`spatially_varying_blur` applies a PSF whose radius varies per pixel (a depth map), by
blurring with a ladder of radii and interpolating each pixel between the two nearest rungs.
"""

from __future__ import annotations

from typing import Callable, Literal

import numpy as np

__all__ = [
    "RADIUS_STEP",
    "View",
    "disk_blur",
    "disk_psf",
    "half_aperture_psf",
    "psf_blur",
    "spatially_varying_blur",
    "view_psf",
]

View = Literal["center", "left", "right"]
#: spacing of the radius ladder :func:`spatially_varying_blur` interpolates between, in pixels
RADIUS_STEP = 0.5


def _aperture_coverage(radius: float, supersample: int, side: int) -> np.ndarray:
    """``[2R+1, 2R+1]`` fraction of each cell inside the disk (``side`` 0), or its left (-1) / right (+1) half."""
    half = int(np.ceil(radius))
    sub = (np.arange(supersample) + 0.5) / supersample - 0.5
    offsets = np.arange(-half, half + 1)
    fine = (offsets[:, None] + sub[None, :]).reshape(-1)  # sub-sample centres along one axis (never 0)
    inside = (fine[:, None] ** 2 + fine[None, :] ** 2) <= radius**2  # [y, x]
    if side:
        inside &= (np.sign(fine) == side)[None, :]
    n = 2 * half + 1
    return inside.reshape(n, supersample, n, supersample).mean(axis=(1, 3))


def disk_psf(radius: float, supersample: int = 16) -> np.ndarray:
    """Normalised disk kernel ``[2R+1, 2R+1]`` (``R = ceil(radius)``), float64, sums to 1.

    ``radius <= 0.5`` gives the identity kernel ``[[1]]``.
    """
    if radius <= 0.5:
        return np.ones((1, 1))
    kernel = _aperture_coverage(radius, supersample, side=0)
    return kernel / kernel.sum()


def half_aperture_psf(signed_radius: float, view: Literal["left", "right"], supersample: int = 16) -> np.ndarray:
    """The dual-pixel ``view``'s kernel ``[2R+1, 2R+1]`` for a signed defocus radius (sums to 1).

    Positive ``signed_radius`` (behind the focal plane): the left view gets the left half of the
    disk; negative: the right half; the right view gets the mirror. ``|r| <= 0.5`` is in focus:
    the identity for both views.
    """
    radius = abs(signed_radius)
    if radius <= 0.5:
        return np.ones((1, 1))
    side = -1 if signed_radius > 0 else 1
    if view == "right":
        side = -side
    kernel = _aperture_coverage(radius, supersample, side=side)
    return kernel / kernel.sum()


def view_psf(view: View) -> Callable[[float], np.ndarray]:
    """``signed radius -> kernel`` for one view: the full disk (``center``) or a half aperture."""
    if view == "center":
        return lambda r: disk_psf(abs(r))
    if view in ("left", "right"):
        return lambda r: half_aperture_psf(r, view)
    raise ValueError(f"unknown view {view!r}: expected 'center', 'left' or 'right'")


def psf_blur(image: np.ndarray, psf: np.ndarray) -> np.ndarray:
    """Convolve ``[H, W, C]`` float32 with ``psf`` ``[k, k]`` (a true convolution; reflected borders)."""
    import cv2

    if psf.shape == (1, 1):
        return image.astype(np.float32) * np.float32(psf[0, 0])
    # filter2D correlates; flipping the kernel makes it a convolution (matters for half apertures)
    kernel = np.ascontiguousarray(psf[::-1, ::-1], dtype=np.float32)
    out = cv2.filter2D(image.astype(np.float32), -1, kernel, borderType=cv2.BORDER_REFLECT)
    return out.reshape(image.shape)


def disk_blur(image: np.ndarray, radius: float) -> np.ndarray:
    """Blur ``[H, W, C]`` float32 with a uniform disk PSF of ``radius`` pixels (reflected borders)."""
    return psf_blur(image, disk_psf(radius))


def spatially_varying_blur(
    image: np.ndarray,
    radius_map: np.ndarray,
    psf: Callable[[float], np.ndarray] = view_psf("center"),
    step: float = RADIUS_STEP,
) -> np.ndarray:
    """Blur ``[H, W, C]`` float32 with a per-pixel PSF radius ``radius_map`` ``[H, W]`` (signed allowed).

    The image is blurred once per rung of a ladder of radii ``step`` apart covering the map's
    range, and each output pixel interpolates linearly between the two rungs around its own
    radius (a gather model: every pixel takes the PSF of its own depth; occlusion is not modelled).
    """
    if radius_map.shape != image.shape[:2]:
        raise ValueError(f"radius map {radius_map.shape} does not match image {image.shape[:2]}")
    lo = np.floor(radius_map.min() / step) * step
    rungs = int(np.ceil((radius_map.max() - lo) / step - 1e-9)) + 1
    position = (radius_map - lo) / step
    below = np.clip(np.floor(position).astype(np.int64), 0, rungs - 1)
    frac = (position - below).astype(np.float32)
    out = np.zeros(image.shape, dtype=np.float32)
    for k in range(rungs):
        weight = np.where(below == k, 1.0 - frac, 0.0) + np.where(below + 1 == k, frac, 0.0)
        if not weight.any():
            continue
        out += weight.astype(np.float32)[:, :, None] * psf_blur(image, psf(lo + k * step))
    return out
