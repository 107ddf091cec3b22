"""The backend table: dispatch and the command line's choices read it, and each row says what it cannot do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from swintormer.backends import BACKENDS, BackendRequest, get_backend
from swintormer.cli import build_parser, main
from swintormer.errors import SwintormerError
from swintormer.inference import describe, tile_function
from swintormer.model import DeblurModel
from swintormer.tiling import TilingConfig

ROOT = Path(__file__).resolve().parents[1]


def _choices(command: str, option: str) -> list[str]:
    sub = next(a for a in build_parser()._subparsers._group_actions if a.dest == "command").choices[command]
    return list(next(a for a in sub._actions if option in a.option_strings).choices)


def test_command_line_choices_are_the_table():
    assert _choices("deblur", "--backend") == ["auto", *BACKENDS] and list(BACKENDS) == ["torch", "onnxruntime", "openvino", "tensorrt"]
    assert _choices("eval", "--backend") == ["auto", *BACKENDS]
    assert set(_choices("deblur", "--precision")) == {p for b in BACKENDS.values() for p in b.precisions}
    for backend in BACKENDS.values():
        assert callable(backend.factory())  # every row's module exports its factory


def test_dispatch_errors_say_what_to_do():
    model = DeblurModel.load()
    with pytest.raises(SwintormerError, match="unknown backend 'jax'; choose one of auto, torch, onnxruntime, openvino, tensorrt"):
        tile_function(model, "jax")
    with pytest.raises(SwintormerError, match="backend torch runs fp32, not fp16; fp16 needs --backend onnxruntime or tensorrt"):
        tile_function(model, "torch", request=BackendRequest(precision="fp16"))
    with pytest.raises(SwintormerError, match="unknown provider 'rocm'"):
        get_backend("onnxruntime").check(BackendRequest(provider="rocm"))
    with pytest.raises(SwintormerError, match="multiple of 128"):
        tile_function(model, "torch", TilingConfig(200, 100))
    assert describe("torch", BackendRequest(device="cpu")) == "cpu" and describe("onnxruntime", BackendRequest()) == "onnxruntime/cpu"


def test_tensorrt_backend_without_tensorrt_is_one_error_line(capsys, tmp_path):
    from swintormer.export.trt_engine import tensorrt_status

    if tensorrt_status()[0]:
        pytest.skip("TensorRT and a GPU are present here: the backend runs")
    from swintormer.model import ASSETS

    src = ASSETS / "sample_blurry.png"
    code = main(["deblur", str(src), "-o", str(tmp_path / "x.png"), "--backend", "tensorrt"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("error:") == 1 and "TensorRT engines were asked for" in err, err
    assert not (tmp_path / "x.png").exists()


def test_torch_backend_is_the_models_own_forward():
    """The factory runs exactly the restorer: one tile through it equals a direct call."""
    import torch

    model = DeblurModel.load()
    fn = get_backend("torch").factory()(model, BackendRequest(device="cpu"), None)
    tiles = torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(fn(tiles, [(0, 0), (0, 220)]), model.restorer(tiles))


def test_build_engines_script_is_the_export_command():
    res = subprocess.run([sys.executable, str(ROOT / "export" / "build_engines.py"), "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.startswith("usage: python export/build_engines.py")
    for option in ("--checkpoint", "--tile", "--stride", "--blend", "--batch", "--flavour", "--precision", "--threads"):
        assert option in res.stdout
    res = subprocess.run([sys.executable, "-m", "swintormer", "export", "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "usage: swintormer export" in res.stdout and "build_deployment" in res.stdout


def test_auto_picks_the_fastest_installed_backend_for_the_precision():
    """CPU order: openvino, onnxruntime, torch (the benchmark's measured order); a precision narrows it."""
    from swintormer.backends import resolve_backend

    assert resolve_backend("torch") == "torch"  # an explicit choice is kept
    cpu = BackendRequest(device="cpu")
    assert resolve_backend("auto", cpu) == ("openvino" if BACKENDS["openvino"].installed() else "onnxruntime")
    assert resolve_backend("auto", BackendRequest(device="cpu", precision="fp16")) == "onnxruntime"
    assert resolve_backend("auto", BackendRequest(device="cpu", precision="bf16")) == "openvino"
    if not BACKENDS["tensorrt"].installed():  # on a CUDA device without TensorRT: torch, and fp16 there is TensorRT's alone
        assert resolve_backend("auto", BackendRequest(device="cuda")) == "torch"
        with pytest.raises(SwintormerError, match="no backend installed here runs fp16 .*fp16 needs onnxruntime or tensorrt"):
            resolve_backend("auto", BackendRequest(device="cuda", precision="fp16"))


def test_auto_is_the_command_line_default(monkeypatch):
    monkeypatch.delenv("SWINTORMER_BACKEND", raising=False)
    assert build_parser("deblur").parse_args(["deblur", "x.png", "-o", "y.png"]).backend == "auto"
    monkeypatch.setenv("SWINTORMER_BACKEND", "onnxruntime")
    assert build_parser("deblur").parse_args(["deblur", "x.png", "-o", "y.png"]).backend == "onnxruntime"


def test_graph_tile_functions_keep_tiles_and_the_prior_on_the_sessions_device():
    """TensorRT (and the server's GPU models) compute on a GPU: the tiles go there once a batch, and
    the conditioning latent, every DDIM step and the prior stay there until the tiler takes the
    restored tiles home. Sessions on the ``meta`` device stand in for a GPU: any copy to the host
    on the way fails ("Cannot copy out of meta tensor")."""
    import torch

    from swintormer.backends.compose import graph_tile_fn
    from swintormer.diffusion.config import SchedulerConfig
    from swintormer.diffusion.prior import PriorSettings

    seen = []

    def encoder(image):
        seen.append(image.device.type)
        return torch.empty(image.shape[0], 4, image.shape[2] // 4, image.shape[3] // 4, device=image.device)

    def denoiser(sample, timestep):
        seen.append(sample.device.type)
        return torch.empty_like(sample[:, :4])

    def restorer(image, prior):
        seen.extend([image.device.type, prior.device.type])
        return torch.empty(image.shape[0], 3, *image.shape[2:], device=image.device)

    fn = graph_tile_fn({"encoder": encoder, "denoiser": denoiser, "restorer": restorer},
                       PriorSettings(steps=3), SchedulerConfig(), device="meta")
    out = fn(torch.rand(2, 3, 32, 32), [(0, 0), (0, 32)])
    assert out.device.type == "meta" and out.shape == (2, 3, 32, 32)
    assert seen == ["meta"] * (1 + 3 + 2), seen  # encoder, three DDIM steps, restorer (tiles and prior)
