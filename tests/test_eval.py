"""Evaluation: the report on a synthetic DPDD-layout folder, any tile function as a backend, the baselines."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from swintormer.cli import main
from swintormer.data.defocus import disk_blur
from swintormer.data.dpdd import find_split, scan_split
from swintormer.data.writer import write_synthetic_split
from swintormer.errors import SwintormerError
from swintormer.evaluation import evaluate_split
from swintormer.evaluation.baselines import UnsharpParams, identity_tile_fn, tune_unsharp, unsharp_tile_fn
from swintormer.evaluation.evaluate import INPUT
from swintormer.metrics import psnr
from swintormer.tiling import TilingConfig

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def synthetic_test(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_split(root, "test", levels=(3.0,), max_side=80, progress=False)
    return root


def test_eval_cli_writes_table_json_and_figures(capsys, tmp_path, synthetic_test, tiny_checkpoint):
    out = tmp_path / "eval"
    args = ["eval", "--data", synthetic_test, "-o", out, "--checkpoint", tiny_checkpoint, "--baseline", "unsharp",
            "--unsharp", "1.0", "0.5", "--figures", "2", "--tile", "128", "--stride", "100"]
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    label = "swintormer-tiny (tiny.safetensors)"  # the variant the checkpoint names, and the file
    assert report["methods"] == [INPUT, "unsharp mask", label]
    cats = report["categories"]
    assert list(cats) == ["indoor", "outdoor", "combined"]
    assert (cats["indoor"]["images"], cats["outdoor"]["images"], cats["combined"]["images"]) == (3, 2, 5)
    for category in cats:
        assert set(cats[category][label]) == {"psnr", "ssim", "mae"}
    combined = np.mean([r["metrics"][label]["psnr"] for r in report["images"]])
    assert cats["combined"][label]["psnr"] == pytest.approx(combined)
    table = (out / "report.md").read_text()
    for needle in ("indoor PSNR", "outdoor SSIM", "combined MAE", "| input |", "| unsharp mask |", f"| {label} |", "chelsea_r3"):
        assert needle in table
    assert "LPIPS not computed" in table  # lpips is not installed here: said so, not silently skipped
    assert len(list((out / "figures").glob("*.png"))) == 2
    assert "combined PSNR" in err  # the summary is logged


def test_any_tile_function_is_a_backend(synthetic_test):
    """The input row and an identity backend agree exactly; a broken backend fails loudly."""
    split = scan_split(find_split(synthetic_test), "single")
    report, kept = evaluate_split(split, {"identity": identity_tile_fn}, TilingConfig(tile=64, stride=40), keep=lambda n: n == "rocket_r3")
    for image in report.images:
        assert image.metrics["identity"] == pytest.approx(image.metrics[INPUT], abs=1e-6)
    assert set(kept) == {"rocket_r3"} and set(kept["rocket_r3"]) == {INPUT, "identity", "target"}
    with pytest.raises(SwintormerError, match="tile outputs have shape"):
        evaluate_split(split, {"broken": lambda t, o: t[:, :1]})


def test_unsharp_mask_is_tuned_to_help(rocket):
    sharp = rocket[:120, :160].astype(np.float32) / 255
    pairs = [(disk_blur(sharp, 1.5), sharp)]
    params = tune_unsharp(pairs, progress=False)
    assert params.amount > 0 and params.tuned_psnr > psnr(pairs[0][0], sharp) + 0.3
    tiles = torch.from_numpy(pairs[0][0]).permute(2, 0, 1)[None]
    out = unsharp_tile_fn(params)(tiles, [(0, 0)])[0].permute(1, 2, 0).clamp(0, 1).numpy()
    assert psnr(out, sharp) == pytest.approx(params.tuned_psnr, abs=1e-4)
    flat = unsharp_tile_fn(UnsharpParams(2.0, 1.0))(torch.full((1, 3, 8, 8), 0.5), [(0, 0)])
    assert torch.allclose(flat, torch.full_like(flat, 0.5))  # borders reflect: a flat image stays flat


def test_eval_errors_are_one_line(capsys, tmp_path, synthetic_test):
    assert main(["eval", "--data", str(tmp_path / "nowhere")]) == 2
    assert "data folder not found" in capsys.readouterr().err
    assert main(["eval", "--data", str(synthetic_test), "--no-model"]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err


def test_report_numbers_are_known_answers(tmp_path):
    """Inputs off their targets by a known constant: PSNR 20 / 30 dB, MAE 0.1 / 0.0316, and the
    category rows are the per-image means (the paper's convention), not a pooled MSE."""
    from swintormer.data.dpdd import CATEGORIES_FILE
    from swintormer.imageio import write_image

    split = tmp_path / "test"
    rng = np.random.default_rng(0)
    offsets = {"indoor_a": 0.1, "outdoor_b": 10 ** (-1.5)}  # 20 dB and 30 dB
    for name, offset in offsets.items():
        target = rng.uniform(0.2, 0.7, (40, 56, 3)).astype(np.float32)
        write_image(split / "target" / f"{name}.png", target, bit_depth=16)
        write_image(split / "inputC" / f"{name}.png", target + offset, bit_depth=16)
    (split / CATEGORIES_FILE).write_text(json.dumps({"indoor_a": "indoor", "outdoor_b": "outdoor"}))
    report, _ = evaluate_split(scan_split(find_split(tmp_path), "single"), {}, TilingConfig(tile=0), progress=False)
    cats = report.categories()
    assert cats["indoor"][INPUT]["psnr"] == pytest.approx(20.0, abs=2e-3)
    assert cats["outdoor"][INPUT]["psnr"] == pytest.approx(30.0, abs=2e-3)
    assert cats["combined"][INPUT]["psnr"] == pytest.approx(25.0, abs=2e-3)  # mean of 20 and 30, not 22.6 (pooled)
    assert cats["indoor"][INPUT]["mae"] == pytest.approx(0.1, abs=1e-4)
    assert cats["combined"][INPUT]["mae"] == pytest.approx((0.1 + 10 ** (-1.5)) / 2, abs=1e-4)
    assert 0.0 < cats["indoor"][INPUT]["ssim"] < cats["outdoor"][INPUT]["ssim"] < 1.0
