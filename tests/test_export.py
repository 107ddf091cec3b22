"""Export: specs, ONNX graphs verified against PyTorch, the TensorRT-parser check, the cache, the command."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
import torch

from swintormer.backends import BackendRequest
from swintormer.backends.onnxruntime import ort_tile_fn
from swintormer.backends.torch import tile_fn
from swintormer.checkpoint import save_checkpoint
from swintormer.errors import SwintormerError
from swintormer.export.build import export_components
from swintormer.export.specs import Precision, component_specs
from swintormer.export.trt_compat import check_tensorrt_compat, supported_ops
from swintormer.metrics import psnr
from swintormer.model import DeblurModel
from swintormer.tiling import TilingConfig, tiled_apply

from photos import photo
from serving_helpers import prior_checkpoint

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def prior_model(tmp_path_factory):
    return DeblurModel.load(prior_checkpoint(tmp_path_factory.mktemp("prior")))


def test_specs_name_every_tensor_and_fix_the_tile():
    specs = component_specs(DeblurModel.build("swintormer-tiny-prior"), 256, 8)
    assert set(specs) == {"restorer", "encoder", "denoiser"}
    r = specs["restorer"]
    assert [t.name for t in r.inputs] == ["image", "prior"] and r.outputs[0].name == "restored"
    assert r.profile()["image"] == ((1, 3, 256, 256), (4, 3, 256, 256), (8, 3, 256, 256))
    assert r.profile()["prior"][2] == (8, 3, 64, 64)
    d = specs["denoiser"]
    assert [(t.name, t.dtype) for t in d.inputs] == [("sample", "float32"), ("timestep", "int64")]
    assert r.fingerprint() != component_specs(DeblurModel.build("swintormer-tiny-prior"), 512, 8)["restorer"].fingerprint()
    with pytest.raises(SwintormerError, match="multiple of 256"):
        component_specs(DeblurModel.build("swintormer-single"), 300)


@pytest.mark.slow
@pytest.mark.parametrize("precision", [Precision.FP32, Precision.FP16])
def test_full_pipeline_parity_onnxruntime_vs_pytorch(prior_model, precision):
    """ORT vs PyTorch through the tiled pipeline on a real photo, at two batch sizes."""
    specs = component_specs(prior_model, 256, 4)
    files = export_components(prior_model, specs, precision)
    image = photo("rocket")[:300, :470]
    want = tiled_apply(tile_fn(prior_model, BackendRequest(device="cpu")), image, 3, TilingConfig(batch=1))
    # Measured 132.3 dB (fp32) and 69.0 dB (fp16: fp16 weights and activations, norms and
    # softmaxes in fp32) for this tiny random-weight prior model; the bars sit a few dB under.
    floor = 127.0 if precision == Precision.FP32 else 65.0
    for batch in (1, 3):
        fn = ort_tile_fn({k: a.path for k, a in files.items()}, prior_model.prior, prior_model.scheduler)
        got = tiled_apply(fn, image, 3, TilingConfig(batch=batch))
        assert psnr(got, want) >= floor, (precision, batch, psnr(got, want))
    for component, art in files.items():
        graph = onnx.load(str(art.path))
        assert check_tensorrt_compat(graph, specs[component]) == []
        assert [i.name for i in graph.graph.input] == [t.name for t in specs[component].inputs]
        assert graph.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


@pytest.mark.slow
def test_cache_hits_and_invalidation(tmp_path):
    torch.manual_seed(3)
    model = DeblurModel.build("restormer-tiny")
    specs = component_specs(model, 64, 2)
    first = export_components(model, specs, Precision.FP32)["restorer"]
    again = export_components(model, specs, Precision.FP32)["restorer"]
    assert again.cached and again.path == first.path
    with torch.no_grad():
        model.restorer.output.weight.add_(0.01)
    changed = export_components(model, specs, Precision.FP32)["restorer"]
    assert not changed.cached and changed.path != first.path


def test_processes_sharing_the_cache_export_once(tmp_path):
    """Two processes that want the same graph at once: one exports it, the other waits for it and
    reads it from the cache (before the lock both exported, into one temporary file)."""
    from textwrap import dedent

    probe = dedent(
        """
        import logging, sys, torch
        from swintormer.export.build import export_components
        from swintormer.export.specs import Precision, component_specs
        from swintormer.model import DeblurModel
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
        torch.manual_seed(5)
        model = DeblurModel.build("restormer-tiny")
        print("cached" if export_components(model, component_specs(model, 64, 2), Precision.FP32)["restorer"].cached else "made")
        """
    )
    env = {**os.environ, "SWINTORMER_CACHE": str(tmp_path / "cache")}
    runs = [subprocess.Popen([sys.executable, "-c", probe], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for _ in range(2)]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs
    assert sorted(out.strip().splitlines()[-1] for out in outputs) == ["cached", "made"], outputs
    assert sum("waiting for another process making" in out for out in outputs) == 1, outputs
    graphs = list((tmp_path / "cache" / "onnx").glob("*.onnx"))
    assert len(graphs) == 1 and onnx.load(str(graphs[0])).graph.node


@pytest.mark.slow
def test_a_batch_of_one_exports(tmp_path):
    """``--batch 1``: a dynamic axis whose range is one size (torch.export refuses min == max)."""
    torch.manual_seed(4)
    model = DeblurModel.build("restormer-tiny")
    specs = component_specs(model, 64, 1)
    path = export_components(model, specs, Precision.FP32)["restorer"].path
    fn = ort_tile_fn({"restorer": path}, None, None)
    tiles = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(fn(tiles, [(0, 0)]), model.restorer(tiles), atol=1e-5)


def test_cache_key_follows_the_graph_code(tmp_path, monkeypatch):
    """Editing a layer's source changes every artifact key (an upgrade must not reuse stale graphs)."""
    import swintormer.export.cache as cache

    before = cache.artifact_key("restorer", "fp32")
    layers = Path(importlib.util.find_spec("swintormer.layers").submodule_search_locations[0])
    copy = tmp_path / "layers"
    shutil.copytree(layers, copy)
    (copy / "attention.py").write_text((copy / "attention.py").read_text() + "\n# an edit\n")
    real = importlib.util.find_spec

    def find_spec(name, *args):  # the edited copy in place of the package (the real spec is shared: not mutated)
        return SimpleNamespace(submodule_search_locations=[str(copy)]) if name == "swintormer.layers" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    cache.graph_code_digest.cache_clear()
    try:
        assert cache.artifact_key("restorer", "fp32") != before
    finally:
        monkeypatch.undo()
        cache.graph_code_digest.cache_clear()
    assert cache.artifact_key("restorer", "fp32") == before


