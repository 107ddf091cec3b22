"""The bundled sample: a real photograph with a documented synthetic defocus.

``python -m swintormer.data.sample`` rewrites ``swintormer/assets/sample_{sharp,blurry}.png``:
scikit-image's bundled ``chelsea`` photograph (451x300, a cat; kept out of every training split)
blurred by a uniform disk PSF of radius :data:`SAMPLE_RADIUS` pixels with reflected borders,
quantised to 8 bits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from swintormer.data.defocus import disk_blur
from swintormer.imageio import write_image

__all__ = ["SAMPLE_RADIUS", "make_sample"]

SAMPLE_RADIUS = 4.0
ASSETS = Path(__file__).resolve().parent.parent / "assets"


def make_sample(out_dir: Path = ASSETS) -> tuple[Path, Path]:
    """Write ``sample_sharp.png`` and ``sample_blurry.png`` to ``out_dir``; returns their paths."""
    from skimage import data

    sharp = data.chelsea().astype(np.float32) / 255.0
    blurry = disk_blur(sharp, SAMPLE_RADIUS)
    return (
        write_image(out_dir / "sample_sharp.png", sharp, bit_depth=8),
        write_image(out_dir / "sample_blurry.png", blurry, bit_depth=8),
    )


if __name__ == "__main__":
    for p in make_sample():
        print(p)
