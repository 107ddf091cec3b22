"""Plain-PyTorch attention of Swintormer and Restormer: the reference the Triton kernels match.

Everything here is export-friendly: no Python-side branching on tensor values, shapes taken from
the tensors, derived tables built from ``arange`` so they trace as graph ops. Precision: the L2
normalisations and the softmaxes run in float32 whatever the input dtype (fp32 islands in fp16
graphs, the TensorRT 11 way of keeping precision in the graph); matmuls stay in the input dtype.

Shapes: ``B`` batch, ``C`` channels, ``H, W`` spatial size, ``M`` window size, ``N = M*M``
tokens per window, ``Bw = B * (H/M) * (W/M)`` windows, ``h`` heads, ``d`` channels per head.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from swintormer.layers.backend import exporting
from swintormer.layers.precision import fp32

__all__ = [
    "channel_attention",
    "channel_branch",
    "continuous_position_bias",
    "l2_normalize",
    "mdta",
    "relative_coords_table",
    "relative_position_index",
    "shift_window_mask",
    "softmax_one",
    "swin_channel_attention",
    "unwindow",
    "window_attention",
    "window_branch",
    "window_partition",
    "window_reverse",
]

#: Swin's mask value for token pairs from different regions of a shifted window.
MASK_VALUE = -100.0
#: Swin-V2 clamps the learned log logit scale at ln(1/0.01) = ln(100).
LOGIT_SCALE_MAX = math.log(100.0)


def softmax_one(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``exp(x - max) / (1 + sum(exp(x - max)))`` along ``dim``, as the reference code writes it.

    The ``1`` is not rescaled by ``exp(-max)``, so this is not the "softmax with an extra zero
    logit"; it is what the Swintormer checkpoints were trained with. Computed in float32 and
    returned in ``x``'s dtype (an fp32 island in fp16 graphs).
    """
    xf = fp32(x)
    e = torch.exp(xf - xf.amax(dim=dim, keepdim=True))
    return (e / (1.0 + e.sum(dim=dim, keepdim=True))).to(x.dtype)


