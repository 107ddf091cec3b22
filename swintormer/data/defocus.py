"""Physically modelled defocus blur: disk (pillbox) point-spread functions.

A defocused thin lens images a point as a uniform disk whose radius grows with the distance from
the focal plane; ``disk_psf`` rasterises that disk with anti-aliased edges (each kernel cell is
weighted by the fraction of it inside the circle, estimated on a 16x16 sub-grid).
"""

from __future__ import annotations

import numpy as np

__all__ = ["disk_blur", "disk_psf"]


def disk_psf(radius: float, supersample: int = 16) -> np.ndarray:
    """Normalised disk kernel ``[2R+1, 2R+1]`` (``R = ceil(radius)``), float64, sums to 1.

    ``radius <= 0.5`` gives the identity kernel ``[[1]]``.
    """
    if radius <= 0.5:
        return np.ones((1, 1))
    half = int(np.ceil(radius))
    sub = (np.arange(supersample) + 0.5) / supersample - 0.5
    offsets = np.arange(-half, half + 1)
    fine = (offsets[:, None] + sub[None, :]).reshape(-1)  # sub-sample centres along one axis
    inside = (fine[:, None] ** 2 + fine[None, :] ** 2) <= radius**2
    n = 2 * half + 1
    kernel = inside.reshape(n, supersample, n, supersample).mean(axis=(1, 3))
    return kernel / kernel.sum()


def disk_blur(image: np.ndarray, radius: float) -> np.ndarray:
    """Blur ``[H, W, C]`` float32 with a uniform disk PSF of ``radius`` pixels (reflected borders)."""
    import cv2

    kernel = disk_psf(radius).astype(np.float32)
    return cv2.filter2D(image.astype(np.float32), -1, kernel, borderType=cv2.BORDER_REFLECT)
