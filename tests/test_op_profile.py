"""Kernel times from ONNX Runtime's profiler: only the timed calls, summed by op type, per call."""

from __future__ import annotations

import json

import pytest
import torch

from swintormer.backends.op_profile import COMPUTE_OPS, profile_graph, summarise, tally
from swintormer.errors import SwintormerError
from swintormer.export.build import export_components
from swintormer.export.specs import Precision, component_specs
from swintormer.model import DeblurModel

from test_cli import assert_one_line_error, run_cli


def _run(ts: int, dur: int) -> dict:
    return {"cat": "Session", "name": "model_run", "ts": ts, "dur": dur}


def _kernel(name: str, op: str, ts: int, dur: int) -> dict:
    return {"cat": "Node", "name": f"{name}_kernel_time", "ts": ts, "dur": dur, "args": {"op_name": op}}


def test_warm_up_runs_and_fences_are_left_out():
    events = [_run(0, 100), _kernel("conv_a", "Conv", 10, 50), _kernel("t", "Transpose", 70, 20),  # warm-up
              _run(200, 100), _kernel("conv_a", "Conv", 210, 30), _kernel("t", "Transpose", 250, 10),
              {"cat": "Node", "name": "t_fence_before", "ts": 249, "dur": 1, "args": {"op_name": "Transpose"}},
              _run(400, 100), _kernel("conv_a", "Conv", 410, 30), _kernel("t", "Transpose", 450, 10)]
    prof = summarise(events, last_runs=2, graph="g.onnx", batch=4, calls=2)
    assert prof.total_ms == pytest.approx(0.040)  # (30 + 10) us a call
    assert [(t.name, t.kernels) for t in prof.by_type] == [("Conv", 1), ("Transpose", 1)]
    assert prof.share_of() == pytest.approx(0.75) and prof.ceiling() == pytest.approx(4.0)
    assert prof.by_node[0].name == "conv_a" and prof.by_node[0].op_type == "Conv"
    with pytest.raises(SwintormerError, match="has 3 runs; 4 were asked for"):
        summarise(events, last_runs=4, graph="g.onnx")


def test_an_op_types_kernel_is_the_one_that_took_most_of_its_time():
    prof = tally([("a", "Conv", "jit_f32", 10.0), ("b", "Conv", "brgconv_bf16", 30.0), ("c", "Reorder", "ref", 10.0)],
                 calls=2, runtime="openvino", batch=4, streams=2)
    conv = prof.by_type[0]
    assert (conv.name, conv.exec_type, conv.kernels, conv.ms) == ("Conv", "brgconv_bf16", 1.0, pytest.approx(0.020))
    assert [n.name for n in prof.by_node] == ["b", "a", "c"] and prof.share_of() == pytest.approx(0.8)
    with pytest.raises(SwintormerError, match="no kernel times"):
        tally([], calls=1)


@pytest.fixture(scope="module")
def tiny_graph():
    torch.manual_seed(0)
    model = DeblurModel.build("restormer-tiny")
    spec = component_specs(model, 64, 4)["restorer"]
    return export_components(model, {"restorer": spec}, Precision.FP32)["restorer"].path, spec


def test_a_real_profile_counts_each_run_of_a_call_once(tiny_graph):
    """A call of 4 tiles is two CPU runs of 2: twice the kernels of a call of 2, whatever the call counts."""
    path, spec = tiny_graph
    two = profile_graph(path, spec.sample_inputs(2), calls=2, threads=1)
    four = profile_graph(path, spec.sample_inputs(4), calls=3, threads=1)
    assert {t.name: 2 * t.kernels for t in two.by_type} == {t.name: t.kernels for t in four.by_type}
    assert "Conv" in {t.name for t in four.by_type} and set(COMPUTE_OPS) & {t.name for t in four.by_type}
    assert sum(t.share for t in four.by_type) == pytest.approx(1.0)
    assert sum(t.ms for t in four.by_type) == pytest.approx(four.total_ms)
    assert 0 < four.share_of() < 1 and four.ceiling() > 1


def test_profile_cli_reports_op_times(capsys, tiny_graph):
    code, out, _ = run_cli(capsys, "profile", "--runtime", "onnxruntime", "--model", "restormer-tiny", "--size", "64",
                           "--batch", "4", "--calls", "1", "--threads", "1", "--top", "3", "--json")
    assert code == 0
    report = json.loads(out)
    restorer = report["components"]["restorer"]
    assert report["weights"] == "seeded random weights" and restorer["batch"] == 4 and restorer["calls"] == 1
    assert restorer["by_type"][0]["ms"] >= restorer["by_type"][-1]["ms"] and len(restorer["slowest_nodes"]) == 3
    assert restorer["compute_ceiling"] == pytest.approx(1 / (1 - restorer["compute_share"]))
    code, out, _ = run_cli(capsys, "profile", "--runtime", "onnxruntime", "--model", "restormer-tiny", "--size", "64",
                           "--calls", "1", "--threads", "1")
    assert code == 0 and "convolutions and matmuls:" in out and "slowest nodes:" in out and "ms an item" in out


def test_profile_cli_refuses_bad_counts(capsys):
    code, _, err = run_cli(capsys, "profile", "--runtime", "onnxruntime", "--calls", "0")
    assert_one_line_error(code, err, "--calls and --top must be >= 1")
    code, _, err = run_cli(capsys, "profile", "--precision", "int8")
    assert_one_line_error(code, err, "--precision int8 times graphs: add --runtime")


def test_an_openvino_profile_counts_the_streams_of_the_last_calls_only(tiny_graph):
    pytest.importorskip("openvino")
    path, spec = tiny_graph
    once = profile_graph(path, spec.sample_inputs(4), calls=1, threads=2, runtime="openvino")
    thrice = profile_graph(path, spec.sample_inputs(4), calls=3, threads=2, runtime="openvino")
    assert once.streams == thrice.streams == 2 and once.runtime == "openvino"
    assert {t.name: t.kernels for t in once.by_type} == {t.name: t.kernels for t in thrice.by_type}
    conv = next(t for t in thrice.by_type if t.name == "Convolution")
    assert "f32" in conv.exec_type and conv.kernels % 2 == 0, conv  # every stream ran every convolution, in fp32
    assert sum(t.share for t in thrice.by_type) == pytest.approx(1.0) and 0 < thrice.share_of() < 1


def test_openvino_bf16_runs_its_convolutions_in_bf16(tiny_graph):
    pytest.importorskip("openvino")
    from swintormer.backends.openvino import bf16_units

    if not bf16_units():
        pytest.skip("this CPU has no bf16 units")
    path, spec = tiny_graph
    prof = profile_graph(path, spec.sample_inputs(4), calls=1, threads=2, runtime="openvino", precision="bf16")
    kernels = {t.exec_type for t in prof.by_type if t.name in ("Convolution", "GroupConvolution", "MatMul")}
    assert kernels and all("bf16" in k for k in kernels), kernels


def test_profile_cli_with_openvino_names_the_kernels(capsys, tiny_graph):
    pytest.importorskip("openvino")
    code, out, _ = run_cli(capsys, "profile", "--runtime", "openvino", "--model", "restormer-tiny", "--size", "64",
                           "--batch", "4", "--calls", "1", "--threads", "2")
    assert code == 0 and "summed over 2 streams running at once" in out and "  kernel" in out and "_f32" in out
    code, _, err = run_cli(capsys, "profile", "--runtime", "onnxruntime", "--precision", "bf16")
    assert_one_line_error(code, err, "--precision bf16 is OpenVINO's", "--runtime openvino")
