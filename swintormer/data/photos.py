"""The real photographs Python packages ship, and the fixed train/test split we use them in.

Most come with scikit-image; five more natural scenes come with packages of the ``train`` extra
(PyWavelets: ``aero``, ``ascent``; scikit-learn: ``china``, ``flower``; matplotlib:
``grace_hopper``), because a model learns the photographs it trains on: the run-8 model gained
+1.65 dB on its 14 training photographs and +0.72 dB on these five before it saw them
(``swintormer synth --split seen``; ``swintormer/assets/README.md``).
Nothing is downloaded. Only photographs of real scenes are used (no rendered patterns, binary
masks or phantoms). Grayscale photographs become RGB by repeating the channel. The split is
fixed, by name:

- **test**: ``chelsea`` (the bundled sample; ``cat`` is the same photograph under another name and
  is never used), ``rocket``, ``coffee``, ``coins``, ``camera`` (PyWavelets' ``camera`` is the
  same photograph and is never used);
- **train**: everything else; the two views of ``stereo_motorcycle`` are near-duplicates and
  both stay on the training side.

Each photograph carries the indoor/outdoor label the evaluation groups by (as DPDD's Table 5).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from swintormer.errors import SwintormerError

__all__ = ["PHOTOS", "PHOTO_DIR_ENV", "Photo", "export_photos", "load_photo", "split_photos"]

Split = Literal["train", "test"]
Category = Literal["indoor", "outdoor"]
Package = Literal["skimage", "pywt", "sklearn", "matplotlib"]

#: the pip distribution that ships each package's photographs (for the error when one is missing)
DISTRIBUTIONS: dict[str, str] = {"skimage": "scikit-image", "pywt": "PyWavelets", "sklearn": "scikit-learn", "matplotlib": "matplotlib"}


@dataclass(frozen=True)
class Photo:
    """One bundled photograph: ``name`` (ours), its ``source`` in ``package``, view index, split, scene.

    ``source`` is a ``skimage.data`` or ``pywt.data`` function, a ``sklearn.datasets``
    sample-image file name or a matplotlib sample-data file name.
    """

    name: str
    source: str
    split: Split
    category: Category
    index: int | None = None  # element of a tuple-returning loader (stereo pairs)
    package: Package = "skimage"


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
    Photo("aero", "aero", "train", "outdoor", package="pywt"),
    Photo("ascent", "ascent", "train", "outdoor", package="pywt"),
    Photo("china", "china.jpg", "train", "outdoor", package="sklearn"),
    Photo("flower", "flower.jpg", "train", "outdoor", package="sklearn"),
    Photo("grace_hopper", "grace_hopper.jpg", "train", "indoor", package="matplotlib"),
)

#: photographs larger than this on their long side are downscaled (area filter) when loaded
MAX_SIDE = 800
#: environment variable naming a folder of ``<name>.png`` copies (:func:`export_photos`), read
#: instead of a package that is not installed (a GPU machine without registry access)
PHOTO_DIR_ENV = "SWINTORMER_PHOTO_DIR"


def split_photos(split: Split) -> list[Photo]:
    """The photographs of one split, in a fixed order."""
    if split not in ("train", "test"):
        raise SwintormerError(f"unknown split {split!r}: expected 'train' or 'test'")
    return [p for p in PHOTOS if p.split == split]


def load_photo(photo: Photo, max_side: int = MAX_SIDE) -> np.ndarray:
    """The photograph as ``float32 [H, W, 3]`` in ``[0, 1]`` (grayscale repeated to RGB)."""
    import cv2

    array = np.asarray(_photo_array(photo))
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


def export_photos(folder: str | Path, photos: Sequence[Photo] = PHOTOS) -> list[Path]:
    """Write each photograph, full size, as ``folder/<name>.png`` (8-bit RGB, the packages' pixels exactly).

    With ``SWINTORMER_PHOTO_DIR=folder`` set, :func:`load_photo` reads these files for any
    photograph whose package is not installed, so training runs on a machine without them.
    """
    from swintormer.imageio import write_image

    return [write_image(Path(folder) / f"{p.name}.png", load_photo(p, max_side=1 << 30), bit_depth=8) for p in photos]


def _photo_array(photo: Photo) -> np.ndarray:
    """The photograph as its package ships it (``uint8 [H, W]`` or ``[H, W, 3|4]``), or its exported copy."""
    try:
        return _package_array(photo)
    except ImportError as e:
        folder = os.environ.get(PHOTO_DIR_ENV)
        if folder and (Path(folder) / f"{photo.name}.png").is_file():
            from swintormer.imageio import read_image

            return read_image(Path(folder) / f"{photo.name}.png").array
        raise SwintormerError(
            f"photograph {photo.name!r} ships with {DISTRIBUTIONS[photo.package]}, which is not installed: "
            f"pip install 'swintormer[train]' (or pip install {DISTRIBUTIONS[photo.package]}; or set {PHOTO_DIR_ENV} "
            "to a folder written by `python -m swintormer.data.photos --export DIR` on a machine that has it)"
        ) from e


def _package_array(photo: Photo) -> np.ndarray:
    """The photograph from its package; ``ImportError`` when the package is not installed."""
    if photo.package == "skimage":
        from skimage import data

        array = getattr(data, photo.source)()
    elif photo.package == "pywt":
        import pywt.data

        array = getattr(pywt.data, photo.source)()
    elif photo.package == "sklearn":
        from sklearn.datasets import load_sample_image

        array = load_sample_image(photo.source)
    else:
        from matplotlib import cbook
        from matplotlib.image import imread

        array = imread(cbook.get_sample_data(photo.source, asfileobj=False))
    return array[photo.index] if photo.index is not None else array


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m swintormer.data.photos --export DIR``: copies of every photograph for :data:`PHOTO_DIR_ENV`."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m swintormer.data.photos",
        description=f"Write every photograph of the train/test split as DIR/<name>.png, so that a machine without "
        f"the packages that ship them (PyWavelets, scikit-learn, matplotlib) can train with {PHOTO_DIR_ENV}=DIR.",
    )
    parser.add_argument("--export", required=True, metavar="DIR", help="folder to write the PNG files to")
    args = parser.parse_args(argv)
    paths = export_photos(args.export)
    print(f"wrote {len(paths)} photographs to {args.export}; use them with {PHOTO_DIR_ENV}={args.export}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