def l2_normalize(x: torch.Tensor, dim: int = -1, scale: torch.Tensor | None = None) -> torch.Tensor:
    """``F.normalize`` computed in float32, returned in ``x``'s dtype (unit vectors are safe in fp16);
    times ``scale`` (broadcast against the norms) when given.

    Written out (``x * (scale / max(||x||, 1e-12))``, the same arithmetic) with a broadcast product:
    ``F.normalize`` expands the norm to ``x``'s shape first, which ONNX exports as an ``Expand``
    that materialises a full-size copy (8% of the default model's ONNX Runtime time); a ``scale``
    folds into the per-vector factor, so scaling costs no pass over ``x``.
    """
    xf = fp32(x)
    norm = torch.linalg.vector_norm(xf, dim=dim, keepdim=True).clamp_min(1e-12)
    factor = 1.0 / norm if scale is None else fp32(scale) / norm
    return (xf * factor).to(x.dtype)


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """``[B, C, H, W] -> [Bw, C, M, M]``, windows in (batch, row, column) order.

    In an exported graph the windows are cut in channels-last order (``[B, H, W, C]`` views on
    both sides): the one real copy then moves runs of ``M*C`` values, not of ``M``, and the
    layout changes at either end fold into the reorders runtimes already make around
    convolutions (one window layer of the default model: ONNX Runtime 9.5 -> 5.9 ms, OpenVINO
    bf16 23.6 -> 14.4 ms a batch of 8; in eager PyTorch the plain form is faster).
    """
    b, c, h, w = x.shape
    m = window_size
    if exporting():
        x = x.permute(0, 2, 3, 1).reshape(b, h // m, m, w // m, m, c).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(-1, m, m, c).permute(0, 3, 1, 2)
    x = x.reshape(b, c, h // m, m, w // m, m)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(-1, c, m, m)


def window_reverse(windows: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``[Bw, C, M, M] -> [B, C, H, W]``, the inverse of :func:`window_partition` (channels-last
    in an exported graph, as there)."""
    _, c, m, _ = windows.shape
    if exporting():
        x = windows.permute(0, 2, 3, 1).reshape(-1, height // m, width // m, m, m, c).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(-1, height, width, c).permute(0, 3, 1, 2)
    x = windows.reshape(-1, height // m, width // m, c, m, m)
    return x.permute(0, 3, 1, 4, 2, 5).reshape(-1, c, height, width)


def relative_coords_table(window_size: int) -> torch.Tensor:
    """Swin-V2 log-spaced relative coordinates, ``[(2M-1)^2, 2]``.

    Offsets in ``[-(M-1), M-1]`` are scaled by ``8/(M-1)`` and mapped through
    ``sign(x) * log2(|x| + 1) / log2(8)``.
    """
    m = window_size
    r = torch.arange(-(m - 1), m, dtype=torch.float32)
    table = torch.stack(torch.meshgrid(r, r, indexing="ij"), dim=-1)  # [2M-1, 2M-1, 2]
    table = table / (m - 1) * 8.0
    table = torch.sign(table) * torch.log2(table.abs() + 1.0) / math.log2(8.0)
    return table.reshape(-1, 2)


def relative_position_index(window_size: int) -> torch.Tensor:
    """For each (query, key) token pair of a window, its row in :func:`relative_coords_table`, ``[N, N]``."""
    m = window_size
    coords = torch.stack(torch.meshgrid(torch.arange(m), torch.arange(m), indexing="ij")).flatten(1)  # [2, N]
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (m - 1)  # [N, N, 2]
    return rel[..., 0] * (2 * m - 1) + rel[..., 1]


def continuous_position_bias(
    mlp_table: torch.Tensor, index: torch.Tensor
) -> torch.Tensor:
    """Gather the CPB-MLP output into a per-head bias: ``[(2M-1)^2, h], [N, N] -> [h, N, N]``.

    The result is ``16 * sigmoid(table[index])``, what Swin-V2 adds to the cosine logits.
    """
    n = index.shape[0]
    bias = mlp_table[index.reshape(-1)].reshape(n, n, -1).permute(2, 0, 1)
    return 16.0 * torch.sigmoid(bias)


def _region_ids(length: int, window_size: int, shift: int, device: torch.device) -> torch.Tensor:
    """Swin's three regions along one axis of the rolled image: ``[L]`` with values 0, 1, 2."""
    pos = torch.arange(length, device=device)
    return (pos >= length - window_size).long() + (pos >= length - shift).long()


def shift_window_mask(
    height: int, width: int, window_size: int, shift: int, device: torch.device | None = None
) -> torch.Tensor:
    """Swin's shifted-window attention mask, ``[nW, N, N]``: 0 within a region, -100 across.

    Regions are ``[0, H-M)``, ``[H-M, H-s)``, ``[H-s, H)`` per axis, computed from coordinates
    (what the fused kernel does too) rather than by slicing an image.
    """
    rows = _region_ids(height, window_size, shift, device)
    cols = _region_ids(width, window_size, shift, device)
    label = (rows[:, None] * 3 + cols[None, :]).to(torch.float32)[None, None]  # [1, 1, H, W]
    label = window_partition(label, window_size).flatten(1)  # [nW, N]
    diff = label[:, None, :] - label[:, :, None]
    return torch.where(diff != 0, torch.full_like(diff, MASK_VALUE), torch.zeros_like(diff))


def window_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    logit_scale: torch.Tensor,
    bias: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Swin-V2 cosine window attention with ``softmax_one``, on channel-major heads.

    The heads stay as the window's ``[d, N]`` channel rows (what reshaping a ``[Bw, C, M, M]``
    window gives, no copy): ``attn = qn^T kn`` and ``out^T = v attn^T``, the same arithmetic as
    ``softmax(qn kn^T) v`` on token-major heads. Every transpose left is a matmul operand, which
    runtimes fold into the matmul (ONNX Runtime's ``FusedMatMul``, OpenVINO's ``transpose_a/b``)
    instead of copying q, k, v and the output into token-major order and back.

    Args:
        q, k, v: ``[Bw, h, d, N]``.
        logit_scale: ``[h, 1, 1]`` learned log scale (clamped at ln 100, then exponentiated).
        bias: ``[h, N, N]`` continuous position bias (already ``16*sigmoid``), ``[query, key]``.
        mask: ``[nW, N, N]`` shift mask or None; windows of one image are consecutive in ``Bw``.

    Returns:
        ``[Bw, h, d, N]``.
    """
    scale = torch.clamp(logit_scale, max=LOGIT_SCALE_MAX).exp()  # [h, 1, 1], on q's d x N, not on N x N
    attn = l2_normalize(q, dim=-2, scale=scale).transpose(-2, -1) @ l2_normalize(k, dim=-2)  # [Bw, h, N, N]
    if mask is None:
        attn = attn + bias.to(attn.dtype)
    else:  # bias and mask summed once per image's windows, then one addition over the batch
        bw, h, n, _ = attn.shape
        nw = mask.shape[0]
        bias = (bias[None] + mask[:, None]).to(attn.dtype)  # [nW, h, N, N]
        attn = (attn.reshape(bw // nw, nw, h, n, n) + bias).reshape(bw, h, n, n)
    return v @ softmax_one(attn).transpose(-2, -1)


def channel_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    temperature: torch.Tensor | None = None,
    use_softmax_one: bool = True,
) -> torch.Tensor:
    """Transposed (channel) attention: a ``d x d`` map per head over the token axis.

    Swintormer's channel branch runs it inside each window (``N = 256`` tokens, ``softmax_one``,
    no temperature); Restormer's MDTA runs it over the whole image (``N = H*W``, learned
    temperature, ordinary softmax).

    Args:
        q, k, v: ``[B, h, d, N]``; q and k are L2-normalised over ``N``.
        temperature: ``[h, 1, 1]`` or None.

    Returns:
        ``[B, h, d, N]``.
    """
    attn = l2_normalize(q) @ l2_normalize(k).transpose(-2, -1)
    if temperature is not None:
        attn = attn * temperature.to(attn.dtype)
    attn = softmax_one(attn) if use_softmax_one else fp32(attn).softmax(dim=-1).to(v.dtype)
    return attn @ v


# --- the compositions the models run (and the kernel tests and benchmark hold the kernels to) ----


def window_branch(
    qkv: torch.Tensor | Sequence[torch.Tensor], num_heads: int, logit_scale: torch.Tensor, bias: torch.Tensor,
    mask: torch.Tensor | None,
) -> torch.Tensor:
    """Swintormer's window branch: ``[Bw, 3C', M, M]`` (its q, k, v; or the three ``[Bw, C', M, M]``)
    -> ``[Bw, C', M, M]``."""
    parts = qkv.chunk(3, dim=1) if isinstance(qkv, torch.Tensor) else qkv
    bw, _, m, _ = parts[0].shape
    q, k, v = (t.reshape(bw, num_heads, -1, m * m) for t in parts)
    out = window_attention(q, k, v, logit_scale, bias, mask)  # [Bw, h, d, N]
    return out.reshape(bw, -1, m, m)


def channel_branch(qkv: torch.Tensor | Sequence[torch.Tensor], num_heads: int) -> torch.Tensor:
    """Swintormer's channel branch inside each window: ``[Bw, 3C', M, M]`` (or its three parts)
    -> ``[Bw, C', M, M]``."""
    parts = qkv.chunk(3, dim=1) if isinstance(qkv, torch.Tensor) else qkv
    bw, _, m, _ = parts[0].shape
    q, k, v = (t.reshape(bw, num_heads, -1, m * m) for t in parts)
    out = channel_attention(q, k, v, temperature=None, use_softmax_one=True)  # [Bw, h, d, N]
    return out.reshape(bw, -1, m, m)


def swin_channel_attention(
    qkv: torch.Tensor | Sequence[torch.Tensor], num_heads: int, logit_scale: torch.Tensor, bias: torch.Tensor,
    mask: torch.Tensor | None,
) -> torch.Tensor:
    """Both branches of Swintormer's attention on the per-window qkv: ``[Bw, 3C, M, M] -> [Bw, C, M, M]``.

    The first half of the channels feeds the window branch, the second the channel branch; the
    outputs are concatenated in that order (what ``project_out`` takes), still in windows.
    ``qkv`` may also be its six ``[Bw, C/2, M, M]`` parts (window q, k, v, channel q, k, v), as
    the exported graphs compute them (no Split copies).
    """
    spatial, channel = qkv.chunk(2, dim=1) if isinstance(qkv, torch.Tensor) else (qkv[:3], qkv[3:])
    return torch.cat([window_branch(spatial, num_heads, logit_scale, bias, mask), channel_branch(channel, num_heads)], dim=1)


def unwindow(windows: torch.Tensor, height: int, width: int, shift: int) -> torch.Tensor:
    """``[Bw, C, M, M] -> [B, C, H, W]``: windows reversed, then rolled back by ``+shift``."""
    x = window_reverse(windows, height, width)
    return torch.roll(x, shifts=(shift, shift), dims=(2, 3)) if shift else x


def mdta(qkv: torch.Tensor, temperature: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Restormer's MDTA on the depthwise-conv output, whole image: ``[B, 3C, H, W] -> [B, C, H, W]``."""
    b, c3, height, width = qkv.shape
    q, k, v = (t.reshape(b, num_heads, -1, height * width) for t in qkv.chunk(3, dim=1))
    out = channel_attention(q, k, v, temperature=temperature, use_softmax_one=False)
    return out.reshape(b, c3 // 3, height, width)
