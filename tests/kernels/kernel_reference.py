"""The references the kernel tests compare against: the model's torch path, step by step.

Imported by the kernel tests by name (pytest puts this directory on ``sys.path``).
"""

from __future__ import annotations

import torch

from swintormer.layers.attention import (
    channel_branch,
    continuous_position_bias,
    mdta,
    relative_position_index,
    shift_window_mask,
    unwindow,
    window_branch,
)

#: (atol, rtol) of a kernel output against the fp32 reference on the same (rounded) inputs.
TOLERANCES = {torch.float32: (2e-5, 1e-5), torch.float16: (1e-2, 1e-2)}


def random_qkv(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device, seed: int) -> torch.Tensor:
    """Fresh normal values (never zeros) with some per-channel spread, like a conv output."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen) * (0.5 + torch.rand(shape[1], 1, 1, generator=gen))
    return x.to(device=device, dtype=dtype)


def nan_like(shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """An output buffer poisoned with NaN, so that an element the kernel does not write fails."""
    return torch.full(shape, float("nan"), dtype=like.dtype, device=like.device)


def swin_branch_reference(
    qkv: torch.Tensor,
    num_heads: int,
    image_size: tuple[int, int],
    shift: int,
    logit_scale: torch.Tensor | None = None,
    mlp_table: torch.Tensor | None = None,
) -> torch.Tensor:
    """One branch of Swintormer's attention, the model's own composition, in fp32.

    With ``logit_scale`` and ``mlp_table`` (the CPB MLP output before ``16*sigmoid``): the window
    branch from channels ``[0, 3C/2)``; without: the channel branch from ``[3C/2, 3C)``.
    Returns ``[B, C/2, H, W]``, un-partitioned and rolled back by ``shift``.
    """
    qkv = qkv.float()
    m = qkv.shape[-1]
    height, width = image_size
    spatial, channel = qkv.chunk(2, dim=1)
    if logit_scale is not None:
        bias = continuous_position_bias(mlp_table.float(), relative_position_index(m).to(qkv.device))
        mask = shift_window_mask(height, width, m, shift, qkv.device) if shift else None
        out = window_branch(spatial, num_heads, logit_scale.float(), bias, mask)
    else:
        out = channel_branch(channel, num_heads)
    return unwindow(out, height, width, shift)


def mdta_reference(qkv: torch.Tensor, temperature: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Restormer's MDTA on ``[B, 3C, H, W]``, the model's own composition, in fp32."""
    return mdta(qkv.float(), temperature.float(), num_heads)


def assert_matches(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """``actual`` (any dtype, no NaN) against the fp32 ``expected`` within ``TOLERANCES``."""
    atol, rtol = TOLERANCES[actual.dtype]
    assert not actual.isnan().any(), f"{int(actual.isnan().sum())} elements not written"
    torch.testing.assert_close(actual.float(), expected, atol=atol, rtol=rtol)
