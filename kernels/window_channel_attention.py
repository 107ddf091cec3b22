"""Swintormer's windowed channel (transposed) attention as one Triton kernel.

Reference: :func:`swintormer.layers.attention.channel_attention` with ``use_softmax_one=True`` and
no temperature, run on each window's ``N = M*M`` tokens as
:class:`swintormer.models.swintormer.SwinChannelAttention` calls it.

One program per (window, head), in ``_window_channel_attn_fwd_kernel``:

- one pass over the window's tokens builds the ``d x d`` Gram ``q k^T`` and the squared norms of
  the rows of ``q`` and ``k`` (``normalize(q) normalize(k)^T = G / (|q| |k|^T)``), reading
  ``q, k`` straight out of the qkv-conv output ``[Bw, 3C, M, M]`` (channels ``[3C/2, 3C)``);
- ``softmax_one`` of the ``d x d`` map in registers (it never reaches memory);
- a second pass multiplies by ``v`` and writes straight into the un-partitioned, un-rolled
  ``[B, C, H, W]`` output at channel ``out_channel_offset + head*d`` (the concatenation with the
  window branch, ``window_reverse`` and the roll back cost no copy; see
  :mod:`swintormer.kernels.window_attention` for what is left unfused and why).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import triton
import triton.language as tl

from swintormer.kernels._common import (
    NORM_EPS,
    check_window_io,
    gram_and_sq_norms,
    launch,
    transposed_softmax,
    window_kernel_args,
    window_output,
    window_output_offsets,
)

__all__ = ["window_channel_attention"]

# One program holds a whole (window, head). Sized for a 2080 Ti too (sm_75, 64 KB shared memory):
# the 32-token config fits it at d = 48 in fp32; the autotuner skips configs that do not fit.
_GPU_CONFIGS = [
    triton.Config({"BLOCK_N": 32}, num_warps=2, num_stages=2),
    triton.Config({"BLOCK_N": 64}, num_warps=4, num_stages=2),
    triton.Config({"BLOCK_N": 128}, num_warps=4, num_stages=2),
]


@triton.jit
def _window_channel_attn_fwd_kernel(
    qkv_ptr, out_ptr, stride_ob, stride_oc, stride_oh, stride_ow,
    num_heads, half_channels, out_channel_offset, n_win_w, n_win, height, width,
    M: tl.constexpr, SHIFT: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr,
    DOT_PRECISION: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """Grid ``(Bw * h,)``: the whole ``d x N`` attention of one (window, head)."""
    N: tl.constexpr = M * M
    win = tl.program_id(0) // num_heads
    head = tl.program_id(0) % num_heads
    # q, k, v of this head are [d, N] blocks (token stride 1, channel stride N) after the window half.
    branch = half_channels * N  # elements of one of q, k, v in a window
    q_base = qkv_ptr + win.to(tl.int64) * (6 * branch) + 3 * branch + head * (HEAD_DIM * N)
    k_base = q_base + branch
    v_base = k_base + branch

    gram, sq_q, sq_k = gram_and_sq_norms(q_base, k_base, N, 0, N, HEAD_DIM, BLOCK_N, BLOCK_D, DOT_PRECISION)
    attn = transposed_softmax(gram, sq_q, sq_k, 1.0, HEAD_DIM, BLOCK_D, NORM_EPS, PLUS_ONE=True)  # [BLOCK_D, BLOCK_D]
    attn = attn.to(qkv_ptr.dtype.element_ty)  # the product with v runs in the input dtype, accumulates in fp32

    offs_d = tl.arange(0, BLOCK_D)
    mask_d = offs_d < HEAD_DIM
    v_rows = v_base + offs_d[:, None] * N
    out_rows = out_ptr + (out_channel_offset + head * HEAD_DIM + offs_d).to(tl.int64)[:, None] * stride_oc
    for n0 in range(0, N, BLOCK_N):
        offs_n = n0 + tl.arange(0, BLOCK_N)
        mask = mask_d[:, None] & (offs_n < N)[None, :]
        v = tl.load(v_rows + offs_n[None, :], mask=mask, other=0.0)  # [BLOCK_D, BLOCK_N]
        o = tl.dot(attn, v, input_precision=DOT_PRECISION)
        offs_hw = window_output_offsets(win, offs_n, M, SHIFT, n_win_w, n_win, height, width,
                                        stride_ob, stride_oh, stride_ow)  # fmt: skip
        tl.store(out_rows + offs_hw[None, :], o.to(out_ptr.dtype.element_ty), mask=mask)


_window_channel_attn_fwd_tuned = triton.autotune(configs=_GPU_CONFIGS, key=["M", "HEAD_DIM"])(
    _window_channel_attn_fwd_kernel
)


def window_channel_attention(
    qkv: torch.Tensor,
    num_heads: int,
    image_size: tuple[int, int],
    shift: int = 0,
    out: torch.Tensor | None = None,
    out_channel_offset: int = 0,
    *,
    block_sizes: Mapping[str, int] | None = None,
) -> torch.Tensor:
    """Channel attention inside each window, read from the qkv-conv output, written un-partitioned.

    Args:
        qkv: ``[Bw, 3C, M, M]``, the per-window depthwise-conv output; channels ``[3C/2, 3C)`` hold
            this branch's ``q, k, v`` (``C/2`` each, heads of ``d = C/(2h)`` consecutive channels).
        num_heads: ``h``.
        image_size: ``(H, W)`` of the image the windows tile.
        shift: the block's cyclic shift (the input was rolled by ``-shift`` before partitioning).
        out: ``[B, C_out, H, W]`` to write channels ``[out_channel_offset, +C/2)`` of; allocated as
            ``[B, C/2, H, W]`` when None.
        block_sizes: a fixed ``BLOCK_N`` (and optionally ``num_warps``) instead of autotuning.

    Returns:
        ``out``: per window and head, ``softmax_one(normalize(q) normalize(k)^T) v`` ``[d, N]``, at
        its un-rolled image position.
    """
    out = window_output(qkv, image_size, out)
    check_window_io(qkv, out, num_heads, shift, out_channel_offset)
    bw, _, m, _ = qkv.shape
    args = (qkv, out, *window_kernel_args(qkv, out, num_heads, shift, out_channel_offset))
    default = {"BLOCK_N": triton.next_power_of_2(m * m)}
    grid = (bw * num_heads,)
    launch(_window_channel_attn_fwd_kernel, _window_channel_attn_fwd_tuned, grid, args, block_sizes, default)
    return out


@torch.library.custom_op("swintormer::window_channel_attention", mutates_args=("out",))
def window_channel_attention_op(
    qkv: torch.Tensor, out: torch.Tensor, num_heads: int, shift: int, out_channel_offset: int
) -> None:
    """:func:`window_channel_attention` into ``out`` ``[B, C_out, H, W]``, one opaque op for torch.compile."""
    window_channel_attention(qkv, num_heads, tuple(out.shape[-2:]), shift, out, out_channel_offset)


@window_channel_attention_op.register_fake
def _window_channel_attention_fake(qkv, out, num_heads, shift, out_channel_offset) -> None:
    check_window_io(qkv, out, num_heads, shift, out_channel_offset)
