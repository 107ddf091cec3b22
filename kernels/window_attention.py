"""Swintormer's shifted-window cosine attention (the spatial branch) as one Triton kernel.

Reference: :func:`swintormer.layers.attention.window_attention` as
:class:`swintormer.models.swintormer.SwinChannelAttention` calls it.

What is fused, per (window, head, block of queries), in ``_window_attn_fwd_kernel``:

- reading ``q, k, v`` straight out of the qkv-conv output ``[Bw, 3C, M, M]`` by address
  arithmetic (no ``chunk``/``reshape``/``transpose`` copies);
- the L2 normalisation of ``q`` and ``k``, done as ``(q k^T) / (|q| |k|^T)`` on the raw dot
  product, and the clamped, exponentiated logit scale;
- the continuous position bias, gathered from the ``[(2M-1)^2, h]`` table (the CPB MLP's
  output after ``16*sigmoid``, computed outside: it is tiny and shared by all windows) with the
  relative position index computed from token coordinates. The table is ~4 KB per head and stays
  in L1; the gathered ``[h, N, N]`` bias would be 256 KB per head, read again for every window;
- the shift mask, computed from coordinates (Swin's three regions per axis, -100 across regions);
- ``softmax_one`` (online, flash-attention style: ``exp(s - max)`` and the running sum are
  rescaled as the max grows; the final division is by ``1 + sum``) and the product with ``v``;
- the output write: straight into the un-partitioned, un-rolled ``[B, C, H, W]`` layout at channel
  ``out_channel_offset + head*d``. ``project_out`` is a 1x1 conv, so it commutes with
  ``window_reverse`` and the roll back; the caller applies it to that buffer. The head transpose,
  the concatenation with the channel branch, ``window_reverse`` and the roll back cost no copy.

Not fused: the roll and window partition of the block input and the qkv convs. The 3x3 depthwise
conv runs on each window as its own image (zero padding at every window border), so its input
must be partitioned; cuDNN runs both convs. Triton is imported by this module only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import triton
import triton.language as tl

from swintormer.kernels._common import (
    NORM_EPS,
    check_window_io,
    launch,
    window_kernel_args,
    window_output,
    window_output_offsets,
)

__all__ = ["window_attention"]

#: Swin-V2's clamp of the learned log logit scale, ln(100).
LOGIT_SCALE_MAX = tl.constexpr(math.log(100.0))
#: Swin's mask value for token pairs from different regions of a shifted window.
MASK_VALUE = tl.constexpr(-100.0)

# Sized for a 2080 Ti too (sm_75, 64 KB shared memory): the 32/64-wide tiles fit it in fp16 and
# fp32; the autotuner skips any config that runs out of shared memory on the device at hand.
_GPU_CONFIGS = [
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 64}, num_warps=4, num_stages=2),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 32}, num_warps=4, num_stages=2),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 64}, num_warps=8, num_stages=2),
    triton.Config({"BLOCK_M": 32, "BLOCK_N": 64}, num_warps=4, num_stages=1),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 32}, num_warps=4, num_stages=1),
]


@triton.jit
def _window_attn_fwd_kernel(
    qkv_ptr, logit_scale_ptr, table_ptr, out_ptr,
    stride_ob, stride_oc, stride_oh, stride_ow,
    num_heads, half_channels, out_channel_offset, n_win_w, n_win, height, width,
    M: tl.constexpr, SHIFT: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr,
    DOT_PRECISION: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """Grid ``(cdiv(N, BLOCK_M), Bw * h)``: queries ``[BLOCK_M]`` of one (window, head).

    ``table_ptr``: the bias table as ``[h, (2M-1)^2]``, contiguous.
    """
    N: tl.constexpr = M * M
    EVEN_M: tl.constexpr = N % BLOCK_M == 0
    EVEN_N: tl.constexpr = N % BLOCK_N == 0
    win = tl.program_id(1) // num_heads
    head = tl.program_id(1) % num_heads
    # q, k, v of this head are [d, N] blocks (token stride 1, channel stride N) of the window.
    branch = half_channels * N  # elements of one of q, k, v in a window
    q_base = qkv_ptr + win.to(tl.int64) * (6 * branch) + head * (HEAD_DIM * N)
    k_base = q_base + branch
    v_base = k_base + branch
    # The table row of token pair (i, j) is (dy + M-1) * (2M-1) + (dx + M-1) = rel_i - rel_j + const
    # with rel = row * (2M-1) + col: two 1D vectors instead of a 2D index computation.
    table_head = table_ptr + head * ((2 * M - 1) * (2 * M - 1)) + ((2 * M - 1) * (M - 1) + (M - 1))

    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    mask_m = offs_m < N
    mask_d = offs_d < HEAD_DIM
    q = tl.load(q_base + offs_d[None, :] * N + offs_m[:, None], mask=mask_m[:, None] & mask_d[None, :], other=0.0)
    qf = q.to(tl.float32)
    scale = tl.exp(tl.minimum(tl.load(logit_scale_ptr + head).to(tl.float32), LOGIT_SCALE_MAX))
    # cosine logits = (q . k) * scale / (|q| |k|): fold scale / |q| into one per-query factor
    q_factor = scale / tl.maximum(tl.sqrt(tl.sum(qf * qf, axis=1)), NORM_EPS)
    row_m = offs_m // M
    col_m = offs_m % M
    rel_m = row_m * (2 * M - 1) + col_m
    if SHIFT > 0:
        # Only the last window row/column of the rolled image straddles Swin's regions, split at
        # row/column M - SHIFT of the window; a token's label says which side it is on.
        last_row = (win % n_win) // n_win_w == n_win // n_win_w - 1
        last_col = (win % n_win) % n_win_w == n_win_w - 1
        label_m = tl.where(last_row & (row_m >= M - SHIFT), 2, 0) + tl.where(last_col & (col_m >= M - SHIFT), 1, 0)

    m_i = tl.full((BLOCK_M,), float("-inf"), dtype=tl.float32)
    l_i = tl.zeros((BLOCK_M,), dtype=tl.float32)
    acc = tl.zeros((BLOCK_M, BLOCK_D), dtype=tl.float32)
    for n0 in range(0, N, BLOCK_N):
        offs_n = n0 + tl.arange(0, BLOCK_N)
        mask_n = offs_n < N
        k_t = tl.load(k_base + offs_d[:, None] * N + offs_n[None, :], mask=mask_d[:, None] & mask_n[None, :], other=0.0)
        kf = k_t.to(tl.float32)
        k_factor = 1.0 / tl.maximum(tl.sqrt(tl.sum(kf * kf, axis=0)), NORM_EPS)
        s = tl.dot(q, k_t, input_precision=DOT_PRECISION) * q_factor[:, None] * k_factor[None, :]
        row_n = offs_n // M
        col_n = offs_n % M
        bias_ptrs = table_head + rel_m[:, None] - (row_n * (2 * M - 1) + col_n)[None, :]
        if EVEN_M and EVEN_N:
            s += tl.load(bias_ptrs).to(tl.float32)
        else:
            s += tl.load(bias_ptrs, mask=mask_m[:, None] & mask_n[None, :], other=0.0).to(tl.float32)
        if SHIFT > 0:
            label_n = tl.where(last_row & (row_n >= M - SHIFT), 2, 0) + tl.where(last_col & (col_n >= M - SHIFT), 1, 0)
            s = tl.where(label_m[:, None] == label_n[None, :], s, s + MASK_VALUE)
        if not EVEN_N:
            s = tl.where(mask_n[None, :], s, float("-inf"))
        # online softmax_one: what was summed so far is rescaled to the new running max
        m_new = tl.maximum(m_i, tl.max(s, axis=1))
        alpha = tl.exp(m_i - m_new)
        p = tl.exp(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, axis=1)
        v = tl.load(v_base + offs_d[None, :] * N + offs_n[:, None], mask=mask_n[:, None] & mask_d[None, :], other=0.0)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=DOT_PRECISION)
        m_i = m_new
    acc = acc / (1.0 + l_i)[:, None]

    offs_hw = window_output_offsets(win, offs_m, M, SHIFT, n_win_w, n_win, height, width,
                                    stride_ob, stride_oh, stride_ow)  # fmt: skip
    channels = (out_channel_offset + head * HEAD_DIM + offs_d).to(tl.int64) * stride_oc
    tl.store(out_ptr + offs_hw[:, None] + channels[None, :], acc.to(out_ptr.dtype.element_ty),
             mask=mask_m[:, None] & mask_d[None, :])


_window_attn_fwd_tuned = triton.autotune(configs=_GPU_CONFIGS, key=["M", "HEAD_DIM"])(_window_attn_fwd_kernel)


def _check(qkv: torch.Tensor, logit_scale: torch.Tensor, bias_table: torch.Tensor, out: torch.Tensor,
           num_heads: int, shift: int, out_channel_offset: int) -> None:
    """Raise ``ValueError`` for inputs the kernel cannot take (shared with the fake kernel)."""
    check_window_io(qkv, out, num_heads, shift, out_channel_offset)
    m = qkv.shape[-1]
    if logit_scale.numel() != num_heads or tuple(bias_table.shape) != ((2 * m - 1) ** 2, num_heads):
        raise ValueError("logit_scale needs one value per head and bias_table shape [(2M-1)^2, heads]")


def window_attention(
    qkv: torch.Tensor,
    logit_scale: torch.Tensor,
    bias_table: torch.Tensor,
    num_heads: int,
    image_size: tuple[int, int],
    shift: int = 0,
    out: torch.Tensor | None = None,
    out_channel_offset: int = 0,
    *,
    block_sizes: Mapping[str, int] | None = None,
) -> torch.Tensor:
    """Shifted-window cosine attention read from the qkv-conv output, written un-partitioned.

    Args:
        qkv: ``[Bw, 3C, M, M]``, the per-window depthwise-conv output; channels ``[0, 3C/2)`` hold
            this branch's ``q, k, v`` (``C/2`` each, heads of ``d = C/(2h)`` consecutive channels).
        logit_scale: ``[h, 1, 1]`` learned log scale.
        bias_table: ``[(2M-1)^2, h]``, ``16 * sigmoid(cpb_mlp(relative_coords_table))``.
        num_heads: ``h``.
        image_size: ``(H, W)`` of the image the windows tile.
        shift: the block's cyclic shift (the input was rolled by ``-shift`` before partitioning).
        out: ``[B, C_out, H, W]`` to write channels ``[out_channel_offset, +C/2)`` of; allocated as
            ``[B, C/2, H, W]`` when None.
        block_sizes: fixed ``BLOCK_M``/``BLOCK_N`` (and optionally ``num_warps``) instead of
            autotuning; the interpreter's default is one block per window.

    Returns:
        ``out``, un-rolled by ``shift``: what ``roll(window_reverse(attention), +shift)`` gives.
    """
    out = window_output(qkv, image_size, out)
    _check(qkv, logit_scale, bias_table, out, num_heads, shift, out_channel_offset)
    bw, _, m, _ = qkv.shape
    n = m * m
    scale, table = logit_scale.reshape(-1).contiguous(), bias_table.t().contiguous()  # [h], [h, (2M-1)^2]
    args = (qkv, scale, table, out, *window_kernel_args(qkv, out, num_heads, shift, out_channel_offset))

    def grid(meta):
        return (triton.cdiv(n, meta["BLOCK_M"]), bw * num_heads)

    whole_window = {"BLOCK_M": triton.next_power_of_2(n), "BLOCK_N": triton.next_power_of_2(n)}
    launch(_window_attn_fwd_kernel, _window_attn_fwd_tuned, grid, args, block_sizes, whole_window)
    return out


@torch.library.custom_op("swintormer::window_attention", mutates_args=("out",))
def window_attention_op(
    qkv: torch.Tensor,
    logit_scale: torch.Tensor,
    bias_table: torch.Tensor,
    out: torch.Tensor,
    num_heads: int,
    shift: int,
    out_channel_offset: int,
) -> None:
    """:func:`window_attention` into ``out`` ``[B, C_out, H, W]``, one opaque op for torch.compile."""
    window_attention(qkv, logit_scale, bias_table, num_heads, tuple(out.shape[-2:]), shift, out, out_channel_offset)


@window_attention_op.register_fake
def _window_attention_fake(qkv, logit_scale, bias_table, out, num_heads, shift, out_channel_offset) -> None:
    _check(qkv, logit_scale, bias_table, out, num_heads, shift, out_channel_offset)
