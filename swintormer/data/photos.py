"""The real photographs scikit-image ships, and the fixed train/test split we use them in.

Only photographs of real scenes are used (no rendered patterns, binary masks or phantoms).
Grayscale photographs become RGB by repeating the channel. The split is fixed, by name:

- **test**: ``chelsea`` (the bundled sample; ``cat`` is the same photograph under another name and
  is never used), ``rocket``, ``coffee``, ``coins``, ``camera``;
- **train**: everything else; the two views of ``stereo_motorcycle`` are near-duplicates and
  both stay on the training side.

Each photograph carries the indoor/outdoor label the evaluation groups by (as DPDD's Table 5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from swintormer.errors import SwintormerError

__all__ = ["PHOTOS", "Photo", "load_photo", "split_photos"]

Split = Literal["train", "test"]
Category = Literal["indoor", "outdoor"]


@dataclass(frozen=True)
class Photo:
    """One bundled photograph: ``name`` (ours), the ``skimage.data`` function, view index, split, scene."""

    name: str
    source: str
    split: Split
    category: Category
    index: int | None = None  # element of a tuple-returning loader (stereo pairs)


PHOTOS: tuple[Photo, ...] = (
    # held out: the model never sees these in training
    Photo("chelsea", "chelsea", "test", "indoor"),
    Photo("coffee", "coffee", "test", "indoor"),
    Photo("coins", "coins", "test", "indoor"),
    Photo("rocket", "rocket", "test", "outdoor"),
    Photo("camera", "camera", "test", "outdoor"),
    # training
    Photo("astronaut", "astronaut", "train", "indoor"),
    Photo("brick", "brick", "train", "outdoor"),
    Photo("cell", "cell", "train", "indoor"),
    Photo("clock", "clock", "train", "indoor"),
    Photo("grass", "grass", "train", "outdoor"),
    Photo("gravel", "gravel", "train", "outdoor"),
    Photo("hubble_deep_field", "hubble_deep_field", "train", "outdoor"),
    Photo("immunohistochemistry", "immunohistochemistry", "train", "indoor"),
    Photo("moon", "moon", "train", "outdoor"),
    Photo("page", "page", "train", "indoor"),
    Photo("retina", "retina", "train", "indoor"),
    Photo("stereo_motorcycle_left", "stereo_motorcycle", "train", "indoor", index=0),
    Photo("stereo_motorcycle_right", "stereo_motorcycle", "train", "indoor", index=1),
    Photo("text", "text", "train", "outdoor"),
)

#: photographs larger than this on their long side are downscaled (area filter) when loaded
MAX_SIDE = 800


def split_photos(split: Split) -> list[Photo]:
    """The photographs of one split, in a fixed order."""
    if split not in ("train", "test"):
        raise SwintormerError(f"unknown split {split!r}: expected 'train' or 'test'")
    return [p for p in PHOTOS if p.split == split]


def load_photo(photo: Photo, max_side: int = MAX_SIDE) -> np.ndarray:
    """The photograph as ``float32 [H, W, 3]`` in ``[0, 1]`` (grayscale repeated to RGB)."""
    import cv2
    from skimage import data

    array = getattr(data, photo.source)()
    if photo.index is not None:
        array = array[photo.index]
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise SwintormerError(f"photograph {photo.name!r} is {array.dtype}, expected uint8")
    pixels = array.astype(np.float32) / 255.0
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    pixels = pixels[:, :, :3]
    scale = max_side / max(pixels.shape[:2])
    if scale < 1:
        size = (round(pixels.shape[1] * scale), round(pixels.shape[0] * scale))
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(pixels)
