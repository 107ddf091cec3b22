"""The DPDD folder layout: finding, checking and reading its image pairs.

A dataset root holds ``train/``, ``val/`` and ``test/`` splits (the layout the Restormer and
Swintormer reference code read), each with four folders of same-named 16-bit PNGs:
``inputC`` (full aperture), ``inputL``, ``inputR`` (the dual-pixel views) and ``target``.
Single-image mode reads ``inputC``; dual-pixel mode reads ``inputR`` and ``inputL`` (right first).
Files pair up by name after a natural sort. The indoor/outdoor category of each test image comes
from a ``categories.json`` in the split folder when there is one (the synthetic generator writes
it), else, for the 76-image DPDD test set, from the reference indices
(docs/architecture.md, "Reference facts").
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from swintormer.errors import SwintormerError
from swintormer.imageio import dual_pixel_stack, read_image

__all__ = [
    "CATEGORIES_FILE",
    "DPDD_INDOOR",
    "DPDD_TEST_COUNT",
    "Mode",
    "PairFiles",
    "Split",
    "find_split",
    "mode_for_channels",
    "read_pair",
    "scan_split",
]

log = logging.getLogger(__name__)

Mode = Literal["single", "dual"]
VIEW_FOLDERS: dict[Mode, tuple[str, ...]] = {"single": ("inputC",), "dual": ("inputR", "inputL")}
CATEGORIES_FILE = "categories.json"
IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".webp"}
DPDD_TEST_COUNT = 76
#: 0-based indices (natural sort) of DPDD's indoor test images; the other 39 are outdoor
DPDD_INDOOR = frozenset([8, 9, 10, 11, 12, 13, 16, 32, *range(39, 57), *range(59, 68), 74, 75])


@dataclass(frozen=True)
class PairFiles:
    """One image pair: ``inputs`` are ``(inputC,)`` or ``(inputR, inputL)``."""

    name: str
    target: Path
    inputs: tuple[Path, ...]


@dataclass
class Split:
    """The pairs of one split folder, and the category (``indoor``/``outdoor``) of each, if known."""

    folder: Path
    mode: Mode
    pairs: list[PairFiles]
    categories: dict[str, str] = field(default_factory=dict)


def mode_for_channels(in_channels: int) -> Mode:
    """``3 -> "single"``, ``6 -> "dual"``."""
    if in_channels not in (3, 6):
        raise SwintormerError(f"models with {in_channels} input channels cannot read DPDD pairs (need 3 or 6)")
    return "single" if in_channels == 3 else "dual"


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def find_split(path: str | Path, split: str = "test") -> Path:
    """The split folder: ``path`` itself when it holds ``target/``, else ``path/split``."""
    path = Path(path)
    if not path.is_dir():
        raise SwintormerError(f"data folder not found: {path}")
    if (path / "target").is_dir():
        return path
    if (path / split / "target").is_dir():
        return path / split
    raise SwintormerError(
        f"{path} is not a DPDD-layout folder: expected {path}/target/ or {path}/{split}/target/ "
        "(with inputC/, inputL/, inputR/ beside target/)"
    )


def _list_images(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise SwintormerError(f"missing folder {folder} (a DPDD split needs target/ and inputC/, or inputR/ and inputL/)")
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: _natural_key(p.name))
    return {p.stem: p for p in files}


def _png_header(path: Path) -> tuple[int, int, int] | None:
    """``(width, height, bit depth)`` from a PNG's IHDR chunk without decoding it; None for other files."""
    with open(path, "rb") as f:
        head = f.read(26)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big"), head[24]


def _check_pair(pair: PairFiles) -> int | None:
    """Raise if a pair's PNGs differ in size or bit depth; returns their bit depth (None: not PNGs)."""
    headers = {p: _png_header(p) for p in (*pair.inputs, pair.target)}
    known = {p: h for p, h in headers.items() if h is not None}
    if len({h[:2] for h in known.values()}) > 1:
        sizes = ", ".join(f"{p.parent.name}/{p.name} {h[0]}x{h[1]}" for p, h in known.items())
        raise SwintormerError(f"pair {pair.name!r} has images of different sizes: {sizes}")
    if len({h[2] for h in known.values()}) > 1:
        depths = ", ".join(f"{p.parent.name}/{p.name} {h[2]}-bit" for p, h in known.items())
        raise SwintormerError(f"pair {pair.name!r} mixes bit depths ({depths}); DPDD pairs are all 16-bit PNG")
    return next(iter(known.values()))[2] if known else None


def _categories(folder: Path, names: list[str]) -> dict[str, str]:
    path = folder / CATEGORIES_FILE
    if path.is_file():
        try:
            table = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise SwintormerError(f"{path} is not valid JSON ({exc})") from None
        bad = {k: v for k, v in table.items() if v not in ("indoor", "outdoor")}
        if bad:
            raise SwintormerError(f"{path}: categories must be 'indoor' or 'outdoor', got {bad}")
        return {name: table[name] for name in names if name in table}
    if len(names) == DPDD_TEST_COUNT:
        return {name: "indoor" if i in DPDD_INDOOR else "outdoor" for i, name in enumerate(names)}
    log.info("%s has no %s and is not the 76-image DPDD test set: reporting the combined category only", folder, CATEGORIES_FILE)
    return {}


def scan_split(folder: str | Path, mode: Mode) -> Split:
    """List and check the pairs of a split folder (names, counts, sizes and bit depths agree)."""
    folder = Path(folder)
    targets = _list_images(folder / "target")
    if not targets:
        raise SwintormerError(f"{folder / 'target'} holds no images")
    views = {name: _list_images(folder / name) for name in VIEW_FOLDERS[mode]}
    for name, files in views.items():
        if len(files) != len(targets) or set(files) != set(targets):
            only_t = sorted(set(targets) - set(files))[:3]
            only_v = sorted(set(files) - set(targets))[:3]
            raise SwintormerError(
                f"{folder}: {name}/ has {len(files)} images but target/ has {len(targets)} "
                f"(only in target: {only_t}; only in {name}: {only_v}); every target needs a same-named input"
            )
    pairs = [PairFiles(stem, path, tuple(views[v][stem] for v in VIEW_FOLDERS[mode])) for stem, path in targets.items()]
    depths = {_check_pair(p) for p in pairs} - {None}
    if len(depths) > 1:
        raise SwintormerError(f"{folder} mixes {sorted(depths)}-bit PNGs; DPDD images are all 16-bit")
    if depths and depths != {16}:
        log.warning("%s holds %d-bit PNGs; the DPDD dataset is 16-bit", folder, depths.pop())
    return Split(folder, mode, pairs, _categories(folder, list(targets)))


def read_pair(pair: PairFiles) -> tuple[np.ndarray, np.ndarray]:
    """``(input [H, W, 3 or 6], target [H, W, 3])`` in the files' own dtype (uint16 for DPDD)."""
    views = [read_image(p) for p in pair.inputs]
    target = read_image(pair.target)
    array = dual_pixel_stack(*views) if len(views) == 2 else views[0].array
    if array.shape[:2] != target.array.shape[:2]:
        raise SwintormerError(f"pair {pair.name!r}: input is {array.shape[1]}x{array.shape[0]}, target {target.array.shape[1]}x{target.array.shape[0]}")
    return array, target.array
