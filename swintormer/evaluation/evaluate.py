"""Evaluating restoration methods on a DPDD-layout split, for any backend.

A method is a name and a :data:`~swintormer.tiling.TileFn`; every image goes through the shared
tiler (:func:`swintormer.tiling.tiled_apply`), so a PyTorch model, an ONNX Runtime session or
a classical filter are measured the same way. Outputs are clipped to ``[0, 1]`` and compared with
the target in float (PSNR and SSIM with data range 1, MAE over channels: docs/architecture.md,
"Reference facts"), and
LPIPS (AlexNet) is added when its package and weights are available locally. The blurry input
(``inputC``, or the right view for dual-pixel models) is always reported as the ``input`` row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch

from swintormer.data.dpdd import Split, read_pair
from swintormer.imageio import from_uint
from swintormer.metrics import mae, psnr, ssim
from swintormer.progress import Progress
from swintormer.tiling import TileFn, TilingConfig, tiled_apply

__all__ = ["INPUT", "EvalReport", "ImageResult", "evaluate_split", "load_lpips"]

log = logging.getLogger(__name__)

INPUT = "input"
#: ``(output, target) -> distance``, both ``float32 [H, W, 3]`` in ``[0, 1]``
Metric = Callable[[np.ndarray, np.ndarray], float]
#: torchvision's AlexNet weights, which lpips loads through the torch hub cache
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"


@dataclass
class ImageResult:
    """Metrics of every method (``input`` included) on one image."""

    name: str
    category: str | None
    metrics: dict[str, dict[str, float]]


@dataclass
class EvalReport:
    """Per-image results in order, the methods in order (``input`` first), and notes for the reader."""

    folder: str
    methods: list[str]
    images: list[ImageResult]
    notes: list[str] = field(default_factory=list)
    settings: dict[str, object] = field(default_factory=dict)

    def categories(self) -> dict[str, dict[str, object]]:
        """``{indoor|outdoor|combined: {"images": n, method: {metric: mean}}}`` (indoor/outdoor when labelled)."""
        groups: dict[str, list[ImageResult]] = {}
        for label in ("indoor", "outdoor"):
            members = [r for r in self.images if r.category == label]
            if members:
                groups[label] = members
        groups["combined"] = self.images
        out: dict[str, dict[str, object]] = {}
        for label, members in groups.items():
            entry: dict[str, object] = {"images": len(members)}
            for method in self.methods:
                keys = members[0].metrics[method].keys()
                entry[method] = {k: float(np.mean([r.metrics[method][k] for r in members])) for k in keys}
            out[label] = entry
        return out


def load_lpips() -> tuple[Metric | None, str]:
    """The LPIPS (AlexNet) metric if ``lpips`` and its weights are available locally, else ``(None, why not)``."""
    try:
        import lpips  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError as exc:
        return None, f"LPIPS not computed: {exc.name} is not installed (pip install lpips; it needs torchvision)"
    weights = Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE
    if not weights.is_file():
        return None, f"LPIPS not computed: AlexNet weights not found at {weights} (they are never downloaded; place the file there)"
    net = lpips.LPIPS(net="alex", verbose=False).eval()

    def metric(output: np.ndarray, target: np.ndarray) -> float:
        a, b = (torch.from_numpy(x).permute(2, 0, 1)[None] * 2 - 1 for x in (output, target))
        with torch.no_grad():
            return float(net(a, b))

    return metric, "LPIPS: AlexNet (lpips package)"


def _scores(output: np.ndarray, target: np.ndarray, lpips_metric: Metric | None) -> dict[str, float]:
    scores = {"psnr": psnr(output, target), "ssim": ssim(output, target), "mae": mae(output, target)}
    if lpips_metric is not None:
        scores["lpips"] = lpips_metric(output, target)
    return scores


def evaluate_split(
    split: Split,
    methods: Mapping[str, TileFn],
    tiling: TilingConfig = TilingConfig(),
    lpips_metric: Metric | None = None,
    keep: Callable[[str], bool] = lambda name: False,
    progress: bool | None = None,
) -> tuple[EvalReport, dict[str, dict[str, np.ndarray]]]:
    """Run every method over every pair of ``split``.

    Returns the report and, for the images ``keep(name)`` selects, ``{name: {"input", method...,
    "target": float32 [H, W, 3]}}`` for figures.
    """
    report = EvalReport(str(split.folder), [INPUT, *methods], [])
    kept: dict[str, dict[str, np.ndarray]] = {}
    with Progress(len(split.pairs), "evaluating", "images", progress) as bar:
        for pair in split.pairs:
            inputs, target_raw = read_pair(pair)
            target = from_uint(target_raw)[0]
            outputs = {INPUT: from_uint(inputs[:, :, :3])[0]}
            for method, fn in methods.items():
                outputs[method] = np.clip(tiled_apply(fn, inputs, 3, tiling, progress=False), 0, 1)
            metrics = {m: _scores(out, target, lpips_metric) for m, out in outputs.items()}
            report.images.append(ImageResult(pair.name, split.categories.get(pair.name), metrics))
            if keep(pair.name):
                kept[pair.name] = {**outputs, "target": target}
            bar.update()
    return report, kept
