"""Image quality metrics with the reference conventions (data range 1; docs/architecture.md, "Reference facts")."""

from __future__ import annotations

import numpy as np

__all__ = ["mae", "psnr", "ssim"]


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB of two float ``[H, W, C]`` images; ``inf`` when identical."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(data_range**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """SSIM as scikit-image computes it (``channel_axis=-1``)."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, channel_axis=-1, data_range=data_range))


def mae(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute error over all pixels and channels."""
    return float(np.mean(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
