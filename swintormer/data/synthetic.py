"""Synthetic defocus from real photographs: depth maps, defocus, sensor noise, quantisation.

One realisation (:func:`synthesize_defocus`) draws, from a seeded generator and in this order:
the largest blur radius, a smooth random depth map and a focal depth (or, for a fronto-parallel
scene, one uniform radius), then blurs the sharp photograph through the full aperture (the
``center`` view, DPDD's ``inputC``) and, for dual-pixel data, through each half aperture
(``left``/``right``), adds signal-dependent sensor noise to each view and quantises it to 8 or 16
bits. The same seed gives the same images, with or without the dual-pixel views.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from swintormer.data.defocus import spatially_varying_blur, view_psf
from swintormer.errors import SwintormerError

__all__ = [
    "TEST_LEVELS",
    "TRAIN_RECIPE",
    "DefocusRecipe",
    "DefocusSample",
    "add_sensor_noise",
    "level_recipe",
    "natural_bokeh",
    "quantize",
    "recipe_with",
    "signed_radius_map",
    "smooth_depth_map",
    "synthesize_defocus",
]


@dataclass(frozen=True)
class DefocusRecipe:
    """The distribution one realisation is drawn from (ranges are ``(low, high)``, drawn uniformly).

    ``max_radius``: the largest |PSF radius| in the image, pixels. ``uniform_prob``: share of
    fronto-parallel scenes (one radius everywhere). ``in_focus_prob``: share of scenes left sharp
    (noise and quantisation only: teaches a model to leave in-focus detail alone; drawn only when
    above 0, so the other recipes' realisations do not change). ``bokeh_prob``: share of scenes
    whose *target* has a shallow depth of field of its own, as most real photographs (a background
    blurred by a radius drawn from ``bokeh_radius``): the model learns that blur far beyond the
    recipe's is part of the scene, not something to undo (also drawn only when above 0).
    ``photo_scale``: the crop is cut from the photograph resized by a factor drawn from this
    range (area filter; below 1 packs more detail into a crop), so a model meets textures at
    scales the few photographs do not have (drawn only when not ``(1, 1)``).
    ``collage_prob``: share of crops that are collages, the crop overlaid with ``collage_layers``
    anti-aliased ellipses cut from other photographs (a "dead leaves" scene of real textures:
    contents and occlusion edges no single photograph has; drawn only when above 0).
    ``color_prob``: share of crops whose colour channels are permuted at random (blur acts on each
    channel alike, so this is a free, valid variation; drawn only when above 0).
    ``depth_cells``: coarseness of the depth map
    (control points per side). ``shot_noise``: noise variance per unit of intensity;
    ``read_noise``: its signal-independent standard deviation. ``bits``: quantisation choices.
    """

    max_radius: tuple[float, float] = (0.5, 8.0)
    uniform_prob: float = 0.25
    in_focus_prob: float = 0.0
    bokeh_prob: float = 0.0
    bokeh_radius: tuple[float, float] = (6.0, 14.0)
    photo_scale: tuple[float, float] = (1.0, 1.0)
    collage_prob: float = 0.0
    collage_layers: tuple[int, int] = (2, 8)
    color_prob: float = 0.0
    depth_cells: tuple[int, int] = (1, 5)
    shot_noise: tuple[float, float] = (0.0, 1e-4)
    read_noise: tuple[float, float] = (0.0, 3e-3)
    bits: tuple[int, ...] = (8, 16)
    dual_pixel: bool = False


#: what the default model is trained on
TRAIN_RECIPE = DefocusRecipe()
#: the blur levels (largest radius in pixels) of the synthetic test split
TEST_LEVELS = (2.0, 4.0, 6.0)


def recipe_with(recipe: DefocusRecipe, overrides: dict[str, str]) -> DefocusRecipe:
    """``recipe`` with fields replaced from ``{"name": "value"}`` strings (ranges as ``"low,high"``)."""
    fields = [f.name for f in dataclasses.fields(DefocusRecipe) if f.name != "dual_pixel"]
    changes: dict[str, object] = {}
    for name, text in overrides.items():
        if name not in fields:
            raise SwintormerError(f"unknown recipe field {name!r}; choose from {', '.join(fields)}")
        default = getattr(recipe, name)
        try:
            if isinstance(default, tuple):
                kind = type(default[0])
                value: object = tuple(kind(v) for v in text.split(","))
                if name != "bits" and len(value) != 2:  # type: ignore[arg-type]
                    raise ValueError("needs low,high")
            else:
                value = type(default)(text)
        except ValueError as e:
            raise SwintormerError(f"recipe {name}={text!r}: {e} (default {default})") from e
        if name.endswith("_prob") and not 0 <= value <= 1:  # type: ignore[operator]
            raise SwintormerError(f"recipe {name}={text!r}: a probability, between 0 and 1")
        if name == "photo_scale" and min(value) <= 0:  # type: ignore[call-overload]
            raise SwintormerError(f"recipe {name}={text!r}: scale factors must be positive, e.g. 0.5,1")
        if name == "collage_layers" and not 1 <= value[0] <= value[1]:  # type: ignore[index]
            raise SwintormerError(f"recipe {name}={text!r}: layer counts LOW,HIGH with 1 <= LOW <= HIGH, e.g. 2,8")
        changes[name] = value
    return dataclasses.replace(recipe, **changes)


def level_recipe(level: float, dual_pixel: bool = False) -> DefocusRecipe:
    """The test recipe for one blur level: a depth-varying blur whose largest radius is ``level``."""
    return dataclasses.replace(TRAIN_RECIPE, max_radius=(level, level), uniform_prob=0.0, dual_pixel=dual_pixel)


@dataclass
class DefocusSample:
    """One realisation; images ``float32 [H, W, 3]`` in ``[0, 1]``, ``radius`` ``[H, W]`` signed pixels."""

    target: np.ndarray
    center: np.ndarray
    radius: np.ndarray
    bits: int
    left: np.ndarray | None = None
    right: np.ndarray | None = None


def smooth_depth_map(height: int, width: int, rng: np.random.Generator, cells: tuple[int, int] = (1, 5)) -> np.ndarray:
    """``float32 [H, W]`` in ``[0, 1]``: a bicubic surface through random control points plus a random slope."""
    import cv2

    n = int(rng.integers(cells[0], cells[1] + 1)) + 1
    grid = rng.random((n, n)).astype(np.float32)
    surface = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    angle, slope = rng.uniform(0, 2 * np.pi), rng.uniform(0, 1.0)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) / max(height, width)
    depth = surface + slope * (np.cos(angle) * xs + np.sin(angle) * ys)
    span = float(depth.max() - depth.min())
    return ((depth - depth.min()) / span if span > 0 else np.zeros_like(depth)).astype(np.float32)


def signed_radius_map(depth: np.ndarray, focus: float, max_radius: float) -> np.ndarray:
    """``[H, W]`` signed PSF radius, proportional to ``depth - focus`` and reaching ``max_radius`` in magnitude."""
    offset = depth.astype(np.float32) - np.float32(focus)
    peak = float(np.abs(offset).max())
    if peak == 0:
        return np.zeros_like(offset)
    return offset * np.float32(max_radius / peak)


def add_sensor_noise(image: np.ndarray, rng: np.random.Generator, shot: float, read: float) -> np.ndarray:
    """Heteroscedastic Gaussian noise (variance ``shot * x + read**2``), clipped to ``[0, 1]``."""
    sigma = np.sqrt(shot * np.clip(image, 0, 1) + read**2).astype(np.float32)
    noisy = image + sigma * rng.standard_normal(image.shape, dtype=np.float32)
    return np.clip(noisy, 0.0, 1.0)


def quantize(image: np.ndarray, bits: int) -> np.ndarray:
    """Round ``[0, 1]`` floats to the ``2**bits - 1`` levels of an integer image (result stays float32)."""
    levels = np.float32(2**bits - 1)
    return (np.rint(np.clip(image, 0, 1) * levels) / levels).astype(np.float32)


def _draw_radius_map(height: int, width: int, recipe: DefocusRecipe, rng: np.random.Generator) -> np.ndarray:
    if recipe.in_focus_prob > 0 and rng.random() < recipe.in_focus_prob:
        return np.zeros((height, width), dtype=np.float32)
    max_radius = float(rng.uniform(*recipe.max_radius))
    if rng.random() < recipe.uniform_prob:
        sign = 1.0 if rng.random() < 0.5 else -1.0
        return np.full((height, width), sign * max_radius, dtype=np.float32)
    depth = smooth_depth_map(height, width, rng, recipe.depth_cells)
    return signed_radius_map(depth, float(rng.uniform(0, 1)), max_radius)


def natural_bokeh(sharp: np.ndarray, radius: tuple[float, float], rng: np.random.Generator, cells: tuple[int, int] = (1, 5)) -> np.ndarray:
    """``sharp`` with a depth of field of its own: sharp up to a random focal depth, then blurred
    progressively (disk PSFs up to a radius drawn from ``radius``) behind it. ``[H, W, 3]`` float32."""
    height, width = sharp.shape[:2]
    depth = smooth_depth_map(height, width, rng, cells)
    focus, largest = float(rng.uniform(0.2, 0.8)), float(rng.uniform(*radius))
    radius_map = (np.clip(depth - focus, 0, None) * np.float32(largest / (1 - focus))).astype(np.float32)
    return spatially_varying_blur(sharp, radius_map, view_psf("center"), step=1.0)


def synthesize_defocus(sharp: np.ndarray, recipe: DefocusRecipe, rng: np.random.Generator) -> DefocusSample:
    """Defocus ``sharp`` (``float32 [H, W, 3]`` in ``[0, 1]``) once, drawing everything from ``rng``."""
    height, width = sharp.shape[:2]
    if recipe.bokeh_prob > 0 and rng.random() < recipe.bokeh_prob:
        sharp = natural_bokeh(sharp, recipe.bokeh_radius, rng, recipe.depth_cells)
    radius = _draw_radius_map(height, width, recipe, rng)
    shot, read = float(rng.uniform(*recipe.shot_noise)), float(rng.uniform(*recipe.read_noise))
    bits = int(rng.choice(recipe.bits))

    def view(name: str) -> np.ndarray:
        blurred = spatially_varying_blur(sharp, radius, view_psf(name))  # type: ignore[arg-type]
        return quantize(add_sensor_noise(blurred, rng, shot, read), bits)

    sample = DefocusSample(target=sharp.astype(np.float32), center=view("center"), radius=radius, bits=bits)
    if recipe.dual_pixel:
        sample.left, sample.right = view("left"), view("right")
    return sample
