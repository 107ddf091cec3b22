"""The one pad-and-crop helper: sizes the architecture cannot take are padded, outputs cropped back.

Reflect padding is what the reference code uses; a pad larger than the image (reflect needs
``pad < size``) is applied in several reflect steps, and a 1-pixel axis falls back to replicate.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["crop_to", "pad_to_multiple", "reflect_pad_to"]


def _reflect_pad_axis(x: torch.Tensor, total: int, axis: int) -> torch.Tensor:
    """Pad ``total`` pixels at the end of ``axis`` (2 = rows, 3 = columns) of ``[B, C, H, W]``."""
    while total > 0:
        size = x.shape[axis]
        step = min(total, size - 1) if size > 1 else total
        mode = "reflect" if size > 1 else "replicate"
        pad = (0, step, 0, 0) if axis == 3 else (0, 0, 0, step)
        x = F.pad(x, pad, mode=mode)
        total -= step
    return x


def reflect_pad_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``[B, C, h, w] -> [B, C, height, width]`` by reflecting at the bottom and right edges."""
    h, w = x.shape[-2:]
    if height < h or width < w:
        raise ValueError(f"cannot pad {h}x{w} down to {height}x{width}")
    x = _reflect_pad_axis(x, height - h, axis=2)
    return _reflect_pad_axis(x, width - w, axis=3)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad ``[B, C, h, w]`` so both sides are multiples of ``multiple``; returns it and ``(h, w)``.

    A no-op (no graph op at all when traced) when the size already fits.
    """
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph or pw:
        x = reflect_pad_to(x, h + ph, w + pw)
    return x, (h, w)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``[B, C, H, W] -> [B, C, h, w]``, the top-left ``size`` (a no-op when it already fits)."""
    h, w = size
    if x.shape[-2:] == (h, w):
        return x
    return x[..., :h, :w]
