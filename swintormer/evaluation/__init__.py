"""Evaluation: any tile function (PyTorch, ONNX Runtime, a classical filter) on a DPDD-layout split."""

from swintormer.evaluation.evaluate import EvalReport, ImageResult, evaluate_split, load_lpips
from swintormer.evaluation.report import write_report

__all__ = ["EvalReport", "ImageResult", "evaluate_split", "load_lpips", "write_report"]