def test_tensorrt_check_catches_unsupported_graphs():
    from onnx import TensorProto, helper

    assert "LayerNormalization" in supported_ops() and "Unique" not in supported_ops()
    spec = component_specs(DeblurModel.build("restormer-tiny"), 64)["restorer"]
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, "h", 64])
    y = helper.make_tensor_value_info("restored", TensorProto.FLOAT, ["batch", 3, 64, 64])
    nodes = [helper.make_node("Unique", ["image"], ["u"]), helper.make_node("Identity", ["image"], ["restored"])]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 18)])
    problems = check_tensorrt_compat(model, spec)
    assert any("Unique" in p for p in problems) and any("axis 2 is dynamic" in p for p in problems)


def _build_engines(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    return subprocess.run([sys.executable, str(ROOT / "export" / "build_engines.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_build_engines_rejects_bad_input_before_long_work(tmp_path):
    other = tmp_path / "other.safetensors"
    save_checkpoint(other, {"restorer": DeblurModel.build("restormer-tiny").restorer}, {"model": "restormer-tiny"})
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    cases = [
        (["--checkpoint", str(tmp_path / "missing.safetensors")], "checkpoint not found"),
        (["--checkpoint", str(other), "--model", "swintormer-tiny"], "different model"),
        (["--tile", "300"], "multiple of 128"),
        (["--prior-steps", "5"], "no diffusion prior"),
    ]
    if os.geteuid() != 0:  # root writes anywhere
        cases.append((["--out", str(locked / "repo")], "cannot write"))
    else:
        cases.append((["--out", "/proc/swintormer-repo"], "cannot write"))
    for args, needle in cases:
        out = [] if "--out" in args else ["--out", str(tmp_path / "repo")]
        res = _build_engines(*args, *out, cwd=tmp_path)
        assert res.returncode == 2, (args, res.stderr[-2000:])
        assert needle in res.stderr and "Traceback" not in res.stderr, (args, res.stderr[-2000:])
    assert not (tmp_path / "repo").exists() or not any((tmp_path / "repo").iterdir())


@pytest.mark.slow
def test_cpu_sessions_run_a_large_batch_in_parts(tmp_path):
    """On the CPU provider a call of 5 tiles runs as 2 + 2 + 1 (CPU_RUN_BATCH, which bounds the
    activation memory) and returns what one run of 5 returns, in order."""
    from swintormer.backends.onnxruntime import CPU_RUN_BATCH, OrtSession

    torch.manual_seed(5)
    model = DeblurModel.build("restormer-tiny")
    path = export_components(model, component_specs(model, 64, 8), Precision.FP32)["restorer"].path
    parts, whole = OrtSession(path), OrtSession(path, run_batch=0)
    assert parts.run_batch == CPU_RUN_BATCH == 2
    sizes = []
    run = parts.session.run
    parts.session.run = lambda names, feed: sizes.append(len(feed["image"])) or run(names, feed)
    x = np.random.default_rng(1).random((5, 3, 64, 64), dtype=np.float32)
    got = parts(image=x)
    assert sizes == [2, 2, 1]
    assert got.shape == (5, 3, 64, 64) and np.abs(got - whole(image=x)).max() < 1e-6


@pytest.mark.slow
def test_dynamic_height_width_restorer(tmp_path):
    """Whole-image graphs: one restorer graph for any multiple of its size multiple in range."""
    torch.manual_seed(0)
    model = DeblurModel.build("restormer-tiny")
    specs = component_specs(model, 64, 2, dynamic_hw=True)
    assert specs["restorer"].profile()["image"][2] == (2, 3, 256, 256)
    path = export_components(model, specs, Precision.FP32)["restorer"].path
    assert check_tensorrt_compat(onnx.load(str(path)), specs["restorer"]) == []
    from swintormer.backends.onnxruntime import OrtSession

    session = OrtSession(path)
    for hw in ((64, 64), (128, 192)):
        x = np.random.default_rng(0).random((1, 3, *hw), dtype=np.float32)
        with torch.no_grad():
            want = model.restorer(torch.from_numpy(x)).numpy()
        assert np.abs(session(image=x) - want).max() < 1e-4


@pytest.mark.slow
def test_swintormer_graph_copies_only_what_it_must():
    """The exported Swintormer graph has no ``Split`` or ``Expand`` (full-size copies runtimes do not
    elide), and every head transpose is a matmul operand (folded into the matmul by ONNX Runtime and
    OpenVINO): heads stay in the windows' channel-major layout, not copied to token-major and back
    (that cost the default model 5-10% a tile on a CPU); windows are cut channels-last."""
    torch.manual_seed(5)
    model = DeblurModel.build("swintormer-tiny")
    path = export_components(model, component_specs(model, 128, 2), Precision.FP32)["restorer"].path
    graph = onnx.load(str(path)).graph
    ops = {n.op_type for n in graph.node}
    assert "MatMul" in ops and not ops & {"Split", "Expand"}, sorted(ops)
    consumers: dict[str, list[str]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.op_type)
    swaps = [n for n in graph.node if n.op_type == "Transpose" and list(n.attribute[0].ints) == [0, 1, 3, 2]]
    assert swaps, "no head transposes found: the test no longer sees the attention"
    copied = [n.name for n in swaps if set(consumers.get(n.output[0], [])) != {"MatMul"}]
    assert not copied, f"head transposes that are copies, not matmul operands: {copied}"
    # windows are cut and put back channels-last (runs of M*C values), not channel-major (runs of M)
    perms = {tuple(n.attribute[0].ints) for n in graph.node if n.op_type == "Transpose"}
    assert (0, 1, 3, 2, 4, 5) in perms and not perms & {(0, 2, 4, 1, 3, 5), (0, 3, 1, 4, 2, 5)}, perms


def test_rank_zero_constants_take_the_other_operands_rank():
    """``rank_match_scalars``: a rank-0 constant of an elementwise op becomes ``[1] * rank`` (ONNX
    Runtime's slow broadcast path otherwise), one copy per use, the outputs stay the same, a
    scalar-by-scalar op and a non-elementwise op are left alone, the unused original is dropped."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from swintormer.export.onnx_export import rank_match_scalars

    one = numpy_helper.from_array(np.array(1.0, np.float32), "one")
    axes = numpy_helper.from_array(np.array([-1], np.int64), "axes")
    nodes = [helper.make_node("ReduceSum", ["x", "axes"], ["s"], "sum", keepdims=1),
             helper.make_node("Add", ["s", "one"], ["d"], "add"),  # [N, 1, 64, 1] + scalar: rewritten
             helper.make_node("Div", ["one", "d"], ["y"], "div"),  # scalar first: rewritten
             helper.make_node("ReduceMax", ["x"], ["m"], "max", keepdims=0),
             helper.make_node("Mul", ["m", "one"], ["z"], "mul")]  # scalar by scalar: left as it is
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, 64, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("z", TensorProto.FLOAT, None)], [one, axes])
    model = onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
    x = np.random.default_rng(0).random((3, 1, 64, 64), dtype=np.float32)
    before = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})
    assert rank_match_scalars(model) == 2
    onnx.checker.check_model(model, full_check=True)
    shapes = {t.name: list(t.dims) for t in model.graph.initializer}
    assert shapes == {"one": [], "axes": [1], "one_rank4_0": [1, 1, 1, 1], "one_rank4_1": [1, 1, 1, 1]}, shapes
    assert [n.input[1] for n in model.graph.node if n.op_type == "Mul"] == ["one"]
    after = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    assert rank_match_scalars(model) == 0  # idempotent
    # a float16 converter that keeps Div in fp32 still makes a loadable graph (no constant shared
    # between an fp32 and an fp16 op)
    float16 = pytest.importorskip("onnxconverter_common.float16")
    half = float16.convert_float_to_float16(model, keep_io_types=True, op_block_list=["Div"])
    ort.InferenceSession(half.SerializeToString())
