"""The golden output of the bundled sample (``tests/fixtures/golden``) and the check every path meets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from swintormer.imageio import read_image
from swintormer.metrics import psnr

GOLDEN = Path(__file__).resolve().parent / "fixtures" / "golden"
ROOT = Path(__file__).resolve().parents[1]
RECORD = json.loads((GOLDEN / "golden.json").read_text())
BLURRY = ROOT / RECORD["image"]
SHARP = ROOT / RECORD["sharp"]


def reference() -> np.ndarray:
    """``uint8 [H, W, 3]``: the stored output of the bundled default on the sample."""
    return read_image(GOLDEN / "sample_deblurred.png").array


def assert_golden(restored: np.ndarray, what: str) -> None:
    """``restored`` (uint8 ``[H, W, 3]``) is the golden output: at most one level off per pixel,
    and its PSNR against the sharp sample is the recorded one to within the stated tolerance."""
    want = reference()
    assert restored.shape == want.shape and restored.dtype == np.uint8, (what, restored.shape, restored.dtype)
    worst = int(np.abs(restored.astype(np.int16) - want.astype(np.int16)).max())
    assert worst <= RECORD["max_level_difference"], f"{what}: {worst} levels from the golden output"
    score = psnr(restored.astype(np.float32) / 255.0, read_image(SHARP).pixels)
    assert abs(score - RECORD["psnr_db"]) <= RECORD["psnr_tolerance_db"], f"{what}: {score:.4f} dB, recorded {RECORD['psnr_db']} dB"
