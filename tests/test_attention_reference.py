"""The attention helpers against independent, literal re-statements of the Swin(-V2) code."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from swintormer.layers.attention import (
    relative_coords_table,
    relative_position_index,
    shift_window_mask,
    softmax_one,
    window_partition,
    window_reverse,
)


def test_softmax_one_matches_formula_and_sums_below_one():
    x = torch.randn(5, 7, 33) * 4
    y = softmax_one(x)
    e = torch.exp(x - x.max(-1, keepdim=True).values)
    assert torch.allclose(y, e / (1 + e.sum(-1, keepdim=True)))
    assert (y.sum(-1) < 1).all() and (y > 0).all()


@pytest.mark.parametrize("shape", [(2, 5, 32, 48), (1, 3, 16, 16)])
def test_window_partition_round_trip_and_order(shape):
    x = torch.randn(shape)
    w = window_partition(x, 16)
    assert w.shape == (shape[0] * shape[2] // 16 * shape[3] // 16, shape[1], 16, 16)
    assert torch.equal(window_reverse(w, shape[2], shape[3]), x)
    if shape[3] > 16:  # window 1 of image 0 is the second window of the first row
        assert torch.equal(w[1], x[0, :, :16, 16:32])


def _swin_mask_by_slicing(h: int, w: int, m: int, s: int) -> torch.Tensor:
    """Swin's original construction: label slices of an image, partition, compare."""
    img = torch.zeros(1, 1, h, w)
    cnt = 0
    for hs in (slice(0, -m), slice(-m, -s), slice(-s, None)):
        for ws in (slice(0, -m), slice(-m, -s), slice(-s, None)):
            img[:, :, hs, ws] = cnt
            cnt += 1
    win = window_partition(img, m).flatten(1)
    diff = win[:, None, :] - win[:, :, None]
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)


@pytest.mark.parametrize("h, w", [(16, 16), (32, 48), (64, 32)])
def test_shift_mask_equals_swin_slicing(h, w):
    assert torch.equal(shift_window_mask(h, w, 16, 8), _swin_mask_by_slicing(h, w, 16, 8))


def test_relative_position_index_matches_swin():
    m = 7
    coords = torch.stack(torch.meshgrid(torch.arange(m), torch.arange(m), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += m - 1
    rel[:, :, 1] += m - 1
    rel[:, :, 0] *= 2 * m - 1
    assert torch.equal(relative_position_index(m), rel.sum(-1))


def test_relative_coords_table_log_spacing():
    t = relative_coords_table(16)
    assert t.shape == (31 * 31, 2)
    # Offsets +-(M-1) map to +-8 before the log: sign * log2(9) / log2(8).
    assert np.isclose(t.max().item(), np.log2(9) / np.log2(8))
    assert np.isclose(t.min().item(), -np.log2(9) / np.log2(8))
    assert t[31 * 15 + 15].abs().sum() == 0  # the centre (0, 0)
