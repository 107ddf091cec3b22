"""`swintormer export --check`: Polygraphy's comparator and linter on our graphs (ONNX Runtime vs PyTorch)."""

from __future__ import annotations

import copy

import pytest
import torch

pytest.importorskip("polygraphy", reason="polygraphy is not installed (pip install 'swintormer[export]')")

from swintormer.cli import main
from swintormer.export.build import export_components
from swintormer.export.polygraphy_check import check_graph
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
