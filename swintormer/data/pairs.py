"""Training pairs: what every data source yields, and the crops and augmentations they share.

A *pair source* maps an index to one training pair, deterministically: sample ``i`` of a source
seeded ``s`` draws everything it needs from ``np.random.default_rng([s, i])``, so a batch depends
only on the step it belongs to, whatever ran before (this is what makes training resume exactly,
without any data-loader state). Pairs are ``[h, w, C]`` float32 arrays until :func:`collate`
turns a list of them into the ``[B, C, h, w]`` tensors the trainer feeds a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np
import torch

from swintormer.errors import SwintormerError

__all__ = [
    "AUGMENTATIONS",
    "Pair",
    "PairSource",
    "augment",
    "collate",
    "crop_window",
    "sample_rng",
]

#: the 8 symmetries of the square: rotation by ``k % 4`` quarter turns, then a left-right flip if ``k >= 4``
AUGMENTATIONS = 8


@dataclass
class Pair:
    """``input`` ``[h, w, C_in]`` (3: one view; 6: right then left view) and ``target`` ``[h, w, 3]``."""

    input: np.ndarray
    target: np.ndarray
    name: str = ""


class PairSource(Protocol):
    """Anything the trainer can draw pairs from."""

    #: channels of ``Pair.input`` (3 single-image, 6 dual-pixel)
    in_channels: int

    def sample(self, index: int) -> Pair:
        """Training pair number ``index`` (random crop and augmentation, fixed by the source's seed)."""
        ...


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The generator pair ``index`` of a source seeded ``seed`` draws from."""
    return np.random.default_rng([seed, index])


def crop_window(height: int, width: int, size: int, rng: np.random.Generator) -> tuple[int, int]:
    """Top-left corner of a random ``size x size`` window inside ``height x width``."""
    if height < size or width < size:
        raise SwintormerError(f"a {width}x{height} image is smaller than the {size}x{size} training crop; use a smaller --crop")
    return int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1))


def augment(images: Sequence[np.ndarray], k: int) -> list[np.ndarray]:
    """Apply symmetry ``k`` (0..7, 0 = identity) identically to every ``[h, w, C]`` image.

    As the reference DPDD training, dual-pixel views are transformed like any other image (a flip
    mirrors the direction of their disparity; the views are not swapped).
    """
    if not 0 <= k < AUGMENTATIONS:
        raise ValueError(f"augmentation index must be in 0..7, got {k}")
    out = []
    for image in images:
        image = np.rot90(image, k % 4, axes=(0, 1))
        if k >= 4:
            image = image[:, ::-1]
        out.append(np.ascontiguousarray(image))
    return out


def collate(pairs: Sequence[Pair]) -> dict[str, torch.Tensor]:
    """``{"input": [B, C_in, h, w], "target": [B, 3, h, w]}`` float32 tensors."""

    def stack(arrays: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack(arrays).astype(np.float32, copy=False)).permute(0, 3, 1, 2).contiguous()

    return {"input": stack([p.input for p in pairs]), "target": stack([p.target for p in pairs])}
