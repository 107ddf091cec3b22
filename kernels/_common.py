"""Pieces the attention kernels share: launch helpers and small ``@triton.jit`` device functions.

Private to ``swintormer.kernels``; importing it imports Triton.

Shapes: ``M`` window size, ``N = M*M`` tokens per window, ``d`` channels per head (``HEAD_DIM``),
padded to ``BLOCK_D`` (a power of two, at least 16 so that ``tl.dot`` accepts it on a GPU).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import triton
import triton.language as tl

from swintormer.kernels import SUPPORTED_DTYPES, is_interpreting

#: ``F.normalize``'s default epsilon: norms are clamped below at this value. Globals a
#: ``@triton.jit`` body reads must be ``tl.constexpr`` (the compiler rejects plain floats; the
#: interpreter does not, so tests/kernels/test_constexpr_globals.py checks it on a CPU).
NORM_EPS = tl.constexpr(1e-12)


def head_block(head_dim: int) -> int:
    """``BLOCK_D``: ``head_dim`` padded to a power of two, at least 16 (``tl.dot``'s minimum)."""
    return max(16, triton.next_power_of_2(head_dim))


def dot_precision(dtype: torch.dtype) -> str:
    """``tl.dot``'s ``input_precision``: ``"ieee"`` for fp32 (no silent tf32), ``"tf32"`` otherwise.

    For fp16 operands the value is ignored (tensor cores, fp32 accumulation).
    """
    return "ieee" if dtype == torch.float32 else "tf32"


def check_input(name: str, x: torch.Tensor, ndim: int) -> None:
    """Raise ``ValueError`` unless ``x`` is a contiguous fp16/fp32 tensor with ``ndim`` dims."""
    if x.dim() != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(x.shape)}")
    if x.dtype not in SUPPORTED_DTYPES:
        raise ValueError(f"{name} must be float16 or float32, got {x.dtype}")
    if not x.is_contiguous():
        raise ValueError(f"{name} must be contiguous")


