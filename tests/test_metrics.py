"""Rulers: the metrics and the 8/16-bit conversions on answers known in closed form.

Every parity bar and every reported PSNR depends on these, so each is checked against a value
computed by hand, not against another implementation.
"""

from __future__ import annotations

import numpy as np
import pytest

from swintormer.imageio import float_to_dtype, from_uint, to_uint
from swintormer.metrics import mae, psnr, ssim


def test_psnr_known_answers():
    a = np.zeros((16, 12, 3), np.float32)
    assert psnr(a, a + 0.1) == pytest.approx(20.0, abs=1e-5)  # mse 0.01 -> 10 log10(1 / 0.01)
    assert psnr(a + 0.5, a + 0.51) == pytest.approx(40.0, abs=1e-3)
    assert psnr(a, a + 25.5, data_range=255.0) == pytest.approx(20.0, abs=1e-5)
    half = a.copy()
    half[:8] = 1.0  # half the pixels off by 1: mse 0.5 -> 3.0103 dB
    assert psnr(a, half) == pytest.approx(10 * np.log10(2.0), abs=1e-6)
    assert psnr(a, a) == float("inf")
    assert psnr(a, half) == psnr(half, a)


def test_ssim_known_answers():
    rng = np.random.default_rng(0)
    x = rng.random((32, 32, 3), dtype=np.float32)
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-6)
    # Two flat images: no variance, so SSIM is the luminance term (2 m1 m2 + C1) / (m1^2 + m2^2 + C1), C1 = 0.01^2.
    c1 = 0.01**2
    flat = np.full((32, 32, 3), 0.2, np.float32), np.full((32, 32, 3), 0.6, np.float32)
    assert ssim(*flat) == pytest.approx((2 * 0.2 * 0.6 + c1) / (0.2**2 + 0.6**2 + c1), abs=1e-5)
    assert ssim(x, 1 - x) < 0  # anti-correlated structure


def test_mae_known_answers():
    a = np.zeros((8, 8, 3), np.float32)
    assert mae(a, a + 0.25) == pytest.approx(0.25)
    b = a.copy()
    b[..., 0] = 0.3
    b[..., 1] = -0.3  # signs do not cancel
    assert mae(a, b) == pytest.approx(0.2)


@pytest.mark.parametrize("bits, dtype", [(8, np.uint8), (16, np.uint16)])
def test_to_uint_rounds_at_every_level(bits, dtype):
    """Every level k: k, k + 0.49 and k + 0.51 (in units of one level) map to k, k and k + 1."""
    top = 2**bits - 1
    k = np.arange(top + 1, dtype=np.float64)
    for offset, want in ((0.0, k), (0.49, k), (0.51, np.minimum(k + 1, top)), (-0.49, k), (-0.51, np.maximum(k - 1, 0))):
        pixels = ((k + offset) / top).astype(np.float32).reshape(-1, 1, 1)
        got = to_uint(pixels, bits)
        assert got.dtype == dtype and np.array_equal(got.reshape(-1), want.astype(dtype)), (bits, offset)
    assert np.array_equal(float_to_dtype(((k + 0.51) / top).astype(np.float32).reshape(-1, 1, 1), dtype).reshape(-1),
                          np.minimum(k + 1, top).astype(dtype))
    outside = np.array([-0.2, -1e-9, 1.0 + 1e-6, 7.0], np.float32).reshape(-1, 1, 1)
    assert to_uint(outside, bits).reshape(-1).tolist() == [0, 0, top, top]


@pytest.mark.parametrize("bits, dtype", [(8, np.uint8), (16, np.uint16)])
def test_from_uint_is_level_over_maximum_and_round_trips(bits, dtype):
    top = 2**bits - 1
    levels = np.arange(top + 1).astype(dtype).reshape(-1, 1, 1)
    pixels, depth = from_uint(levels)
    assert depth == bits and pixels.dtype == np.float32
    assert np.array_equal(pixels.reshape(-1), (np.arange(top + 1) / np.float32(top)).astype(np.float32))
    assert pixels.min() == 0.0 and pixels.max() == 1.0
    assert np.array_equal(to_uint(pixels, bits), levels)
