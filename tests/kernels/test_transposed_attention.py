"""``swintormer.kernels.transposed_attention`` (Restormer's MDTA) against the model's torch path."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("triton", reason="Triton is not installed: pip install swintormer[kernels]")

from kernel_reference import assert_matches, mdta_reference, nan_like, random_qkv  # noqa: E402

from swintormer.kernels.transposed_attention import transposed_attention  # noqa: E402


def _temperature(heads: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    gen = torch.Generator().manual_seed(heads)
    return (0.5 + 2 * torch.rand(heads, 1, 1, generator=gen)).to(device, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize(
    "batch, heads, head_dim, image_size, num_splits",
    [
        (2, 2, 24, (40, 56), None),  # non-square; d = 24 padded to 32; default split
        (1, 1, 48, (24, 40), 3),  # d = 48 padded to 64; 3 splits, the last one ragged
        (2, 4, 16, (16, 24), 1),  # one split: no reduction across programs
        (1, 1, 96, (16, 24), None),  # d = 96 (Restormer's decoder level 1) padded to 128
    ],
)
def test_matches_reference(batch, heads, head_dim, image_size, num_splits, dtype, device):
    c = heads * head_dim
    qkv = random_qkv((batch, 3 * c, *image_size), dtype, device, seed=heads)
    temperature = _temperature(heads, device, dtype)
    out = nan_like((batch, c, *image_size), qkv)
    assert transposed_attention(qkv, temperature, heads, out, num_splits=num_splits) is out
    assert_matches(out, mdta_reference(qkv, temperature, heads))


def test_small_blocks_many_splits_match_and_are_deterministic(device):
    """7 splits of 256 tokens in 64-token blocks, the product with v in 64-token blocks."""
    qkv = random_qkv((1, 3 * 32, 40, 44), torch.float32, device, seed=9)
    temperature = _temperature(2, device, torch.float32)
    first = transposed_attention(qkv, temperature, 2, num_splits=7, block_sizes={"BLOCK_N": 64})
    assert_matches(first, mdta_reference(qkv, temperature, 2))
    again = transposed_attention(qkv, temperature, 2, num_splits=7, block_sizes={"BLOCK_N": 64})
    assert torch.equal(first, again)


def test_rejects_bad_inputs(device):
    qkv = random_qkv((1, 48, 8, 8), torch.float32, device, seed=0)
    with pytest.raises(ValueError, match="divisible by 3 heads"):
        transposed_attention(qkv, _temperature(3, device, torch.float32), 3)
    with pytest.raises(ValueError, match="one value per head"):
        transposed_attention(qkv, _temperature(4, device, torch.float32), 2)
    with pytest.raises(ValueError, match="out must be"):
        transposed_attention(qkv, _temperature(2, device, torch.float32), 2, out=qkv.new_empty(1, 16, 8, 9))
