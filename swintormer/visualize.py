"""Pictures a person looks at: labelled side-by-side comparisons."""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["side_by_side"]


def side_by_side(panels: Sequence[np.ndarray], labels: Sequence[str], max_width: int = 2400) -> np.ndarray:
    """Join ``[H, W, 3]`` images (any dtype, same size) left to right with a caption bar over each.

    Returns ``uint8 [H', W', 3]``, downscaled so the result is at most ``max_width`` wide.
    """
    import cv2

    from swintormer.imageio import float_to_dtype, from_uint

    tiles = []
    for panel, label in zip(panels, labels):
        img = float_to_dtype(from_uint(panel)[0], np.uint8)
        h, w = img.shape[:2]
        bar_h = max(22, h // 14)
        scale = bar_h / 36
        bar = np.full((bar_h, w, 3), 255, dtype=np.uint8)
        cv2.putText(bar, label, (6, int(bar_h * 0.72)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), max(1, int(scale * 2)), cv2.LINE_AA)
        tiles.append(np.concatenate([bar, img], axis=0))
        tiles.append(np.full((h + bar_h, 4, 3), 255, dtype=np.uint8))
    joined = np.concatenate(tiles[:-1], axis=1)
    if joined.shape[1] > max_width:
        f = max_width / joined.shape[1]
        joined = cv2.resize(joined, (max_width, int(joined.shape[0] * f)), interpolation=cv2.INTER_AREA)
    return joined
