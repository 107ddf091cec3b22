"""`swintormer export --check`: Polygraphy's comparator and linter on our graphs (ONNX Runtime vs PyTorch)."""

from __future__ import annotations

import copy

import numpy as np
import onnx
from onnx import numpy_helper

import pytest
import torch

pytest.importorskip("polygraphy", reason="polygraphy is not installed (pip install 'swintormer[export]')")

from swintormer.cli import main
from swintormer.export.build import export_components
from swintormer.export.polygraphy_check import check_graph, first_divergence
from swintormer.export.specs import Precision, component_specs
from swintormer.model import DeblurModel

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exported():
    model = DeblurModel.load()
    specs = component_specs(model, 128, 2)
    return model, specs, export_components(model, specs, Precision.FP32)


def test_the_exported_graph_matches_its_module_and_lints_clean(exported):
    model, specs, graphs = exported
    report = check_graph(specs["restorer"], model.components()["restorer"], graphs["restorer"].path, Precision.FP32)
    assert report.ok and report.runners == ("onnxruntime", "pytorch"), report.line()
    assert report.max_abs_error < 1e-5 and "PASSED" in report.line() and "lint clean" in report.line()


def test_a_graph_that_is_not_its_module_fails(exported):
    model, specs, graphs = exported
    other = copy.deepcopy(model.components()["restorer"])
    with torch.no_grad():
        next(p for p in other.parameters() if p.ndim == 4).add_(0.05)  # one conv's weights moved
    report = check_graph(specs["restorer"], other, graphs["restorer"].path, Precision.FP32, lint=False)
    assert not report.passed and report.max_abs_error > 1e-4 and "FAILED" in report.line()


def test_export_check_on_the_command_line(tmp_path, capsys):
    code = main(["export", "--tile", "128", "--stride", "110", "--batch", "2", "--out", str(tmp_path / "repo"), "--check"])
    assert code == 0
    assert "polygraphy onnxruntime vs pytorch: PASSED" in capsys.readouterr().err


def test_the_layer_wise_comparison_names_the_first_layer_that_diverges(exported, tmp_path):
    """Polygraphy's mark-all comparison: one convolution's weights moved in a copy of the graph,
    every tensor before it matches, and that convolution is the one named."""
    _, specs, graphs = exported
    model = onnx.load(str(graphs["restorer"].path))
    inits = {i.name: i for i in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv" and n.input[1] in inits]
    target = convs[len(convs) // 2]  # one in the middle: many tensors come before it
    weight = inits[target.input[1]]
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * 1.5, weight.name))
    moved = tmp_path / "moved.onnx"
    onnx.save(model, str(moved))
    feed = specs["restorer"].sample_inputs(batch=1)
    found = first_divergence(graphs["restorer"].path, moved, feed, Precision.FP16)
    assert found is not None and found.node == target.name and found.op_type == "Conv", found
    assert found.compared > 50 and found.tensor in found.line()
    assert first_divergence(graphs["restorer"].path, graphs["restorer"].path, feed, Precision.FP32) is None
    assert np.isfinite(found.max_abs_error) and found.max_abs_error > 2e-2
