"""Writing a synthetic dataset in the DPDD layout, for tests and for anyone without DPDD.

``write_synthetic_split(root, "test")`` defocuses every held-out photograph at each blur level of
:data:`~swintormer.data.synthetic.TEST_LEVELS` (depth-varying blur, noise, quantisation), and
``"train"`` draws ``variants`` realisations of every training photograph from the training
recipe. ``"seen"`` is the test split's recipe on the *training* photographs: a model that scores
far better there than on ``"test"`` has learned its photographs rather than deblurring. Each
image is written as ``<root>/<split>/{inputC,inputL,inputR,target}/<name>.png`` (16-bit PNG, as
DPDD), with ``categories.json`` beside the folders.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from swintormer.data.dpdd import CATEGORIES_FILE
from swintormer.data.photos import MAX_SIDE, Photo, Split, load_photo, split_photos
from swintormer.data.synthetic import TEST_LEVELS, TRAIN_RECIPE, DefocusRecipe, level_recipe, synthesize_defocus
from swintormer.errors import SwintormerError
from swintormer.imageio import write_image
from swintormer.progress import Progress

__all__ = ["SPLITS", "synthetic_jobs", "write_synthetic_split"]

log = logging.getLogger(__name__)

#: one image to write: (file stem, photograph, recipe, seed of its ``np.random.default_rng``)
Job = tuple[str, Photo, DefocusRecipe, tuple[int, ...]]


#: what :func:`write_synthetic_split` can write
SPLITS: tuple[str, ...] = ("test", "train", "seen")


def synthetic_jobs(
    split: str, seed: int = 0, levels: Sequence[float] = TEST_LEVELS, variants: int = 8, dual_pixel: bool = True,
) -> list[Job]:
    """What :func:`write_synthetic_split` writes: test (or, ``"seen"``, train) photos x ``levels``, or train photos x ``variants``."""
    if split not in SPLITS:
        raise SwintormerError(f"unknown synthetic split {split!r}: expected one of {', '.join(SPLITS)}")
    jobs: list[Job] = []
    photos: Split = "test" if split == "test" else "train"
    for p, photo in enumerate(split_photos(photos)):
        if split != "train":
            for level in levels:
                recipe = level_recipe(level, dual_pixel)
                tag = 1 if split == "test" else 2
                jobs.append((f"{photo.name}_r{level:g}", photo, recipe, (seed, tag, p, round(level * 1000))))
        else:
            recipe = dataclasses.replace(TRAIN_RECIPE, dual_pixel=dual_pixel)
            jobs.extend((f"{photo.name}_v{v:02d}", photo, recipe, (seed, 0, p, v)) for v in range(variants))
    return jobs


def write_synthetic_split(
    root: str | Path,
    split: str = "test",
    seed: int = 0,
    levels: Sequence[float] = TEST_LEVELS,
    variants: int = 8,
    dual_pixel: bool = True,
    max_side: int = MAX_SIDE,
    bit_depth: int = 16,
    progress: bool | None = None,
) -> Path:
    """Write one synthetic split under ``root`` in the DPDD layout; returns the split folder.

    ``max_side`` downscales the photographs first (tests use small ones); ``dual_pixel=False``
    writes only ``inputC`` and ``target``.
    """
    if split != "train" and (not levels or min(levels) <= 0):
        raise SwintormerError(f"blur levels must be positive radii in pixels, got {list(levels)}")
    if split == "train" and variants < 1:
        raise SwintormerError(f"need at least one variant per photograph, got {variants}")
    folder = Path(root) / split
    jobs = synthetic_jobs(split, seed, levels, variants, dual_pixel)
    photos: dict[str, np.ndarray] = {}
    categories = {}
    with Progress(len(jobs), f"synthetic {split}", "images", progress) as bar:
        for name, photo, recipe, job_seed in jobs:
            if photo.name not in photos:
                photos[photo.name] = load_photo(photo, max_side)
            sample = synthesize_defocus(photos[photo.name], recipe, np.random.default_rng(job_seed))
            views = {"inputC": sample.center, "target": sample.target}
            if dual_pixel:
                views.update(inputL=sample.left, inputR=sample.right)
            for view, image in views.items():
                write_image(folder / view / f"{name}.png", image, bit_depth=bit_depth)
            categories[name] = photo.category
            bar.update()
    (folder / CATEGORIES_FILE).write_text(json.dumps(categories, indent=1, sort_keys=True) + "\n")
    log.info("wrote %d synthetic %s pairs to %s", len(jobs), split, folder)
    return folder
