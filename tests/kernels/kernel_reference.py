"""The references the kernel tests compare against: the model's torch path, step by step.

Imported by the kernel tests by name (pytest puts this directory on ``sys.path``).
"""

from __future__ import annotations

import torch

from swintormer.layers.attention import (
    channel_attention,
    continuous_position_bias,
    relative_position_index,
    shift_window_mask,
    window_attention,
    window_reverse,
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
    """One branch of Swintormer's attention exactly as the model's torch path computes it, in fp32.

    With ``logit_scale`` and ``mlp_table`` (the CPB MLP output before ``16*sigmoid``): the window
    branch from channels ``[0, 3C/2)``; without: the channel branch from ``[3C/2, 3C)``.
    Returns ``[B, C/2, H, W]``, un-partitioned and rolled back by ``shift``.
    """
    qkv = qkv.float()
    bw, c3, m, _ = qkv.shape
    height, width = image_size
    spatial, channel = qkv.chunk(2, dim=1)
    if logit_scale is not None:
        q, k, v = (t.reshape(bw, num_heads, -1, m * m).transpose(-2, -1) for t in spatial.chunk(3, dim=1))
        bias = continuous_position_bias(mlp_table.float(), relative_position_index(m).to(qkv.device))
        mask = shift_window_mask(height, width, m, shift, qkv.device) if shift else None
        out = window_attention(q, k, v, logit_scale.float(), bias, mask).transpose(-2, -1)
    else:
        q, k, v = (t.reshape(bw, num_heads, -1, m * m) for t in channel.chunk(3, dim=1))
        out = channel_attention(q, k, v, temperature=None, use_softmax_one=True)
    out = window_reverse(out.reshape(bw, c3 // 6, m, m), height, width)
    return torch.roll(out, shifts=(shift, shift), dims=(2, 3)) if shift else out


def mdta_reference(qkv: torch.Tensor, temperature: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Restormer's MDTA on ``[B, 3C, H, W]`` as the model's torch path computes it, in fp32."""
    qkv = qkv.float()
    b, c3, height, width = qkv.shape
    q, k, v = (t.reshape(b, num_heads, -1, height * width) for t in qkv.chunk(3, dim=1))
    out = channel_attention(q, k, v, temperature=temperature.float(), use_softmax_one=False)
    return out.reshape(b, c3 // 3, height, width)


def assert_matches(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """``actual`` (any dtype, no NaN) against the fp32 ``expected`` within ``TOLERANCES``."""
    atol, rtol = TOLERANCES[actual.dtype]
    assert not actual.isnan().any(), f"{int(actual.isnan().sum())} elements not written"
    torch.testing.assert_close(actual.float(), expected, atol=atol, rtol=rtol)
