"""The command line on real photographs, and every bad input as one clear error line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from swintormer.checkpoint import save_checkpoint
from swintormer.cli import main
from swintormer.imageio import read_image, write_image
from swintormer.models import RestorerConfig
from swintormer.model import DeblurModel
from swintormer.registry import build_model, list_models


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def rocket_png(tmp_path_factory, rocket) -> str:
    path = tmp_path_factory.mktemp("img") / "rocket.png"
    write_image(path, rocket)
    return str(path)


def _checkpoint_for(variant: str, folder) -> str:
    torch.manual_seed(0)
    path = folder / f"{variant}.safetensors"
    model = DeblurModel.build(variant)
    save_checkpoint(path, model.components(), model.metadata())
    return str(path)


def test_deblur_default_model_on_odd_size_photo_8_and_16_bit(capsys, tmp_path, rocket_png):
    code, _, err = run_cli(capsys, "deblur", rocket_png, "-o", tmp_path / "r.png", "--compare")
    assert code == 0, err
    out = read_image(tmp_path / "r.png")
    assert out.array.shape == (427, 640, 3) and out.bit_depth == 8
    assert (tmp_path / "r_compare.png").is_file()
    src16 = tmp_path / "in16.png"
    write_image(src16, read_image(rocket_png).pixels, bit_depth=16)
    code, _, err = run_cli(capsys, "deblur", src16, "-o", tmp_path / "o16.tif")
    assert code == 0, err
    assert read_image(tmp_path / "o16.tif").bit_depth == 16


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(list_models(RestorerConfig)))
def test_deblur_every_variant(capsys, tmp_path, rocket, variant):
    """Every registered variant deblurs an odd-size real photo (full-size models on a crop of it)."""
    model = build_model(variant)
    small = variant.endswith("-tiny")
    img = rocket if small else rocket[:183, 100:345]  # 183x245: one tile, keeps CPU time sane
    views = []
    for i in range(model.config.in_channels // 3):
        views.append(tmp_path / f"view{i}.png")
        write_image(views[-1], np.roll(img, i, axis=1))
    args = ["--right", views[0], "--left", views[1]] if len(views) == 2 else [views[0]]
    if variant.endswith("-prior"):
        args += ["--prior-steps", "2"]
    code, _, err = run_cli(
        capsys, "deblur", *args, "-o", tmp_path / "out.png", "--checkpoint", _checkpoint_for(variant, tmp_path), "--batch", "6"
    )
    assert code == 0, err
    assert read_image(tmp_path / "out.png").array.shape == img.shape


def test_errors_are_one_line(capsys, tmp_path, rocket_png, tiny_checkpoint):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 50)
    import cv2

    pixel = tmp_path / "pixel.png"
    cv2.imwrite(str(pixel), np.zeros((1, 1, 3), np.uint8))
    out = tmp_path / "o.png"
    assert_one_line_error(*run_cli(capsys, "deblur", corrupt, "-o", out)[::2], "is a damaged PNG")
    assert_one_line_error(*run_cli(capsys, "deblur", pixel, "-o", out)[::2], "1x1 pixels")
    assert_one_line_error(*run_cli(capsys, "deblur", tmp_path / "none.png", "-o", out)[::2], "image not found")
    assert_one_line_error(
        *run_cli(capsys, "deblur", rocket_png, "-o", out, "--checkpoint", tmp_path / "missing.safetensors")[::2],
        "checkpoint not found",
    )
    # A checkpoint for another variant, and an upstream file that does not fit the named model.
    assert_one_line_error(
        *run_cli(capsys, "deblur", rocket_png, "-o", out, "--checkpoint", tiny_checkpoint, "--model", "swintormer-single")[::2],
        "different model",
    )
    upstream = tmp_path.parent / "up.pth"
    torch.save({"params": build_model("restormer-tiny").state_dict()}, upstream)
    assert_one_line_error(
        *run_cli(capsys, "deblur", rocket_png, "-o", out, "--checkpoint", upstream, "--model", "swintormer-tiny")[::2],
        "does not fit",
    )
    # A dual-pixel model given one RGB image; a tile the architecture cannot take.
    dual = _checkpoint_for("swintormer-dpdd", tmp_path)
    assert_one_line_error(*run_cli(capsys, "deblur", rocket_png, "-o", out, "--checkpoint", dual)[::2], "--right")
    assert_one_line_error(*run_cli(capsys, "deblur", rocket_png, "-o", out, "--tile", "300")[::2], "multiple of 128")
    assert_one_line_error(*run_cli(capsys, "deblur", rocket_png, "-o", tmp_path / "x.gif")[::2], "unknown extension")
    assert not out.exists()


@pytest.mark.parametrize("bits", [8, 16])
def test_grayscale_files_are_restored_and_written_back_grayscale(capsys, tmp_path, bits):
    """A grayscale photo is deblurred as RGB (its channel three times) and written back grayscale:
    the mean of what the RGB image gives, to within one level of rounding."""
    import cv2

    from photos import photo

    from swintormer.data.defocus import disk_blur
    from swintormer.imageio import to_uint

    sharp = photo("camera")[:150, :230, None].repeat(3, axis=2).astype(np.float32) / 255  # a real grayscale photograph
    gray = to_uint(disk_blur(sharp, 3.0)[:, :, :1], bits)[:, :, 0]
    src, rgb = tmp_path / "gray.png", tmp_path / "rgb.png"
    cv2.imwrite(str(src), gray)
    write_image(rgb, np.repeat(gray[:, :, None], 3, axis=2))
    code, _, err = run_cli(capsys, "deblur", src, "-o", tmp_path / "out-gray.png", "--compare")
    assert code == 0 and "grayscale" in err, err
    code, _, err = run_cli(capsys, "deblur", rgb, "-o", tmp_path / "out-rgb.png")
    assert code == 0, err
    out = cv2.imread(str(tmp_path / "out-gray.png"), cv2.IMREAD_UNCHANGED)
    assert out.shape == gray.shape and out.dtype == gray.dtype  # one channel, the input's bit depth
    want = read_image(tmp_path / "out-rgb.png").array.astype(np.float64).mean(axis=2)
    assert np.abs(out - want).max() <= 1.0
    assert np.abs(out.astype(np.int64) - gray).mean() > 0.5 * (257 if bits == 16 else 1)  # restored, not copied
    assert read_image(tmp_path / "out-gray_compare.png").array.shape[2] == 3


def test_profile_reports_reference_counts(capsys):
    code, out, _ = run_cli(capsys, "profile", "--model", "swintormer-dpdd", "--size", "256", "--json")
    report = json.loads(out)
    assert code == 0 and report["params"] == 25_177_224
    assert abs(report["thop_macs"] / 28.22e9 - 1) < 0.001  # the reference's thop figure to its 4 digits
    assert abs(report["fvcore_macs"] / 33.33e9 - 1) < 0.001
    assert "thop" in report["conventions"]["thop_macs"]
    code, out, _ = run_cli(capsys, "profile", "--model", "restormer-defocus-single", "--json")
    assert abs(json.loads(out)["thop_macs"] / 140.99e9 - 1) < 0.001


def test_convert_then_deblur(capsys, tmp_path, upstream_dir, rocket_png):
    out = tmp_path / "conv.safetensors"
    io = torch.load(upstream_dir / "swintormer_dual_small_io.pt", weights_only=True)
    code, _, err = run_cli(
        capsys, "convert", upstream_dir / "swintormer_dual_small.pth", "--arch", "swintormer",
        "--config", json.dumps(io["config"]), "-o", out,
    )
    assert code == 0, err
    from swintormer.checkpoint import load_checkpoint

    with torch.no_grad():
        y = load_checkpoint(out).restorer(io["input"])
    assert (y - io["output"]).abs().max() < 1e-5


def test_console_script_and_help():
    res = subprocess.run([sys.executable, "-m", "swintormer", "deblur", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "--tile" in res.stdout and "examples" in res.stdout
    res = subprocess.run([sys.executable, "-m", "swintormer", "deblur", "nope.png", "-o", "x.png"], capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.strip().splitlines()[-1].startswith("error:")


def test_prior_steps_end_to_end_and_guard(capsys, tmp_path, rocket_png, tiny_checkpoint):
    prior_ckpt = _checkpoint_for("swintormer-tiny-prior", tmp_path)
    code, _, err = run_cli(capsys, "deblur", rocket_png, "-o", tmp_path / "p.png", "--checkpoint", prior_ckpt, "--prior-steps", "5")
    assert code == 0, err
    assert "5 DDIM steps" in err and read_image(tmp_path / "p.png").array.shape == (427, 640, 3)
    code, _, err = run_cli(capsys, "deblur", rocket_png, "-o", tmp_path / "q.png", "--checkpoint", tiny_checkpoint, "--prior-steps", "5")
    assert_one_line_error(code, err, "no diffusion prior")


@pytest.mark.slow
def test_deblur_with_onnxruntime_backend_matches_torch(capsys, tmp_path, rocket_png):
    args = [rocket_png, "--batch", "4"]
    code, _, err = run_cli(capsys, "deblur", *args, "-o", tmp_path / "t.png")
    assert code == 0, err
    code, _, err = run_cli(capsys, "deblur", *args, "-o", tmp_path / "o.png", "--backend", "onnxruntime")
    assert code == 0 and "onnxruntime/cpu" in err, err
    a, b = read_image(tmp_path / "t.png").array.astype(int), read_image(tmp_path / "o.png").array.astype(int)
    assert np.abs(a - b).max() <= 1


def test_folder_of_inputs_each_deblurred_on_its_own(capsys, tmp_path, rocket):
    src = tmp_path / "in"
    write_image(src / "a.png", rocket[:120, :150])
    write_image(src / "b.png", rocket[200:330, 300:480])
    code, _, err = run_cli(capsys, "deblur", src, "-o", tmp_path / "out")
    assert code == 0, err
    assert read_image(tmp_path / "out" / "a.png").array.shape == (120, 150, 3)
    assert read_image(tmp_path / "out" / "b.png").array.shape == (130, 180, 3)
    code, _, err = run_cli(capsys, "deblur", src / "a.png", "-o", src / "a.png")
    assert_one_line_error(code, err, "refusing to overwrite")


def test_bundled_models_listed_and_selected_by_name(capsys, tmp_path, rocket_png):
    from swintormer.model import BUNDLED, DEFAULT_CHECKPOINT
    from swintormer.registry import list_models

    code, out, _ = run_cli(capsys, "models")
    assert code == 0
    rows = {line[2:].split()[0]: line[0] for line in out.split("\n\n")[0].splitlines()}  # the legend follows
    assert set(rows) == set(list_models())
    marked = {name: mark for name, mark in rows.items() if mark != " "}
    assert marked == {name: "*" if path == DEFAULT_CHECKPOINT else "+" for name, path in BUNDLED.items()}
    # The bundled prior model runs `--prior-steps 5` on a real photograph ...
    code, _, err = run_cli(capsys, "deblur", rocket_png, "-o", tmp_path / "d.png", "--model", "swintormer-tiny-prior", "--prior-steps", "5")
    assert code == 0 and "5 DDIM steps" in err, err
    # ... every bundled variant runs by name, and a variant without bundled weights says what to do.
    for name in BUNDLED:
        code, _, err = run_cli(capsys, "deblur", rocket_png, "-o", tmp_path / f"{name}.png", "--model", name, "--tile", "128", "--stride", "100")
        assert code == 0, err
    assert_one_line_error(*run_cli(capsys, "deblur", rocket_png, "-o", tmp_path / "x.png", "--model", "swintormer-single")[::2],
                          "no bundled weights", "--checkpoint")
