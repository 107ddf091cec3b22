"""Parity: every backend computes the same image as the PyTorch pipeline (PSNR against it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from swintormer.backends import BackendRequest
from swintormer.inference import tile_function
from swintormer.metrics import psnr
from swintormer.serving.client import DeblurClient
from swintormer.tiling import TilingConfig, tiled_apply

OPTIONS = TilingConfig(batch=8)
#: Floors a few dB under what was measured on the 2-core CPUs (fp32: 155.6-157.2 dB for ONNX Runtime
#: in-process and in the server, the same graph; our fp16 graphs: 97.6-101.6 dB; the library's fp16
#: conversion of the fp32 graph: 81.8-85.6 dB, 2026-12-03, Xeon).
BARS = {"onnxruntime-fp32": 150.0, "triton-server-fp32": 150.0, "onnxruntime-fp16": 93.0}
LIBRARY_FP16 = "onnxruntime-fp16-onnxconverter"
LIBRARY_FP16_FLOOR = 78.0
#: What the library conversion keeps in fp32 (beside its own default list): the ops of the norms
#: (mean, variance, square root, division), the L2 normalisations and the softmaxes, the ones our
#: fp16 export keeps in fp32. An op block list is coarser than ours: every Div stays fp32.
FP32_OPS = ("ReduceMean", "ReduceL2", "ReduceMax", "ReduceSum", "Exp", "Sqrt", "Div")


def _run(model, backend: str, image: np.ndarray, precision: str = "fp32") -> np.ndarray:
    fn = tile_function(model, backend, OPTIONS, BackendRequest(precision=precision))
    return tiled_apply(fn, image.astype(np.float32) / 255.0, 3, OPTIONS)


def _library_fp16(model, folder: Path) -> Path:
    """The fp32 restorer graph converted by onnxconverter-common's float16 converter, as other
    TensorRT restoration toolkits make their fp16 graphs (fp32 I/O, FP32_OPS blocked)."""
    import onnx
    from onnxconverter_common import float16

    from swintormer.export.build import export_components
    from swintormer.export.specs import Precision, component_specs

    fp32 = export_components(model, component_specs(model, OPTIONS.tile, OPTIONS.batch), Precision.FP32)["restorer"].path
    converted = float16.convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=True,
                                                 op_block_list=[*float16.DEFAULT_OP_BLOCK_LIST, *FP32_OPS])
    out = folder / "restorer-fp16-onnxconverter.onnx"
    onnx.save(converted, str(out))
    return out


def test_backends_match_pytorch(default_model, served, bench_photos, record, tmp_path):
    from swintormer.backends.onnxruntime import ort_tile_fn

    scores: dict[str, dict[str, float]] = {k: {} for k in (*BARS, LIBRARY_FP16)}
    library = ort_tile_fn({"restorer": _library_fp16(default_model, tmp_path)}, None, default_model.scheduler)
    for name, image in bench_photos.items():
        ref = _run(default_model, "torch", image)
        scores["onnxruntime-fp32"][name] = psnr(_run(default_model, "onnxruntime", image), ref)
        scores["onnxruntime-fp16"][name] = psnr(_run(default_model, "onnxruntime", image, "fp16"), ref)
        scores[LIBRARY_FP16][name] = psnr(tiled_apply(library, image.astype(np.float32) / 255.0, 3, OPTIONS), ref)
        with DeblurClient(served.http_url) as client:
            scores["triton-server-fp32"][name] = psnr(client.deblur(image.astype(np.float32) / 255.0), ref)
    notes = ["float32 images in and out; PSNR with data range 1 against the PyTorch tiled pipeline",
             f"{LIBRARY_FP16}: our fp32 graph through onnxconverter-common's float16 converter (fp32 I/O, op block list: "
             f"its defaults and {', '.join(FP32_OPS)}), the cross-check of our own fp16 export",
             "TensorRT: not measured here (needs TensorRT and a GPU)" if not torch.cuda.is_available() else ""]
    record("parity", {"psnr_db": scores, "bars_db": BARS | {LIBRARY_FP16: LIBRARY_FP16_FLOOR}, "notes": [n for n in notes if n]})
    for backend, floor in (BARS | {LIBRARY_FP16: LIBRARY_FP16_FLOOR}).items():
        worst = min(scores[backend].values())
        assert worst >= floor, f"{backend}: {worst:.1f} dB < {floor} dB"


def _tensorrt_reason() -> str:
    from swintormer.export.trt_engine import tensorrt_status

    usable, why = tensorrt_status()
    return "" if usable else why


@pytest.mark.gpu
@pytest.mark.trt
@pytest.mark.skipif(bool(_tensorrt_reason()), reason=_tensorrt_reason() or "TensorRT available")
def test_tensorrt_matches_pytorch(default_model, bench_photos, record):
    scores = {}
    for precision, floor in (("fp32", 50.0), ("fp16", 40.0)):  # never measured: TensorRT has not run here yet
        for name, image in bench_photos.items():
            ref = _run(default_model, "torch", image)
            scores.setdefault(f"tensorrt-{precision}", {})[name] = psnr(_run(default_model, "tensorrt", image, precision), ref)
        assert min(scores[f"tensorrt-{precision}"].values()) >= floor
    record("parity_tensorrt", {"psnr_db": scores})


#: (fp32, fp16) floors a few dB under the recorded run (BENCHMARKS.md, 2026-11-26: fp32 127.3 / 136.0 /
#: 125.8 dB, fp16 66.1 / 81.8 / 64.5 dB).
FULL_SIZE_BARS = {"swintormer-dpdd": (122.0, 62.0), "restormer-defocus-single": (131.0, 77.0), "swintormer-dpdd-prior": (120.0, 60.0)}
FULL_SIZE = tuple(FULL_SIZE_BARS)


@pytest.mark.slow
@pytest.mark.parametrize("variant", FULL_SIZE)
def test_full_size_models_onnxruntime_parity(variant, full_size, record):
    """The full-size variants (seeded random weights: parity does not need trained ones) through
    the tiled pipeline on a real photo, fp32 and fp16 graphs, at two batch sizes."""
    if not full_size:
        pytest.skip("full-size exports take several minutes each on a CPU; run `pytest benchmarks/ --full-size`")
    import recording
    from swintormer.model import DeblurModel

    from conftest import photo

    torch.manual_seed(0)
    model = DeblurModel.build(variant)
    if model.has_prior:
        model.prior = type(model.prior)(steps=2)
    image = photo("chelsea")[:280, :300]
    if model.in_channels == 6:
        image = np.concatenate([image, np.roll(image, 2, axis=1)], axis=2)
    ref = tiled_apply(tile_function(model, "torch", TilingConfig(batch=1)), image, 3, TilingConfig(batch=1))
    scores = {}
    for precision, floor in zip(("fp32", "fp16"), FULL_SIZE_BARS[variant]):
        for batch in (1, 2):
            tiling = TilingConfig(batch=2)  # graphs of batch <= 2, run at 1 and 2
            fn = tile_function(model, "onnxruntime", tiling, BackendRequest(precision=precision))
            got = tiled_apply(fn, image, 3, TilingConfig(batch=batch))
            scores[f"{precision}-batch{batch}"] = psnr(got, ref)
            assert scores[f"{precision}-batch{batch}"] >= floor, (variant, precision, batch)
    section = recording.previous("parity_full_size")
    section[variant] = scores
    record("parity_full_size", section)
