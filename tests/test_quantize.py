"""INT8 QDQ restorer graphs: the kind TensorRT consumes, calibrated on training photographs, close to fp32."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from swintormer.backends.onnxruntime import OrtSession
from swintormer.data.photos import split_photos
from swintormer.errors import SwintormerError
from swintormer.export.build import export_components
from swintormer.export.quantize import QUANTIZED_OPS, calibration_photos
from swintormer.export.specs import Precision, component_specs
from swintormer.metrics import psnr
from swintormer.model import DeblurModel

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def graphs():
    model = DeblurModel.load()
    specs = component_specs(model, 128, 2)
    return specs, export_components(model, specs, Precision.FP32), export_components(model, specs, Precision.INT8)


def test_calibration_never_sees_the_test_photographs():
    calib = {p.name for p in calibration_photos()}
    assert calib and not calib & {p.name for p in split_photos("test")}


def test_the_graph_is_qdq_with_symmetric_per_channel_int8_weights(graphs):
    _, _, int8 = graphs
    g = onnx.load(str(int8["restorer"].path)).graph
    ops = [n.op_type for n in g.node]
    assert ops.count("QuantizeLinear") > 10 and ops.count("DequantizeLinear") > 10
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    producers = {o: n for n in g.node for o in n.output}
    convs = [n for n in g.node if n.op_type == "Conv"]
    assert convs
    for conv in convs:
        dq = producers[conv.input[1]]  # the weight comes through DequantizeLinear of an int8 initializer
        assert dq.op_type == "DequantizeLinear"
        weight, scale = inits[dq.input[0]], inits[dq.input[1]]
        zero = inits[dq.input[2]] if len(dq.input) > 2 else np.zeros(1, np.int8)
        assert weight.dtype == np.int8 and not zero.any() and scale.size == weight.shape[0]  # per output channel, zero point 0
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


def test_int8_output_stays_close_to_fp32_on_a_test_photograph(graphs):
    from swintormer.data.photos import load_photo
    from swintormer.data.synthetic import level_recipe, synthesize_defocus

    _, fp32, int8 = graphs
    photo = load_photo(split_photos("test")[0], max_side=256)
    blurry = synthesize_defocus(photo, level_recipe(4.0), np.random.default_rng(0)).center[:128, :128]
    x = np.ascontiguousarray(np.asarray(blurry, np.float32).transpose(2, 0, 1)[None])
    a = OrtSession(fp32["restorer"].path)(image=x)
    b = OrtSession(int8["restorer"].path)(image=x)
    assert psnr(b, a) >= 40.0, psnr(b, a)  # measured 47 dB on tiles of the test split


def test_prior_models_are_refused_with_the_reason():
    model = DeblurModel.load(expect="swintormer-tiny-prior")
    with pytest.raises(SwintormerError, match="int8 quantizes prior-free restorers only.*use fp16"):
        export_components(model, component_specs(model, 128, 2), Precision.INT8)
