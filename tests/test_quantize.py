"""INT8 and FP8 QDQ restorer graphs: the kind TensorRT consumes, calibrated on training photographs, close to fp32."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from swintormer.backends.onnxruntime import OrtSession
from swintormer.data.photos import split_photos
from swintormer.errors import SwintormerError
from swintormer.export.build import export_components
from swintormer.export.quantize import FP8_OPSET, FP32_MODULES, QUANTIZED_OPS, calibration_photos, fp32_convolutions
from swintormer.export.specs import Precision, component_specs
from swintormer.metrics import psnr
from swintormer.model import DeblurModel

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def graphs():
    model = DeblurModel.load()
    specs = component_specs(model, 128, 2)
    return {p: export_components(model, specs, p)["restorer"].path for p in (Precision.FP32, Precision.INT8, Precision.FP8)}


def test_calibration_never_sees_the_test_photographs():
    calib = {p.name for p in calibration_photos()}
    assert calib and not calib & {p.name for p in split_photos("test")}


@pytest.mark.parametrize(("precision", "element"), [(Precision.INT8, TensorProto.INT8), (Precision.FP8, TensorProto.FLOAT8E4M3FN)])
def test_the_graph_is_qdq_with_symmetric_per_channel_weights(graphs, precision, element):
    model = onnx.load(str(graphs[precision]))
    g = model.graph
    ops = [n.op_type for n in g.node]
    assert ops.count("QuantizeLinear") > 10 and ops.count("DequantizeLinear") > 10
    opset = next(o.version for o in model.opset_import if o.domain == "")
    assert opset >= (FP8_OPSET if precision == Precision.FP8 else 13), opset  # float8 Q/DQ exist from opset 19
    inits = {i.name: i for i in g.initializer}
    producers = {o: n for n in g.node for o in n.output}
    kept = set(fp32_convolutions(model))  # the stem, skip and output convolutions stay fp32
    assert len(kept) >= 3
    for conv in (n for n in g.node if n.name in kept):
        weight = inits[conv.input[1]]
        assert weight.data_type == TensorProto.FLOAT and any(f".{m}." in f".{weight.name}" for m in FP32_MODULES), conv.name
    convs = [n for n in g.node if n.op_type == "Conv" and n.name not in kept]
    assert len(convs) > 50
    for conv in convs:
        dq = producers[conv.input[1]]  # the weight comes through DequantizeLinear of a quantized initializer
        assert dq.op_type == "DequantizeLinear"
        weight, scale = inits[dq.input[0]], numpy_helper.to_array(inits[dq.input[1]])
        assert weight.data_type == element, (conv.name, weight.data_type)
        zero = inits[dq.input[2]] if len(dq.input) > 2 else None
        assert zero is None or not np.asarray(numpy_helper.to_array(zero), np.float32).any()  # symmetric: zero point 0
        assert scale.size == weight.dims[0]  # per output channel
    # norms and softmax are not quantized: nothing feeds them through a DequantizeLinear of their
    # own. A norm that reads a convolution's input (the stem's and each downsampling's output, which
    # the next Conv reads quantized) shares that Conv's pair: ONNX Runtime's QDQ pass gives a tensor
    # one pair for all its consumers.
    consumers: dict[str, list[str]] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n.op_type)
    for n in g.node:
        if n.op_type in ("Softmax", "LayerNormalization", "ReduceMean", "ReduceL2"):
            for i in n.input:
                if producers.get(i) is not None and producers[i].op_type == "DequantizeLinear":
                    assert set(consumers[i]) & set(QUANTIZED_OPS), (n.name, consumers[i])
    assert set(QUANTIZED_OPS) == {"Conv", "MatMul"}


@pytest.mark.parametrize(("precision", "floor_db"), [(Precision.INT8, 55.0), (Precision.FP8, 50.0)])
def test_quantized_output_stays_close_to_fp32_on_a_test_photograph(graphs, precision, floor_db):
    from swintormer.data.photos import load_photo
    from swintormer.data.synthetic import level_recipe, synthesize_defocus

    photo = load_photo(split_photos("test")[0], max_side=256)
    blurry = synthesize_defocus(photo, level_recipe(4.0), np.random.default_rng(0)).center[:128, :128]
    x = np.ascontiguousarray(np.asarray(blurry, np.float32).transpose(2, 0, 1)[None])
    a = OrtSession(graphs[Precision.FP32])(image=x)
    b = OrtSession(graphs[precision])(image=x)
    # measured 58.9 dB (int8) and 53.7 dB (fp8, 3 mantissa bits) on this tile of the test split (55.9 and
    # 48.3 dB while the stem, skip and output convolutions were quantized too)
    assert psnr(b, a) >= floor_db, psnr(b, a)


@pytest.mark.parametrize("precision", [Precision.INT8, Precision.FP8])
def test_prior_models_are_refused_with_the_reason(precision):
    model = DeblurModel.load(expect="swintormer-tiny-prior")
    with pytest.raises(SwintormerError, match=f"{precision.value} quantizes prior-free restorers only.*use fp16"):
        export_components(model, component_specs(model, 128, 2), precision)
