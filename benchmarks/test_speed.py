"""Speed: backends side by side in one run, the tile/stride trade-off and the prior's step count.

Only ratios measured in the same run are asserted on, against sane ranges around what this
project has measured (a backend several times slower than its neighbour, or a server ten times
slower than the same graph in-process, fails); absolute times are recorded, never asserted.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from swintormer.backends import BackendRequest
from swintormer.inference import tile_function
from swintormer.metrics import psnr
from swintormer.serving.client import DeblurClient
from swintormer.tiling import TilingConfig, plan_tiles, tiled_apply

from timing import latencies, summary

OPTIONS = TilingConfig(batch=8)


def test_backend_speed(default_model, served, bench_photos, record, quick):
    runs = 2 if quick else 5
    image = bench_photos["rocket"]
    mp = image.shape[0] * image.shape[1] / 1e6
    fns = {"torch-eager": tile_function(default_model, "torch", OPTIONS),
           "onnxruntime-fp32": tile_function(default_model, "onnxruntime", OPTIONS)}
    results = {name: summary(latencies(lambda f=fn: tiled_apply(f, image, 3, OPTIONS, out_dtype=np.uint8), runs), mp)
               for name, fn in fns.items()}
    with DeblurClient(served.http_url) as client:
        results["triton-server-http"] = summary(latencies(lambda: client.deblur(image), runs), mp)
    with DeblurClient(served.grpc_url, protocol="grpc") as client:
        results["triton-server-grpc"] = summary(latencies(lambda: client.deblur(image), runs), mp)
    ratios = {
        "onnxruntime / torch eager (throughput)": results["onnxruntime-fp32"]["megapixels_per_s"] / results["torch-eager"]["megapixels_per_s"],
        "triton server (http) / in-process onnxruntime (p50 latency)": results["triton-server-http"]["p50_s"] / results["onnxruntime-fp32"]["p50_s"],
        "triton server (grpc) / in-process onnxruntime (p50 latency)": results["triton-server-grpc"]["p50_s"] / results["onnxruntime-fp32"]["p50_s"],
    }
    record("speed", {"backends": results, "ratios": ratios, "image": f"rocket {image.shape[1]}x{image.shape[0]}",
                     "notes": [f"default model, tile {OPTIONS.tile}, stride {OPTIONS.stride}, batch {OPTIONS.batch}, uint8 image",
                               "the server runs the same fp32 ONNX graph through ONNX Runtime in a python-backend model"]})
    # Sane ranges, not goals: on the 2-core CPU ONNX Runtime has measured 1.7x eager PyTorch per
    # tile on a quiet machine (issue 18) and 0.53x in a CI run of this benchmark (the runtimes'
    # idle threads contend), the server 0.58-0.60x that run's in-process latency. A backend 4x
    # off its neighbour is broken, not slow.
    assert 0.25 <= ratios["onnxruntime / torch eager (throughput)"] <= 8.0, ratios
    for key in ("triton server (http) / in-process onnxruntime (p50 latency)", "triton server (grpc) / in-process onnxruntime (p50 latency)"):
        assert 0.25 <= ratios[key] <= 4.0, ratios


def _synthetic_pairs(quick: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """(blurry, sharp) float pairs: held-out photographs of the synthetic test split, blur level 4."""
    from swintormer.data.photos import load_photo, split_photos
    from swintormer.data.synthetic import level_recipe, synthesize_defocus

    photos = split_photos("test")[: 2 if quick else 5]
    pairs = []
    for i, photo in enumerate(photos):
        sample = synthesize_defocus(load_photo(photo, max_side=512), level_recipe(4.0), np.random.default_rng(i))
        pairs.append((sample.center, sample.target))
    return pairs


def test_tile_stride_tradeoff(default_model, record, quick):
    fn = tile_function(default_model, "torch", OPTIONS)
    pairs = _synthetic_pairs(quick)
    settings = [(256, 220), (256, 256), (256, 128), (512, 220), (512, 440)]
    if quick:
        settings = settings[:2] + settings[3:4]
    rows = {}
    for tile, stride in settings:
        opts = TilingConfig(tile, stride, batch=4)
        scores, seconds = [], 0.0
        for blurry, sharp in pairs:
            start = time.perf_counter()
            out = tiled_apply(fn, blurry, 3, opts)
            seconds += time.perf_counter() - start
            scores.append(psnr(out.clip(0, 1), sharp))
        tiles = sum(len(plan_tiles(b.shape[0], b.shape[1], tile, stride).origins) for b, _ in pairs)
        rows[f"{tile}/{stride}"] = {"seconds": seconds, "psnr_db": float(np.mean(scores)), "tiles": tiles}
    record_section = {"tradeoff": rows, "tradeoff_images": "synthetic test split (held-out photos, long side 512, blur level 4)"}
    _merge_speed(record, record_section)
    base = float(np.mean([psnr(b, s) for b, s in pairs]))
    for key, row in rows.items():
        # measured within 0.7 dB of each other (512 tiles are twice what swintormer-tiny trained
        # on); a broken merge loses whole dB, and every setting must still beat the blurry input
        assert abs(row["psnr_db"] - rows["256/220"]["psnr_db"]) < 1.5, (key, row)
        assert row["psnr_db"] > base, (key, row, base)
    assert rows["256/256"]["tiles"] < rows["256/220"]["tiles"]


def _merge_speed(record, extra: dict) -> None:
    """Add keys to the speed section written by test_backend_speed (same session)."""
    import recording

    speed = {"backends": {}, "ratios": {}, **recording.previous("speed")}
    speed.update(extra)
    record("speed", speed)


def test_prior_steps(prior_model, record, quick):
    """The bundled prior model (``swintormer-tiny-prior``): time and quality against DDIM steps."""
    fn_opts = TilingConfig(256, 220, batch=8)
    pairs = _synthetic_pairs(quick)
    rows = {}
    for steps in ([0, 2, 8] if quick else [0, 5, 10, 20, 50]):
        fn = tile_function(prior_model, "torch", fn_opts, BackendRequest(settings=prior_model.settings(steps)))
        start = time.perf_counter()
        scores = [psnr(tiled_apply(fn, b, 3, fn_opts).clip(0, 1), s) for b, s in pairs]
        rows[str(steps)] = {"seconds": time.perf_counter() - start, "psnr_db": float(np.mean(scores))}
    _merge_speed(record, {"prior_steps": rows, "prior_model": prior_model.name})
    base = float(np.mean([psnr(b, s) for b, s in pairs]))
    most = max(rows, key=int)
    assert rows[most]["seconds"] > rows["0"]["seconds"], rows  # every step runs the denoiser once more
    for row in rows.values():  # the prior moves the result by tenths of a dB at most (the paper: ~0.1 dB)
        assert abs(row["psnr_db"] - base) < 3.0 and abs(row["psnr_db"] - rows["0"]["psnr_db"]) < 1.0, rows


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 vs fp32, CUDA graphs and kernels vs eager need a CUDA GPU")
def test_gpu_precision_graphs_and_kernels(default_model, record, quick):
    from swintormer.models import set_attention_backend

    restorer = default_model.restorer.cuda().eval()
    x = torch.rand(8, default_model.in_channels, 256, 256, device="cuda")
    rows = {}
    for backend in ("torch", "triton"):
        set_attention_backend(restorer, backend)
        for dtype in (torch.float32, torch.float16):
            model = restorer.to(dtype)
            xin = x.to(dtype)
            with torch.inference_mode():
                eager = latencies(lambda: (model(xin), torch.cuda.synchronize()), 10 if quick else 50, warmup=3)
                graph = torch.cuda.CUDAGraph()
                static = xin.clone()
                for _ in range(3):
                    model(static)
                torch.cuda.synchronize()
                with torch.cuda.graph(graph):
                    out = model(static)
                replay = latencies(lambda: (graph.replay(), torch.cuda.synchronize()), 10 if quick else 50, warmup=3)
                del out
            rows[f"{backend}-{str(dtype).split('.')[-1]}"] = {"eager_ms": 1e3 * float(np.median(eager)), "cuda_graph_ms": 1e3 * float(np.median(replay))}
    restorer.float()
    _merge_speed(record, {"gpu_batch8_tile256": rows})
    assert all(v["eager_ms"] > 0 and v["cuda_graph_ms"] > 0 for v in rows.values())
