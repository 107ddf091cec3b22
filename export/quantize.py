"""INT8 and FP8 restorer graphs: ONNX Runtime's static quantization, QDQ, calibrated on training photographs.

The quantizer is ONNX Runtime's (``onnxruntime.quantization.quantize_static``), already a
dependency: NVIDIA Model Optimizer's ONNX extra pins ``onnxruntime-gpu``, CuPy and an older
``onnx``, which do not install beside this CPU stack. The graph is the kind TensorRT consumes
(explicit quantization): QuantizeLinear/DequantizeLinear pairs, int8 weights symmetric and per
output channel, int8 activations symmetric (zero point 0), on Conv and MatMul only, so norms,
softmax and the attention's elementwise work stay in fp32, and so do the convolutions at the two
ends of the network (``FP32_MODULES``: the stem that reads the image, the skip and output
convolutions that write the residual the image gets), as TensorRT deployments keep their first
and last layers. FP8 is the same graph with float8 e4m3 (``FLOAT8E4M3FN``) in place of int8:
opset 19 (the fp32 export, opset 18, is converted by ONNX's own version converter first), scales
from ONNX Runtime's ``Distribution`` calibration, the only one its quantizer accepts for float
types. TensorRT runs it on FP8 GPUs (Hopper and later); ONNX Runtime's CPU provider runs it too
(dequantizing to fp32), so parity is measured here and speed only on such a GPU.

Calibration uses blurred tiles of the *training* photographs (``swintormer.data.photos``,
never the test split), defocused by the training recipe with a fixed seed: the inputs the
network meets in deployment. Only prior-free restorers are quantized (a prior model's restorer
needs prior latents to calibrate, which this does not sample).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
from pathlib import Path

import numpy as np

from swintormer.errors import SwintormerError
from swintormer.export.specs import ExportSpec, Precision

__all__ = ["CALIBRATION_TILES", "FP32_MODULES", "FP8_OPSET", "QUANTIZED_OPS", "calibration_photos", "calibration_tiles",
           "fp32_convolutions", "quantize_restorer"]

log = logging.getLogger(__name__)

CALIBRATION_TILES = 32
QUANTIZED_OPS = ("Conv", "MatMul")
#: QuantizeLinear/DequantizeLinear take float8 from opset 19
FP8_OPSET = 19
#: Restorer modules whose convolutions stay fp32 (state-dict names, which the export keeps in its
#: initializer names). Measured on the bundled model, the sample and 5 synthetic test photographs
#: (2026-12-03, Xeon): against the sharp targets fp8 lost at most 0.084 dB with them fp32 and
#: 0.319 dB without (int8: 0.027 and 0.094); against fp32 fp8 went from 41.0-56.6 to 43.7-57.7 dB
#: and int8 from 46.0-59.8 to 53.5-62.2 dB.
FP32_MODULES = ("patch_embed", "skip_conv", "output")
#: ops a weight may pass through between its initializer and the Conv that reads it
_WEIGHT_PATH_OPS = ("Slice", "Identity", "Cast", "Reshape")


def calibration_photos() -> list:
    """The photographs calibration draws from: the training split, never the test split."""
    from swintormer.data.photos import split_photos

    return split_photos("train")


def calibration_tiles(spec: ExportSpec, count: int = CALIBRATION_TILES, seed: int = 7) -> np.ndarray:
    """``[count, C, t, t]`` float32 in ``[0, 1]``: defocused tiles of the training photographs."""
    from swintormer.data.sources import SyntheticPairs
    from swintormer.data.synthetic import TRAIN_RECIPE

    image = next(t for t in spec.inputs if t.name == "image")
    channels, tile = int(image.shape[1]), int(image.shape[2])
    recipe = dataclasses.replace(TRAIN_RECIPE, dual_pixel=channels == 6)
    pairs = SyntheticPairs(calibration_photos(), recipe, crop=tile, seed=seed, augment=False)
    tiles = [pairs.sample(i).input for i in range(count)]
    out = np.stack([t.transpose(2, 0, 1) for t in tiles]).astype(np.float32)
    return out / 255.0 if out.max() > 1.5 else out


def fp32_convolutions(model) -> list[str]:
    """Names of the Conv nodes of ``model`` (an ``onnx.ModelProto``) whose weights belong to FP32_MODULES."""
    initializers = {i.name for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    names = []
    for node in model.graph.node:
        if node.op_type != "Conv" or len(node.input) < 2:
            continue
        weight = node.input[1]
        while weight not in initializers and weight in producers and producers[weight].op_type in _WEIGHT_PATH_OPS:
            weight = producers[weight].input[0]
        if weight in initializers and any(f".{m}." in f".{weight}" for m in FP32_MODULES):
            names.append(node.name)
    return names


def _settings(precision: Precision) -> tuple[dict, int | None]:
    """quantize_static's type and calibration arguments for ``precision``, and the opset it needs (or None)."""
    from onnxruntime.quantization import CalibrationMethod, QuantType

    if precision == Precision.INT8:
        return {"activation_type": QuantType.QInt8, "weight_type": QuantType.QInt8,
                "calibrate_method": CalibrationMethod.MinMax}, None
    if precision == Precision.FP8:
        return {"activation_type": QuantType.QFLOAT8E4M3FN, "weight_type": QuantType.QFLOAT8E4M3FN,
                "calibrate_method": CalibrationMethod.Distribution}, FP8_OPSET
    raise SwintormerError(f"precision {precision.value} is not a quantized precision; choose int8 or fp8")


