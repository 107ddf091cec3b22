"""Writing an :class:`~swintormer.evaluation.evaluate.EvalReport`: JSON, a Markdown table, figures.

The Markdown summary follows the paper's Table 5: one row per method, column groups for the
indoor, outdoor and combined scenes, each with PSNR, SSIM, MAE (and LPIPS when measured); a
per-image table follows. Figures put the input, each method's output and the target side by side,
with the absolute error of the input and of each output below them as heat maps.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from swintormer.evaluation.evaluate import EvalReport

__all__ = ["error_figure", "report_json", "report_markdown", "write_report"]

_ARROWS = {"psnr": "PSNR ↑", "ssim": "SSIM ↑", "mae": "MAE ↓", "lpips": "LPIPS ↓"}
_DIGITS = {"psnr": 2, "ssim": 4, "mae": 4, "lpips": 4}
#: the error maps show ``|output - target|`` scaled by this before the colour map (saturates at 1/ERROR_GAIN)
ERROR_GAIN = 5.0


def report_json(report: EvalReport) -> dict:
    """A JSON-able dict: folder, methods, notes, settings, per-category means and per-image metrics."""
    return {
        "folder": report.folder,
        "methods": report.methods,
        "notes": report.notes,
        "settings": report.settings,
        "categories": report.categories(),
        "images": [dataclasses.asdict(r) for r in report.images],
    }


def _fmt(value: float, key: str) -> str:
    return f"{value:.{_DIGITS.get(key, 4)}f}"


def report_markdown(report: EvalReport, title: str = "Evaluation") -> str:
    """The Table 5 style summary (methods x indoor/outdoor/combined), then every image."""
    cats = report.categories()
    labels = [c for c in ("indoor", "outdoor", "combined") if c in cats]
    keys = list(report.images[0].metrics[report.methods[0]]) if report.images else []
    head = "| method | " + " | ".join(f"{c} {_ARROWS.get(k, k)}" for c in labels for k in keys) + " |"
    lines = [f"## {title}", "", f"`{report.folder}`: " + ", ".join(f"{c} {cats[c]['images']} images" for c in labels), ""]
    lines += [head, "|---|" + "---:|" * (len(labels) * len(keys))]
    for method in report.methods:
        cells = [_fmt(cats[c][method][k], k) for c in labels for k in keys]  # type: ignore[index]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", "### Per image", "", "| image | category | " + " | ".join(f"{m} PSNR" for m in report.methods) + " | "
              + " | ".join(f"{m} SSIM" for m in report.methods) + " |", "|---|---|" + "---:|" * (2 * len(report.methods))]
    for r in report.images:
        psnrs = [_fmt(r.metrics[m]["psnr"], "psnr") for m in report.methods]
        ssims = [_fmt(r.metrics[m]["ssim"], "ssim") for m in report.methods]
        lines.append(f"| {r.name} | {r.category or '-'} | " + " | ".join(psnrs + ssims) + " |")
    if report.notes:
        lines += [""] + [f"- {note}" for note in report.notes]
    return "\n".join(lines) + "\n"


def _heat(error: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` absolute error -> ``uint8 [H, W, 3]`` RGB heat map (inferno)."""
    import cv2

    level = np.clip(error.mean(axis=2) * ERROR_GAIN, 0, 1)
    return cv2.applyColorMap((level * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)[:, :, ::-1]


def error_figure(images: dict[str, np.ndarray]) -> np.ndarray:
    """``{"input", method..., "target"}`` float images -> ``uint8`` figure: images on top, error maps below."""
    from swintormer.visualize import side_by_side

    target = images["target"]
    shown = [k for k in images if k != "target"]
    top = side_by_side([images[k] for k in shown] + [target], shown + ["target"], max_width=10**6)
    errors = [_heat(np.abs(images[k] - target)) for k in shown] + [np.zeros_like(target, dtype=np.uint8)]
    bottom = side_by_side(errors, [f"|{k} - target| x{ERROR_GAIN:g}" for k in shown] + [""], max_width=10**6)
    figure = np.concatenate([top, bottom], axis=0)
    if figure.shape[1] > 2400:
        import cv2

        f = 2400 / figure.shape[1]
        figure = cv2.resize(figure, (2400, int(figure.shape[0] * f)), interpolation=cv2.INTER_AREA)
    return figure


def write_report(report: EvalReport, out_dir: str | Path, figures: dict[str, dict[str, np.ndarray]], title: str = "Evaluation") -> list[Path]:
    """Write ``report.json``, ``report.md`` and ``figures/<image>.png`` into ``out_dir``; returns the paths."""
    from swintormer.imageio import write_image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "report.json", out / "report.md"]
    paths[0].write_text(json.dumps(report_json(report), indent=1) + "\n")
    paths[1].write_text(report_markdown(report, title))
    for name, images in figures.items():
        paths.append(write_image(out / "figures" / f"{name}.png", error_figure(images)))
    return paths
