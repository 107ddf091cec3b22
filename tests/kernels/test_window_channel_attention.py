"""``swintormer.kernels.window_channel_attention`` against the model's torch path."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("triton", reason="Triton is not installed: pip install swintormer[kernels]")

from kernel_reference import assert_matches, nan_like, random_qkv, swin_branch_reference  # noqa: E402

from swintormer.kernels.window_channel_attention import window_channel_attention  # noqa: E402


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize(
    "batch, heads, head_dim, image_size, m, shift",
    [
        (2, 2, 24, (16, 24), 8, 0),  # non-square, several windows, d = 24 padded to 32
        (2, 2, 24, (16, 24), 8, 4),  # shifted: the output lands rolled back
        (1, 3, 12, (24, 16), 8, 2),  # 3 heads, d = 12
        (1, 1, 48, (12, 18), 6, 3),  # N = 36 tokens padded to 64, d = 48 padded to 64
    ],
)
def test_matches_reference(batch, heads, head_dim, image_size, m, shift, dtype, device):
    height, width = image_size
    c = 2 * heads * head_dim
    qkv = random_qkv((batch * (height // m) * (width // m), 3 * c, m, m), dtype, device, seed=heads + shift)
    out = nan_like((batch, c, height, width), qkv)
    result = window_channel_attention(qkv, heads, image_size, shift, out, c // 2)
    assert result is out
    assert_matches(out[:, c // 2 :], swin_branch_reference(qkv, heads, image_size, shift))
    assert out[:, : c // 2].isnan().all(), "wrote outside its channel range"


def test_several_token_blocks_match(device):
    """The Gram and the product with v each over 4 token blocks."""
    heads, head_dim, image_size, m = 2, 16, (16, 8), 8
    qkv = random_qkv((2, 6 * heads * head_dim, m, m), torch.float32, device, seed=5)
    out = window_channel_attention(qkv, heads, image_size, 4, block_sizes={"BLOCK_N": 16})
    assert out.shape == (1, heads * head_dim, *image_size)
    assert_matches(out, swin_branch_reference(qkv, heads, image_size, 4))


def test_rejects_mismatched_output(device):
    qkv = random_qkv((2, 48, 8, 8), torch.float32, device, seed=0)
    with pytest.raises(ValueError, match="must match qkv"):
        window_channel_attention(qkv, 1, (8, 16), out=torch.empty(1, 16, 8, 16, dtype=torch.float16, device=device))
    with pytest.raises(ValueError, match="do not fit"):
        window_channel_attention(qkv, 1, (8, 16), out=qkv.new_empty(1, 16, 8, 16), out_channel_offset=9)
