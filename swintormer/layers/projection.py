"""Convolutions whose output is split into equal channel chunks, computed chunk by chunk.

In PyTorch ``conv(x).chunk(n, dim=1)`` costs nothing beyond the convolution (the chunks are
views); in an exported graph every ``Split`` is a copy of the whole tensor, and on the default
model they were the largest single cost on a CPU (21% of OpenVINO's time, 10% of ONNX Runtime's).
:func:`chunked_conv` writes the same arithmetic as one convolution per chunk on a slice of the
weights (constants in the graph), so the graph has no ``Split`` at all.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["chunked_conv"]


def _conv_slice(x: torch.Tensor, conv: nn.Conv2d, lo: int, hi: int) -> torch.Tensor:
    """Output channels ``[lo, hi)`` of ``conv`` (a depthwise ``conv`` reads input channels ``[lo, hi)``)."""
    bias = None if conv.bias is None else conv.bias[lo:hi]
    groups = hi - lo if conv.groups > 1 else 1
    if conv.groups > 1 and conv.groups != conv.in_channels:
        raise ValueError("chunked_conv handles dense and depthwise convolutions only")
    return F.conv2d(x, conv.weight[lo:hi], bias, conv.stride, conv.padding, conv.dilation, groups)


def chunked_conv(x: torch.Tensor, conv: nn.Conv2d, chunks: int, depthwise: nn.Conv2d | None = None) -> list[torch.Tensor]:
    """``depthwise(conv(x)).chunk(chunks, dim=1)``, one chunk at a time: ``[B, Cin, H, W] -> chunks x [B, Cout/chunks, H, W]``.

    ``depthwise``: an optional depthwise convolution applied after ``conv`` (it maps each channel
    to itself, so it splits along the same chunks).
    """
    step = conv.out_channels // chunks
    if step * chunks != conv.out_channels:
        raise ValueError(f"{conv.out_channels} channels do not split into {chunks} equal chunks")
    out = []
    for i in range(chunks):
        y = _conv_slice(x, conv, i * step, (i + 1) * step)
        out.append(y if depthwise is None else _conv_slice(y, depthwise, i * step, (i + 1) * step))
    return out
