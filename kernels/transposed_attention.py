"""Restormer's MDTA (global transposed attention) as three Triton kernels, deterministic.

Reference: :func:`swintormer.layers.attention.channel_attention` with a learned temperature and
ordinary softmax over the whole image, as :class:`swintormer.models.restormer.MDTA` calls it.

``q, k, v`` are read straight out of the depthwise-conv output ``[B, 3C, H, W]`` (no ``chunk`` or
``reshape`` copies; ``normalize(q)`` and ``normalize(k)`` are never materialised):

1. ``_mdta_gram_kernel``, grid ``(splits, B*h)``: split-K over the ``H*W`` tokens; each program
   writes the partial Gram ``q k^T`` ``[d, d]`` and squared norms of its token range, all from one
   read of ``q`` and ``k``;
2. ``_mdta_softmax_kernel``, grid ``(B*h,)``: sums the partials in a fixed order (no atomics, so
   the result is bit-reproducible), ``G / (|q| |k|^T) * temperature``, softmax -> ``[d, d]``;
3. ``_mdta_apply_kernel``, grid ``(cdiv(H*W, BLOCK_N), B*h)``: ``attn @ v`` written as
   ``[B, C, H, W]``, ready for ``project_out``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import triton
import triton.language as tl

from swintormer.kernels import is_interpreting
from swintormer.kernels._common import (
    NORM_EPS,
    check_input,
    dot_precision,
    gram_and_sq_norms,
    head_block,
    launch,
    transposed_softmax,
)

__all__ = ["transposed_attention"]

#: Smallest token range one split reduces (below this, the launch overhead is not worth it).
MIN_SPLIT_TOKENS = 1024
#: Split ranges are multiples of this (the largest BLOCK_N of the configs).
SPLIT_ALIGN = 256

# Sized for a 2080 Ti too (sm_75, 64 KB shared memory): the 32-token configs fit it even at
# d = 96 (padded to 128) in fp32; the autotuner skips configs that run out of shared memory.
_GRAM_CONFIGS = [
    triton.Config({"BLOCK_N": 32}, num_warps=4, num_stages=1),
    triton.Config({"BLOCK_N": 64}, num_warps=4, num_stages=2),
    triton.Config({"BLOCK_N": 128}, num_warps=4, num_stages=1),
    triton.Config({"BLOCK_N": 128}, num_warps=8, num_stages=2),
]
_APPLY_CONFIGS = [
    triton.Config({"BLOCK_N": 32}, num_warps=4, num_stages=1),
    triton.Config({"BLOCK_N": 64}, num_warps=4, num_stages=2),
    triton.Config({"BLOCK_N": 128}, num_warps=4, num_stages=2),
    triton.Config({"BLOCK_N": 256}, num_warps=8, num_stages=2),
]


@triton.jit
def _mdta_gram_kernel(
    qkv_ptr, gram_ptr, sq_ptr, hw, stride_b, stride_third, num_heads, chunk,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, DOT_PRECISION: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """Partials of split ``program_id(0)`` for (image, head) ``program_id(1)``:
    ``gram [B*h, splits, BLOCK_D, BLOCK_D]`` and ``sq [B*h, splits, 2, BLOCK_D]``, fp32.

    ``stride_b = 3C*H*W`` and ``stride_third = C*H*W``: from one image to the next, from q to k.
    """
    split = tl.program_id(0)
    bh = tl.program_id(1)
    splits = tl.num_programs(0)
    image = bh // num_heads
    head = bh % num_heads
    q_base = qkv_ptr + image.to(tl.int64) * stride_b + (head * HEAD_DIM).to(tl.int64) * hw
    k_base = q_base + stride_third
    start = split * chunk
    stop = tl.minimum(start + chunk, hw)
    gram, sq_q, sq_k = gram_and_sq_norms(q_base, k_base, hw, start, stop, HEAD_DIM, BLOCK_N, BLOCK_D, DOT_PRECISION)

    offs_d = tl.arange(0, BLOCK_D)
    part = bh * splits + split
    tl.store(gram_ptr + part * BLOCK_D * BLOCK_D + offs_d[:, None] * BLOCK_D + offs_d[None, :], gram)
    tl.store(sq_ptr + (part * 2) * BLOCK_D + offs_d, sq_q)
    tl.store(sq_ptr + (part * 2 + 1) * BLOCK_D + offs_d, sq_k)


@triton.jit
def _mdta_softmax_kernel(
    gram_ptr, sq_ptr, temperature_ptr, attn_ptr, num_heads, splits,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """``attn [B*h, BLOCK_D, BLOCK_D]`` (fp32) of (image, head) ``program_id(0)`` from the partials,
    summed in split order."""
    bh = tl.program_id(0)
    offs_d = tl.arange(0, BLOCK_D)
    tile = offs_d[:, None] * BLOCK_D + offs_d[None, :]
    gram = tl.zeros((BLOCK_D, BLOCK_D), dtype=tl.float32)
    sq_q = tl.zeros((BLOCK_D,), dtype=tl.float32)
    sq_k = tl.zeros((BLOCK_D,), dtype=tl.float32)
    for split in range(0, splits):
        part = bh * splits + split
        gram += tl.load(gram_ptr + part * BLOCK_D * BLOCK_D + tile)
        sq_q += tl.load(sq_ptr + (part * 2) * BLOCK_D + offs_d)
        sq_k += tl.load(sq_ptr + (part * 2 + 1) * BLOCK_D + offs_d)
    temperature = tl.load(temperature_ptr + bh % num_heads).to(tl.float32)
    attn = transposed_softmax(gram, sq_q, sq_k, temperature, HEAD_DIM, BLOCK_D, NORM_EPS, PLUS_ONE=False)
    tl.store(attn_ptr + bh * BLOCK_D * BLOCK_D + tile, attn)


@triton.jit
def _mdta_apply_kernel(
    qkv_ptr, attn_ptr, out_ptr, hw, stride_b, stride_third, num_heads,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, DOT_PRECISION: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """``out[image, head*d : (head+1)*d, tokens] = attn @ v`` for ``BLOCK_N`` tokens; ``out`` is
    ``[B, C, H, W]``, so its image stride is ``stride_third``."""
    bh = tl.program_id(1)
    image = bh // num_heads
    head = bh % num_heads
    offs_d = tl.arange(0, BLOCK_D)
    offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = (offs_d < HEAD_DIM)[:, None] & (offs_n < hw)[None, :]
    tokens = offs_d[:, None].to(tl.int64) * hw + offs_n[None, :]
    head_offset = (head * HEAD_DIM).to(tl.int64) * hw
    v_base = qkv_ptr + image.to(tl.int64) * stride_b + 2 * stride_third + head_offset
    v = tl.load(v_base + tokens, mask=mask, other=0.0)  # [BLOCK_D, BLOCK_N]
    attn = tl.load(attn_ptr + bh * BLOCK_D * BLOCK_D + offs_d[:, None] * BLOCK_D + offs_d[None, :])
    o = tl.dot(attn.to(v.dtype), v, input_precision=DOT_PRECISION)
    out_base = out_ptr + image.to(tl.int64) * stride_third + head_offset
    tl.store(out_base + tokens, o.to(out_ptr.dtype.element_ty), mask=mask)


_mdta_gram_tuned = triton.autotune(configs=_GRAM_CONFIGS, key=["HEAD_DIM", "chunk"])(_mdta_gram_kernel)
_mdta_apply_tuned = triton.autotune(configs=_APPLY_CONFIGS, key=["HEAD_DIM"])(_mdta_apply_kernel)


def _check(qkv: torch.Tensor, temperature: torch.Tensor, num_heads: int) -> None:
    """Raise ``ValueError`` for inputs the kernels cannot take (shared with the fake kernel)."""
    check_input("qkv", qkv, 4)
    if qkv.shape[1] % (3 * num_heads):
        raise ValueError(f"qkv must be [B, 3C, H, W] with C divisible by {num_heads} heads, got {tuple(qkv.shape)}")
    if temperature.numel() != num_heads:
        raise ValueError(f"temperature needs one value per head ({num_heads}), got {temperature.numel()}")


def _split_tokens(hw: int, batch_heads: int, device: torch.device, num_splits: int | None) -> tuple[int, int]:
    """``(splits, chunk)``: how many token ranges of ``chunk`` tokens the Gram is reduced over.

    By default enough splits for about two programs per SM on a GPU (two under the interpreter),
    each at least ``MIN_SPLIT_TOKENS`` long.
    """
    if num_splits is None:
        target = 2
        if device.type == "cuda" and not is_interpreting():
            target = triton.cdiv(2 * torch.cuda.get_device_properties(device).multi_processor_count, batch_heads)
        num_splits = max(1, min(target, hw // MIN_SPLIT_TOKENS))
    chunk = triton.cdiv(triton.cdiv(hw, num_splits), SPLIT_ALIGN) * SPLIT_ALIGN
    return triton.cdiv(hw, chunk), chunk


def _attention_maps(
    qkv: torch.Tensor,
    temperature: torch.Tensor,
    num_heads: int,
    num_splits: int | None,
    block_sizes: Mapping[str, int] | None,
) -> torch.Tensor:
    """Steps 1 and 2: the softmaxed ``[B*h, BLOCK_D, BLOCK_D]`` maps (fp32, zero-padded)."""
    b, c3, height, width = qkv.shape
    hw, head_dim = height * width, c3 // 3 // num_heads
    block_d = head_block(head_dim)
    splits, chunk = _split_tokens(hw, b * num_heads, qkv.device, num_splits)
    gram = qkv.new_empty(b * num_heads, splits, block_d, block_d, dtype=torch.float32)
    sq = qkv.new_empty(b * num_heads, splits, 2, block_d, dtype=torch.float32)
    args = (qkv, gram, sq, hw, c3 * hw, c3 // 3 * hw, num_heads, chunk, head_dim, block_d, dot_precision(qkv.dtype))
    whole_split = {"BLOCK_N": min(triton.next_power_of_2(chunk), 4096)}
    launch(_mdta_gram_kernel, _mdta_gram_tuned, (splits, b * num_heads), args, block_sizes, whole_split)
    attn = qkv.new_empty(b * num_heads, block_d, block_d, dtype=torch.float32)
    temperature = temperature.reshape(-1).contiguous()
    softmax_args = (gram, sq, temperature, attn, num_heads, splits, head_dim, block_d)
    _mdta_softmax_kernel[(b * num_heads,)](*softmax_args, num_warps=8 if block_d >= 128 else 4)
    return attn


def transposed_attention(
    qkv: torch.Tensor,
    temperature: torch.Tensor,
    num_heads: int,
    out: torch.Tensor | None = None,
    *,
    num_splits: int | None = None,
    block_sizes: Mapping[str, int] | None = None,
) -> torch.Tensor:
    """MDTA: per image and head, ``softmax(normalize(q) normalize(k)^T * t) v`` over all ``H*W`` tokens.

    Args:
        qkv: ``[B, 3C, H, W]``, the depthwise-conv output; ``q, k, v`` are its channel thirds,
            heads of ``d = C/h`` consecutive channels.
        temperature: ``[h, 1, 1]``.
        num_heads: ``h``.
        out: ``[B, C, H, W]`` to write into; allocated when None.
        num_splits: how many token ranges the Gram reduction is split into (default: by device).
        block_sizes: fixed ``BLOCK_N`` for the Gram and apply kernels instead of autotuning.

    Returns:
        ``out`` ``[B, C, H, W]``: ``attn @ v`` with the heads back in channel order.
    """
    _check(qkv, temperature, num_heads)
    b, c3, height, width = qkv.shape
    hw, shape = height * width, (b, c3 // 3, height, width)
    out = qkv.new_empty(shape) if out is None else out
    if out.shape != shape or out.dtype != qkv.dtype or out.device != qkv.device or not out.is_contiguous():
        raise ValueError(f"out must be a contiguous {qkv.dtype} tensor of shape {shape} on {qkv.device}")
    attn = _attention_maps(qkv, temperature, num_heads, num_splits, block_sizes)
    head_dim = c3 // 3 // num_heads
    block_d, precision = head_block(head_dim), dot_precision(qkv.dtype)
    args = (qkv, attn, out, hw, c3 * hw, c3 // 3 * hw, num_heads, head_dim, block_d, precision)

    def grid(meta):
        return (triton.cdiv(hw, meta["BLOCK_N"]), b * num_heads)

    whole_image = {"BLOCK_N": min(triton.next_power_of_2(hw), 4096)}
    launch(_mdta_apply_kernel, _mdta_apply_tuned, grid, args, block_sizes, whole_image)
    return out


@torch.library.custom_op("swintormer::transposed_attention", mutates_args=())
def transposed_attention_op(qkv: torch.Tensor, temperature: torch.Tensor, num_heads: int) -> torch.Tensor:
    """:func:`transposed_attention` as one opaque op for torch.compile: ``[B, 3C, H, W] -> [B, C, H, W]``."""
    return transposed_attention(qkv, temperature, num_heads)


@transposed_attention_op.register_fake
def _transposed_attention_fake(qkv: torch.Tensor, temperature: torch.Tensor, num_heads: int) -> torch.Tensor:
    _check(qkv, temperature, num_heads)
    b, c3, height, width = qkv.shape
    return qkv.new_empty(b, c3 // 3, height, width)
