"""Pytest entry of the GPU model benchmark (``bench_gpu.py``): the full run on a GPU, and on any
machine a CPU smoke run of the same code, so the script a lent GPU session has minutes for works
the first time.

Self-contained on purpose: it neither needs nor provides fixtures of the benchmark suite.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import bench_gpu
import recording
import report


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="the GPU model benchmark needs a CUDA GPU")
def test_bench_gpu():
    recording.run_dir().mkdir(parents=True, exist_ok=True)
    out = recording.run_dir() / "gpu.json"
    assert bench_gpu.main(["--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert not doc["partial"] and doc["cells"] and doc["photo"]
    measured = [c for c in doc["cells"] if "ms_per_tile" in c]
    assert measured and all(c["ms_per_tile"] > 0 for c in measured)
    for c in measured:  # every mode computes the same model: fp32 near-exact, half precisions close
        assert c["psnr_vs_fp32_eager_db"] >= (60 if c["dtype"] == "float32" else 30), c


def test_the_cells_run_cheapest_first_and_compile_last():
    cells = bench_gpu.build_cells(["a", "b"], [256, 512], ["float32", "float16"], list(bench_gpu.MODES))
    assert len(cells) == 2 * 2 * 2 * 4
    first = [c for c in cells if c.mode != "compile"]
    assert cells[: len(first)] == first and all(c.mode == "compile" for c in cells[len(first):])
    assert [c.tile for c in first] == sorted(c.tile for c in first)  # every 256 px cell before any 512 px one
    assert {(c.tile, c.batch) for c in cells} == {(256, 8), (512, 2)}


def test_the_photo_runs_through_the_tiler_with_the_short_batch_padded():
    """A fixed-shape runner (as a CUDA graph is) sees only full batches, and the output is the tiler's merge."""
    seen = []

    def run(tiles: torch.Tensor) -> torch.Tensor:
        seen.append(tiles.shape[0])
        return tiles[:, :3] * 0.5

    photo = bench_gpu.sample_photo((300, 280))
    out, seconds = bench_gpu.photo_run(run, 3, photo, torch.device("cpu"))
    assert seen == [3, 3] and seconds > 0  # 4 tiles of 256: one full batch, one padded from 1
    np.testing.assert_allclose(out, 0.5 * photo.permute(1, 2, 0).numpy(), atol=1e-6)


def test_cpu_smoke_run_measures_every_mode_it_can_and_says_why_not_the_others(tmp_path):
    """The whole run on the CPU; torch.compile through aot_eager (Dynamo traces the model as on a
    GPU, without the two minutes inductor's C++ build takes on a cold 2-core machine)."""
    out = tmp_path / "smoke.json"
    code = bench_gpu.main(["--device", "cpu", "--models", "default", "--tiles", "64", "--dtypes", "float32", "bfloat16",
                           "--modes", "eager", "cuda_graph", "compile", "--compile-backend", "aot_eager", "--reps", "1",
                           "--no-photo", "--out", str(out)])
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["kind"] == "gpu_tiles" and not doc["partial"] and "swintormer-tiny" in doc["models"]["default"]
    cells = {(c["dtype"], c["mode"]): c for c in doc["cells"]}
    assert set(cells) == {(d, m) for d in ("float32", "bfloat16") for m in ("eager", "cuda_graph", "compile")}
    assert cells[("float32", "cuda_graph")]["skipped"] == "CUDA graphs need a CUDA device"
    assert cells[("float32", "eager")]["psnr_vs_fp32_eager_db"] == float("inf")  # the reference itself
    assert cells[("float32", "compile")]["psnr_vs_fp32_eager_db"] >= 60, cells  # the compiled graph computes the same model
    assert 25 <= cells[("bfloat16", "eager")]["psnr_vs_fp32_eager_db"] < 80, cells  # bf16 rounds, a little
    summary = doc["summary"]["default 64"]
    assert summary["fp32_eager_ms_per_tile"] > 0 and set(summary["speedup_vs_fp32_eager"]) == {
        f"{d} {m}" for d in ("float32", "bfloat16") for m in ("eager", "compile")}
    rendered = "\n".join(report._gpu_tiles(doc, out))  # what BENCHMARKS.md shows
    assert "| bfloat16 | compile | torch |" in rendered and "Not measured: 2 x CUDA graphs need a CUDA device." in rendered, rendered
    assert doc["compile_backend"] == "aot_eager"


def test_bf16_runs_the_kernels_nowhere_and_cuda_graphs_capture_what_runs():
    """The kernels take fp32/fp16: a bf16 ``triton`` cell is skipped with that reason, and a bf16
    CUDA graph captures PyTorch's attention, fp16/fp32 graphs the kernels."""
    assert bench_gpu.why_not("triton", torch.device("cuda"), torch.bfloat16) == "the Triton kernels take float16 and float32"
    assert bench_gpu.attention("cuda_graph", torch.bfloat16) == "torch" and bench_gpu.attention("cuda_graph", torch.float16) == "triton"
    assert bench_gpu.attention("compile", torch.float16) == "torch" and bench_gpu.attention("triton", torch.float32) == "triton"


def test_results_go_to_a_device_named_file_in_a_folder_or_to_the_path_given(tmp_path):
    assert recording.results_file(tmp_path, "NVIDIA H200", "gpu") == tmp_path / "nvidia-h200-gpu.json"
    given = tmp_path / "new" / "run.json"
    assert recording.results_file(given, "NVIDIA H200", "kernels") == given and given.parent.is_dir()
