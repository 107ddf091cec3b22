"""Channel LayerNorms of the two reference architectures, on ``[B, C, H, W]`` feature maps.

Both keep their parameters under ``.body`` so upstream state-dict keys (``norm1.body.weight``)
load unchanged, and both normalise in float32 whatever the input dtype (fp32 islands in fp16
graphs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from swintormer.layers.backend import exporting
from swintormer.layers.precision import fp32

__all__ = ["ChannelLayerNorm", "GroupNorm32", "RestormerLayerNorm"]


class ChannelLayerNorm(nn.Module):
    """Swintormer's norm: ``nn.LayerNorm(C)`` (eps 1e-5) applied to each pixel's channel vector."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W] -> [B, C, H, W]``, computed in float32 and returned in ``x``'s dtype.

        In an exported graph the same statistics are taken over axis 1 directly: no transposes
        around a last-axis LayerNorm. Neither ONNX Runtime 1.32 nor OpenVINO 2026.4 fuses the
        pattern on axis 1 (both fuse last-axis norms only: OpenVINO's MVN), so it runs as two
        ReduceMeans and elementwise ops, cheaper than the two layout copies a fused norm would need.
        """
        b = self.body
        if exporting():
            xf = fp32(x)
            mu = xf.mean(1, keepdim=True)
            centred = xf - mu
            var = (centred * centred).mean(1, keepdim=True)
            y = centred / torch.sqrt(var + b.eps) * fp32(b.weight)[:, None, None] + fp32(b.bias)[:, None, None]
            return y.to(x.dtype)
        y = F.layer_norm(fp32(x.permute(0, 2, 3, 1)), b.normalized_shape, fp32(b.weight), fp32(b.bias), b.eps)
        return y.to(x.dtype).permute(0, 3, 1, 2)


class _RestormerNormBody(nn.Module):
    """Restormer's hand-written norm over the last axis: ``WithBias`` or ``BiasFree``.

    BiasFree divides by the standard deviation (the variance is still taken around the mean) and
    does not subtract the mean, exactly as the published code does.
    """

    def __init__(self, dim: int, with_bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if with_bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., C] -> [..., C]``, computed in float32 and returned in ``x``'s dtype."""
        xf = fp32(x)
        mu = xf.mean(-1, keepdim=True)
        var = xf.var(-1, keepdim=True, unbiased=False)
        if self.bias is None:
            y = xf / torch.sqrt(var + 1e-5) * fp32(self.weight)
        else:
            y = (xf - mu) / torch.sqrt(var + 1e-5) * fp32(self.weight) + fp32(self.bias)
        return y.to(x.dtype)


class RestormerLayerNorm(nn.Module):
    """Restormer's ``LayerNorm(dim, LayerNorm_type)`` on ``[B, C, H, W]``."""

    def __init__(self, dim: int, layernorm_type: str) -> None:
        super().__init__()
        if layernorm_type not in ("WithBias", "BiasFree"):
            raise ValueError(f"layernorm_type must be 'WithBias' or 'BiasFree', got {layernorm_type!r}")
        self.body = _RestormerNormBody(dim, with_bias=layernorm_type == "WithBias")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W] -> [B, C, H, W]``."""
        return self.body(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class GroupNorm32(nn.GroupNorm):
    """``nn.GroupNorm`` computed in float32 and returned in the input's dtype (as LDM's GroupNorm32)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = None if self.weight is None else fp32(self.weight)
        b = None if self.bias is None else fp32(self.bias)
        return F.group_norm(fp32(x), self.num_groups, w, b, self.eps).to(x.dtype)
