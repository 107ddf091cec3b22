"""Inference backends behind the shared tiler: PyTorch (in swintormer.pipeline) and ONNX Runtime."""