def _at_opset(fp32_path: Path, out_path: Path, opset: int | None) -> Path:
    """``fp32_path``, or a copy at ``out_path`` converted to ``opset`` by ONNX's version converter."""
    import onnx

    model = onnx.load(str(fp32_path))
    current = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset is None or current >= opset:
        return Path(fp32_path)
    onnx.save(onnx.version_converter.convert_version(model, opset), str(out_path))
    return out_path


def quantize_restorer(fp32_path: Path, out_path: Path, spec: ExportSpec, tiles: np.ndarray | None = None,
                      precision: Precision = Precision.INT8) -> Path:
    """Write the ``precision`` (int8 or fp8) QDQ graph of the fp32 restorer graph at ``fp32_path`` to ``out_path``."""
    if {t.name for t in spec.inputs} != {"image"}:
        raise SwintormerError(f"--precision {precision.value} quantizes prior-free restorers only (a prior model's "
                              "restorer needs prior latents to calibrate); use fp16 for prior models")
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        """The calibration tiles, a few at a time."""

        def __init__(self, tiles: np.ndarray, batch: int) -> None:
            self._feeds = iter([{"image": tiles[i : i + batch]} for i in range(0, len(tiles), batch)])

        def get_next(self):
            return next(self._feeds, None)

    settings, opset = _settings(precision)
    tiles = calibration_tiles(spec) if tiles is None else tiles
    reader = Reader(tiles, min(spec.max_batch, 4))
    out_path = Path(out_path)
    converted = out_path.with_suffix(f".opset{opset}.onnx")
    pre = out_path.with_suffix(".pre.onnx")
    tmp = out_path.with_suffix(".tmp.onnx")
    try:
        source = _at_opset(fp32_path, converted, opset)
        # ONNX Runtime's symbolic shape inference fails on the window partition's Expand; ONNX's own runs
        quant_pre_process(str(source), str(pre), skip_symbolic_shape=True)
        keep = fp32_convolutions(onnx.load(str(pre)))
        chatter = io.StringIO()  # the Distribution calibrator prints its progress; keep it for --verbose
        with contextlib.redirect_stdout(chatter):
            quantize_static(
                str(pre), str(tmp), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                op_types_to_quantize=list(QUANTIZED_OPS), nodes_to_exclude=keep, **settings,
                # Conv/MatMul outputs stay float: the channel norms read convolution outputs directly
                extra_options={"WeightSymmetric": True, "ActivationSymmetric": True,
                               "OpTypesToExcludeOutputQuantization": list(QUANTIZED_OPS)},
            )
        log.debug("quantize_static: %s", chatter.getvalue().strip())
        tmp.replace(out_path)
    finally:
        for path in (converted, pre, tmp):
            path.unlink(missing_ok=True)
    log.info("  %-9s %s QDQ graph (%s, %d convolutions kept fp32, calibrated on %d training tiles)", spec.component,
             precision.value, "+".join(QUANTIZED_OPS), len(keep), len(tiles))
    return out_path
