"""ONNX and TensorRT export of the restorer, the prior's encoder and the denoiser.

Imported as ``swintormer.export``; ``python export/build_engines.py`` is the command. One
:class:`~swintormer.export.specs.ExportSpec` per component names every tensor (the contract
with the Triton configs, which are generated from the same specs), and one generic function
each exports, verifies and builds. ONNX and TensorRT are optional dependencies imported inside
the functions that need them.
"""
