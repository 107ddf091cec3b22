"""The two pair sources training draws from: a DPDD-layout folder, or photographs defocused on the fly."""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from swintormer.data.dpdd import Mode, find_split, mode_for_channels, read_pair, scan_split
from swintormer.data.pairs import AUGMENTATIONS, Pair, augment, crop_window, sample_rng
from swintormer.data.photos import Photo, load_photo, split_photos
from swintormer.data.synthetic import TRAIN_RECIPE, DefocusRecipe, synthesize_defocus
from swintormer.errors import SwintormerError
from swintormer.imageio import from_uint
from swintormer.progress import Progress

__all__ = ["DPDDPairs", "SyntheticPairs", "photo_collage", "scaled_window", "training_sources"]

log = logging.getLogger(__name__)


def _finish(inputs: np.ndarray, target: np.ndarray, rng: np.random.Generator, do_augment: bool, name: str) -> Pair:
    k = int(rng.integers(AUGMENTATIONS)) if do_augment else 0
    inputs, target = augment([inputs, target], k)
    return Pair(input=inputs, target=target, name=name)


class DPDDPairs:
    """Random crops of a DPDD-layout split (``train``/``val``/``test``) with the 8 augmentations.

    ``cache=True`` keeps decoded images in memory (as stored, uint16 for DPDD): right for small
    folders, while the full DPDD training set (about 8 GB decoded) is read from disk per sample.
    """

    def __init__(
        self, root: str | Path, split: str = "train", mode: Mode = "single", crop: int = 256,
        seed: int = 0, augment: bool = True, cache: bool = False,
    ) -> None:
        self.split = scan_split(find_split(root, split), mode)
        self.in_channels = 3 if mode == "single" else 6
        self.crop, self.seed, self.augment, self.cache = crop, seed, augment, cache
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        log.info("%s: %d pairs (%s)", self.split.folder, len(self.split.pairs), mode)

    def __len__(self) -> int:
        return len(self.split.pairs)

    def _read(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if i in self._cache:
            return self._cache[i]
        arrays = read_pair(self.split.pairs[i])
        if self.cache:
            self._cache[i] = arrays
        return arrays

    def sample(self, index: int) -> Pair:
        """Pair ``index``: a random image, a random ``crop x crop`` window of all its views, a random symmetry."""
        rng = sample_rng(self.seed, index)
        i = int(rng.integers(len(self.split.pairs)))
        inputs, target = self._read(i)
        y, x = crop_window(*target.shape[:2], self.crop, rng)
        window = (slice(y, y + self.crop), slice(x, x + self.crop))
        return _finish(from_uint(inputs[window])[0], from_uint(target[window])[0], rng, self.augment, self.split.pairs[i].name)


class SyntheticPairs:
    """Crops of real photographs, each defocused afresh (:func:`synthesize_defocus`) when drawn.

    Only the crop and a margin as wide as the largest PSF are blurred, so a sample costs
    milliseconds and every sample has its own depth map, focus, noise and quantisation. The
    recipe may first resize the photograph (``photo_scale``), overlay pieces of others
    (``collage_prob``, :func:`photo_collage`) and permute the colour channels (``color_prob``).
    Photographs smaller than the crop plus margin are reflect-padded.
    """

    def __init__(
        self, photos: Sequence[Photo], recipe: DefocusRecipe = TRAIN_RECIPE, crop: int = 128,
        seed: int = 0, augment: bool = True, images: Sequence[np.ndarray] | None = None,
    ) -> None:
        self.photos = list(photos)
        if images is None:
            images = []
            with Progress(len(self.photos), "photographs", "photos") as bar:
                for p in self.photos:
                    images.append(load_photo(p))
                    bar.update()
        self.images = list(images)
        self.recipe, self.crop, self.seed, self.augment = recipe, crop, seed, augment
        self.in_channels = 6 if recipe.dual_pixel else 3
        self.margin = math.ceil(max(recipe.max_radius[1], recipe.bokeh_radius[1] if recipe.bokeh_prob > 0 else 0)) + 1

    def __len__(self) -> int:
        return len(self.photos)

    def with_recipe(self, recipe: DefocusRecipe, seed: int, augment: bool | None = None) -> "SyntheticPairs":
        """The same photographs (not reloaded) under another recipe and seed."""
        keep = self.augment if augment is None else augment
        return SyntheticPairs(self.photos, recipe, self.crop, seed, keep, images=self.images)

    def sample(self, index: int) -> Pair:
        """Pair ``index``: a random photograph, window and symmetry, and a fresh defocus of that window."""
        rng = sample_rng(self.seed, index)
        i = int(rng.integers(len(self.images)))
        image, size, m = self.images[i], self.crop + 2 * self.margin, self.margin
        recipe = self.recipe
        window = scaled_window(image, size, recipe.photo_scale, rng)
        if recipe.collage_prob > 0 and rng.random() < recipe.collage_prob:
            window = photo_collage(window, self.images, recipe.collage_layers, recipe.photo_scale, rng)
        if recipe.color_prob > 0 and rng.random() < recipe.color_prob:
            window = np.ascontiguousarray(window[:, :, rng.permutation(3)])
        sample = synthesize_defocus(window, recipe, rng)
        inner = (slice(m, m + self.crop), slice(m, m + self.crop))
        views = [sample.right, sample.left] if recipe.dual_pixel else [sample.center]
        inputs = np.concatenate([v[inner] for v in views], axis=2)
        return _finish(inputs, sample.target[inner], rng, self.augment, self.photos[i].name)


def scaled_window(image: np.ndarray, size: int, scale: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """A random ``[size, size, C]`` window of ``image`` ``[H, W, C]`` resized by a factor drawn from ``scale``.

    The factor is drawn only when ``scale != (1, 1)``; the window is cut at ``size / factor``
    pixels and resized with an area filter (a cubic one when enlarging). A photograph smaller
    than the window is reflect-padded first.
    """
    import cv2

    factor = float(rng.uniform(*scale)) if tuple(scale) != (1.0, 1.0) else 1.0
    cut = max(1, round(size / factor))
    if min(image.shape[:2]) < cut:
        image = np.pad(image, [(0, max(0, cut - n)) for n in image.shape[:2]] + [(0, 0)], mode="reflect")
    y, x = crop_window(*image.shape[:2], cut, rng)
    window = image[y : y + cut, x : x + cut]
    if cut == size:
        return window
    interpolation = cv2.INTER_AREA if cut > size else cv2.INTER_CUBIC
    return np.clip(cv2.resize(window, (size, size), interpolation=interpolation), 0.0, 1.0)


def photo_collage(
    base: np.ndarray, images: Sequence[np.ndarray], layers: tuple[int, int], scale: tuple[float, float],
    rng: np.random.Generator,
) -> np.ndarray:
    """``base`` ``[S, S, 3]`` overlaid with a random number (``layers``, inclusive) of ellipses, each
    filled with a window (:func:`scaled_window`) of a random photograph of ``images``.

    Ellipse sizes are log-uniform from 1/16 to 1/2 of the window (many small, few large, as in a
    dead-leaves scene); edges are anti-aliased (drawn at 4x, area-averaged), as a sharp
    photograph's occlusion edges are. ``float32 [S, S, 3]``.
    """
    import cv2

    size, up = base.shape[0], 4
    out = base.astype(np.float32, copy=True)
    for _ in range(int(rng.integers(layers[0], layers[1] + 1))):
        layer = scaled_window(images[int(rng.integers(len(images)))], size, scale, rng)
        axes = np.exp(rng.uniform(np.log(size / 16), np.log(size / 2), size=2))
        centre = rng.uniform(0, size, size=2)
        angle = float(rng.uniform(0, 180))
        mask = np.zeros((size * up, size * up), dtype=np.uint8)
        cv2.ellipse(mask, tuple(int(c * up) for c in centre), tuple(int(a * up) for a in axes), angle, 0, 360, 255, -1)
        alpha = cv2.resize(mask.astype(np.float32) / 255, (size, size), interpolation=cv2.INTER_AREA)[:, :, None]
        out = out * (1 - alpha) + layer * alpha
    return out


def training_sources(
    data: str | Path | None, in_channels: int, crop: int, seed: int = 0, cache: bool = False,
    recipe: DefocusRecipe = TRAIN_RECIPE,
) -> tuple[DPDDPairs | SyntheticPairs, DPDDPairs | SyntheticPairs | None]:
    """``(train, validation)`` sources: a DPDD-layout folder's ``train``/``val`` splits, or (``data=None``)
    the bundled training photographs defocused on the fly by ``recipe`` (validation: fresh
    realisations of them, by the default recipe, so runs with different recipes compare).
    """
    mode = mode_for_channels(in_channels)
    if data is None:
        dual = mode == "dual"
        train = SyntheticPairs(split_photos("train"), dataclasses.replace(recipe, dual_pixel=dual), crop, seed)
        return train, train.with_recipe(dataclasses.replace(TRAIN_RECIPE, dual_pixel=dual), seed + 1, augment=False)
    if recipe != TRAIN_RECIPE:
        raise SwintormerError("--recipe applies to --synthetic data; a DPDD folder's blur is its own")
    train_set = DPDDPairs(data, "train", mode, crop, seed, cache=cache)
    if (Path(data) / "val" / "target").is_dir():
        return train_set, DPDDPairs(data, "val", mode, crop, seed + 1, augment=False, cache=cache)
    log.info("%s has no val/ split: training without validation", data)
    return train_set, None