def check_window_io(qkv: torch.Tensor, out: torch.Tensor, num_heads: int, shift: int, out_channel_offset: int) -> None:
    """Raise ``ValueError`` unless ``qkv`` ``[Bw, 3C, M, M]`` windows tile ``out`` ``[B, C_out, H, W]``
    and a branch's ``C/2`` channels fit ``out`` from ``out_channel_offset``."""
    check_input("qkv", qkv, 4)
    bw, c3, m, m2 = qkv.shape
    b, c_out, height, width = out.shape
    half = c3 // 6
    if m != m2 or c3 % 6 or half % num_heads:
        raise ValueError(f"qkv must be [Bw, 3C, M, M] with C/2 divisible by {num_heads} heads, got {tuple(qkv.shape)}")
    if height % m or width % m or bw != b * (height // m) * (width // m):
        raise ValueError(f"{bw} windows of {m}x{m} do not tile out {tuple(out.shape)}")
    if not 0 <= shift < m:
        raise ValueError(f"shift must be in [0, {m}), got {shift}")
    if not 0 <= out_channel_offset <= c_out - half:
        raise ValueError(f"channels [{out_channel_offset}, +{half}) do not fit out's {c_out} channels")
    if out.dtype != qkv.dtype or out.device != qkv.device:
        raise ValueError(f"out ({out.dtype}, {out.device}) must match qkv ({qkv.dtype}, {qkv.device})")


def window_output(qkv: torch.Tensor, image_size: tuple[int, int], out: torch.Tensor | None) -> torch.Tensor:
    """``out``, or a new ``[B, C/2, H, W]`` for one branch of ``qkv`` ``[Bw, 3C, M, M]``."""
    if out is not None:
        if tuple(out.shape[-2:]) != tuple(image_size):
            raise ValueError(f"out {tuple(out.shape)} does not match image_size {tuple(image_size)}")
        return out
    bw, c3, m, _ = qkv.shape
    height, width = image_size
    return qkv.new_empty(bw // max(1, (height // m) * (width // m)), c3 // 6, height, width)


def window_kernel_args(
    qkv: torch.Tensor, out: torch.Tensor, num_heads: int, shift: int, out_channel_offset: int
) -> tuple:
    """The arguments both window kernels take after their pointers, in their order: output
    strides, ``num_heads, half_channels, out_channel_offset, n_win_w, n_win, height, width`` and
    the constexprs ``M, SHIFT, HEAD_DIM, BLOCK_D, DOT_PRECISION``."""
    _, c3, m, _ = qkv.shape
    height, width = out.shape[-2:]
    half = c3 // 6
    head_dim = half // num_heads
    n_win_w = width // m
    return (
        *out.stride(), num_heads, half, out_channel_offset, n_win_w, (height // m) * n_win_w, height, width,
        m, shift, head_dim, head_block(head_dim), dot_precision(qkv.dtype),
    )  # fmt: skip


Grid = tuple[int, ...] | Callable[[dict[str, Any]], tuple[int, ...]]


def launch(kernel: Any, tuned_kernel: Any, grid: Grid, args: tuple, block_sizes: Mapping[str, int] | None,
           default: dict[str, int]) -> None:  # fmt: skip
    """Run ``tuned_kernel`` (autotuned) on a GPU, or ``kernel`` with fixed block sizes.

    Fixed sizes are ``block_sizes`` when given (tests force several blocks per loop this way) and
    ``default`` (large blocks: the interpreter runs the grid serially) under the interpreter.
    """
    if block_sizes is None and not is_interpreting():
        tuned_kernel[grid](*args)
        return
    meta = dict(default if block_sizes is None else block_sizes)
    meta.setdefault("num_warps", 4)
    kernel[grid](*args, **meta)


# Device functions. Under the interpreter each call of one re-patches triton.language (about as
# costly as a dozen tensor ops) and every integer add/mul is overflow-checked, so the kernels call
# few of them and keep integer arithmetic on 1D vectors and scalars.


@triton.jit
def window_output_offsets(win, offs_n, M: tl.constexpr, SHIFT: tl.constexpr, n_win_w, n_win, height, width,
                          stride_b, stride_h, stride_w):
    """Element offsets, in the un-partitioned, un-rolled ``[B, C, H, W]`` output, of tokens
    ``offs_n`` of window ``win`` (windows numbered (image, window row, window column), tokens
    row-major inside a window).

    The block rolled its input by ``-SHIFT`` before partitioning; rolling back sends rolled pixel
    ``p`` to ``(p + SHIFT) mod size``, so neither ``window_reverse`` nor the roll costs a copy.
    """
    local = win % n_win
    row = (local // n_win_w) * M + offs_n // M
    col = (local % n_win_w) * M + offs_n % M
    if SHIFT > 0:
        row = (row + SHIFT) % height
        col = (col + SHIFT) % width
    return (win // n_win).to(tl.int64) * stride_b + row * stride_h + col * stride_w


@triton.jit
def gram_and_sq_norms(q_base, k_base, stride_c, start, stop,
                      HEAD_DIM: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
                      DOT_PRECISION: tl.constexpr):
    """Over tokens ``[start, stop)`` of ``q, k: [d, tokens]`` (token stride 1, channel stride
    ``stride_c``): the Gram ``q k^T`` ``[BLOCK_D, BLOCK_D]`` and the squared row norms of ``q`` and
    ``k`` ``[BLOCK_D]``, all fp32, in one pass over the data."""
    offs_d = tl.arange(0, BLOCK_D)
    mask_d = offs_d < HEAD_DIM
    rows = offs_d[:, None] * stride_c
    q_rows = q_base + rows
    k_rows = k_base + rows
    gram = tl.zeros((BLOCK_D, BLOCK_D), dtype=tl.float32)
    sq_q = tl.zeros((BLOCK_D,), dtype=tl.float32)
    sq_k = tl.zeros((BLOCK_D,), dtype=tl.float32)
    for n0 in range(start, stop, BLOCK_N):
        offs_n = n0 + tl.arange(0, BLOCK_N)
        mask = mask_d[:, None] & (offs_n < stop)[None, :]
        q = tl.load(q_rows + offs_n[None, :], mask=mask, other=0.0)
        k = tl.load(k_rows + offs_n[None, :], mask=mask, other=0.0)
        gram = tl.dot(q, tl.trans(k), gram, input_precision=DOT_PRECISION)
        qf = q.to(tl.float32)
        kf = k.to(tl.float32)
        sq_q += tl.sum(qf * qf, axis=1)
        sq_k += tl.sum(kf * kf, axis=1)
    return gram, sq_q, sq_k


@triton.jit
def transposed_softmax(gram, sq_q, sq_k, scale, HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr,
                       EPS: tl.constexpr, PLUS_ONE: tl.constexpr):
    """The ``[BLOCK_D, BLOCK_D]`` channel-attention map from the Gram and the squared norms:
    ``softmax(G / (|q| |k|^T) * scale)`` over the ``HEAD_DIM`` valid columns (padded ones get 0).

    ``G / (|q| |k|^T)`` is ``normalize(q) normalize(k)^T`` with each norm clamped below at ``EPS``
    as ``F.normalize`` does. ``PLUS_ONE``: Swintormer's ``softmax_one``,
    ``exp(x - max) / (1 + sum exp(x - max))``; otherwise the ordinary softmax.
    """
    inv_q = scale / tl.maximum(tl.sqrt(sq_q), EPS)
    inv_k = 1.0 / tl.maximum(tl.sqrt(sq_k), EPS)
    x = gram * inv_q[:, None] * inv_k[None, :]
    x = tl.where((tl.arange(0, BLOCK_D) < HEAD_DIM)[None, :], x, float("-inf"))
    e = tl.exp(x - tl.max(x, axis=1)[:, None])
    denom = tl.sum(e, axis=1)
    if PLUS_ONE:
        denom += 1.0
    return e / denom[:, None]
