"""``swintormer.kernels.window_attention`` against the model's torch path (shifted windows too)."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("triton", reason="Triton is not installed: pip install swintormer[kernels]")

from kernel_reference import assert_matches, nan_like, random_qkv, swin_branch_reference  # noqa: E402

from swintormer.kernels.window_attention import window_attention  # noqa: E402


def _inputs(batch, heads, head_dim, image_size, m, dtype, device, seed):
    """``qkv [Bw, 3C, M, M]``, ``logit_scale [h, 1, 1]`` (head 0 above the ln 100 clamp) and the
    CPB MLP output ``[(2M-1)^2, h]``."""
    height, width = image_size
    c = 2 * heads * head_dim
    qkv = random_qkv((batch * (height // m) * (width // m), 3 * c, m, m), dtype, device, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    logit_scale = math.log(10.0) + torch.randn(heads, 1, 1, generator=gen)
    logit_scale[0] = math.log(100.0) + 0.5
    mlp_table = 2 * torch.randn((2 * m - 1) ** 2, heads, generator=gen)
    return qkv, logit_scale.to(device, dtype), mlp_table.to(device, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize(
    "batch, heads, head_dim, image_size, m, shift",
    [
        (2, 2, 24, (16, 24), 8, 0),  # non-square, several windows, d = 24 padded to 32
        (2, 2, 24, (16, 24), 8, 4),  # the same, shifted: every kind of region boundary
        (1, 3, 12, (24, 16), 8, 2),  # 3 heads, d = 12, a shift that is not M/2
        (1, 1, 48, (12, 18), 6, 3),  # N = 36 tokens padded to 64 with masks; d = 48 padded to 64
    ],
)
def test_matches_reference(batch, heads, head_dim, image_size, m, shift, dtype, device):
    qkv, logit_scale, mlp_table = _inputs(batch, heads, head_dim, image_size, m, dtype, device, seed=heads + shift)
    c = 2 * heads * head_dim
    out = nan_like((batch, c, *image_size), qkv)
    result = window_attention(qkv, logit_scale, 16 * torch.sigmoid(mlp_table), heads, image_size, shift, out)
    assert result is out
    expected = swin_branch_reference(qkv, heads, image_size, shift, logit_scale, mlp_table)
    assert_matches(out[:, : c // 2], expected)
    assert out[:, c // 2 :].isnan().all(), "wrote outside its channel range"


def test_several_blocks_per_window_match(device):
    """Queries split over 4 programs, keys over 4 steps of the online softmax, at an offset."""
    heads, head_dim, image_size, m, shift = 2, 16, (16, 16), 8, 4
    qkv, logit_scale, mlp_table = _inputs(1, heads, head_dim, image_size, m, torch.float32, device, seed=7)
    c = 2 * heads * head_dim
    out = nan_like((1, c + 5, *image_size), qkv)
    window_attention(qkv, logit_scale, 16 * torch.sigmoid(mlp_table), heads, image_size, shift, out, 5,
                     block_sizes={"BLOCK_M": 16, "BLOCK_N": 16})  # fmt: skip
    assert_matches(out[:, 5 : 5 + c // 2], swin_branch_reference(qkv, heads, image_size, shift, logit_scale, mlp_table))
    assert out[:, :5].isnan().all() and out[:, 5 + c // 2 :].isnan().all()


def test_allocates_branch_output_when_none_given(device):
    qkv, logit_scale, mlp_table = _inputs(1, 1, 8, (8, 16), 8, torch.float32, device, seed=3)
    out = window_attention(qkv, logit_scale, 16 * torch.sigmoid(mlp_table), 1, (8, 16))
    assert out.shape == (1, 8, 8, 16)
    assert_matches(out, swin_branch_reference(qkv, 1, (8, 16), 0, logit_scale, mlp_table))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: {**a, "qkv": a["qkv"].to(torch.float64)}, "float16 or float32"),
        (lambda a: {**a, "qkv": a["qkv"].transpose(-2, -1)}, "contiguous"),
        (lambda a: {**a, "num_heads": 3}, "divisible by 3 heads"),
        (lambda a: {**a, "image_size": (16, 24)}, "does not match image_size"),
        (lambda a: {**a, "image_size": (16, 24), "out": a["qkv"].new_empty(1, 16, 16, 24)}, "do not tile"),
        (lambda a: {**a, "shift": 8}, "shift must be"),
        (lambda a: {**a, "out_channel_offset": 1}, "do not fit"),
        (lambda a: {**a, "bias_table": a["bias_table"][:-1]}, "bias_table shape"),
    ],
)
def test_rejects_bad_inputs(change, message, device):
    qkv, logit_scale, mlp_table = _inputs(1, 2, 8, (8, 16), 8, torch.float32, device, seed=0)
    args = dict(qkv=qkv, logit_scale=logit_scale, bias_table=mlp_table, num_heads=2, image_size=(8, 16), shift=0,
                out=torch.empty(1, 16, 8, 16, device=device), out_channel_offset=0)  # fmt: skip
    with pytest.raises(ValueError, match=message):
        window_attention(**change(args))
