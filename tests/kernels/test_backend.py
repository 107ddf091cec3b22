"""The models' attention backends: both give the same output; choosing one fails clearly.

Also the custom ops' registrations (schema, fake kernels) through ``torch.library.opcheck``.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections import Counter

import pytest
import torch
from torch import nn

pytest.importorskip("triton", reason="Triton is not installed: pip install swintormer[kernels]")

from kernel_reference import random_qkv  # noqa: E402

import swintormer.kernels.transposed_attention  # noqa: E402,F401  (registers the ops)
import swintormer.kernels.window_attention  # noqa: E402,F401
import swintormer.kernels.window_channel_attention  # noqa: E402,F401
from swintormer.errors import SwintormerError  # noqa: E402
from swintormer.layers import backend  # noqa: E402
from swintormer.models import set_attention_backend  # noqa: E402
from swintormer.models.restormer import MDTA  # noqa: E402
from swintormer.models.swintormer import SwinChannelAttention  # noqa: E402
from swintormer.registry import build_model  # noqa: E402


@pytest.mark.parametrize(
    "name, shape",
    [
        # every block kind: shifted and not, 1 to 8 heads, d = 8 and 16, 64 windows down to 1
        pytest.param("swintormer-tiny", (1, 3, 256, 256), marks=pytest.mark.slow),
        ("restormer-tiny", (1, 3, 24, 40)),
    ],
)
def test_tiny_models_agree_across_backends(name, shape, device, monkeypatch):
    calls = Counter()
    for module, function in [("swintormer", "fused_swin_attention"), ("restormer", "fused_transposed_attention")]:
        fused_op = getattr(backend, function)
        monkeypatch.setattr(f"swintormer.models.{module}.{function}", lambda *a, f=fused_op: calls.update([f]) or f(*a))
    torch.manual_seed(0)
    model = build_model(name).eval().to(device)
    x = torch.rand(shape, device=device)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        reference = set_attention_backend(model, "torch")(x)
        assert not calls
        fused = set_attention_backend(model, "triton")(x)
    attention_modules = sum(hasattr(m, "attention_backend") for m in model.modules())
    assert sum(calls.values()) == attention_modules > 0
    torch.testing.assert_close(fused, reference, atol=1e-5, rtol=1e-5)
    assert model.state_dict().keys() == state.keys()
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def _mdta_and_input(device: torch.device) -> tuple[MDTA, torch.Tensor]:
    torch.manual_seed(0)
    return MDTA(32, 2, bias=False).to(device), torch.randn(1, 32, 16, 24, device=device)


def test_auto_runs_torch_on_cpu_and_while_training(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the kernels ran")

    monkeypatch.setattr("swintormer.models.restormer.fused_transposed_attention", fail)
    module, x = _mdta_and_input(torch.device("cpu"))
    assert module.attention_backend == "auto"
    module(x).sum().backward()  # CPU tensors and autograd: both mean torch
    with torch.no_grad():
        module(x)


def test_triton_backend_refuses_autograd_and_bf16(device):
    module, x = _mdta_and_input(device)
    set_attention_backend(module, "triton")
    with pytest.raises(SwintormerError, match="forward-only"):
        module(x)
    with torch.no_grad(), pytest.raises(SwintormerError, match="float16 or float32, not torch.bfloat16"):
        module.to(torch.bfloat16)(x.to(torch.bfloat16))
    module.float()
    with torch.no_grad():
        torch.testing.assert_close(module(x), set_attention_backend(module, "torch")(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "module, op",
    [(lambda: MDTA(32, 2, bias=False), "transposed_attention"),
     (lambda: SwinChannelAttention(32, 2, False, window_size=8, shift_size=4), "window_channel_attention")],
    ids=["mdta", "swin"],
)  # fmt: skip
def test_compiles_to_one_graph_around_the_custom_ops(module, op, device):
    """torch.compile sees each kernel as one op (the mutated output buffer functionalised)."""
    torch.manual_seed(0)
    module, x = module().eval().to(device), torch.randn(1, 32, 16, 24, device=device)
    graphs = []

    def record(gm, example_inputs):
        graphs.append(gm)
        return torch._dynamo.lookup_backend("aot_eager")(gm, example_inputs)

    with torch.no_grad():
        reference = set_attention_backend(module, "torch")(x)
        compiled = torch.compile(set_attention_backend(module, "triton"), backend=record, fullgraph=True)
        torch.testing.assert_close(compiled(x), reference, atol=1e-5, rtol=1e-5)
    assert f"swintormer.{op}" in str(graphs[0].graph)


def test_export_uses_the_torch_path(device):
    module, x = _mdta_and_input(device)
    set_attention_backend(module, "triton")
    program = torch.export.export(module.eval(), (x,))
    targets = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert not any("swintormer" in t for t in targets), targets
    assert any("bmm" in t or "matmul" in t for t in targets), targets


def test_choosing_an_unusable_backend_fails_clearly(monkeypatch):
    model = build_model("restormer-tiny")
    with pytest.raises(SwintormerError, match="unknown attention backend 'cuda'"):
        set_attention_backend(model, "cuda")
    with pytest.raises(SwintormerError, match="no Swintormer/Restormer attention"):
        set_attention_backend(nn.Linear(2, 2), "torch")
    monkeypatch.setattr(backend, "triton_installed", lambda: False)
    with pytest.raises(SwintormerError, match=r"pip install swintormer\[kernels\]"):
        set_attention_backend(model, "triton")
    monkeypatch.undo()
    if not torch.cuda.is_available():
        monkeypatch.delenv("TRITON_INTERPRET")
        with pytest.raises(SwintormerError, match="needs a CUDA GPU"):
            set_attention_backend(model, "triton")
    assert all(m.attention_backend == "auto" for m in model.modules() if isinstance(m, MDTA))


def _opcheck_cases(device: torch.device) -> dict[str, tuple]:
    """Small arguments for each op: ``(op, args)``."""
    m, heads, c = 4, 2, 32
    qkv = random_qkv((4, 3 * c, m, m), torch.float32, device, seed=1)
    logit_scale = torch.full((heads, 1, 1), math.log(10.0), device=device)
    table = torch.rand((2 * m - 1) ** 2, heads, device=device)
    out = torch.zeros(1, c, 2 * m, 2 * m, device=device)
    temperature = torch.rand(heads, 1, 1, device=device) + 0.5
    ops = torch.ops.swintormer
    return {
        "window_attention": (ops.window_attention.default, (qkv, logit_scale, table, out, heads, 2, 0)),
        "window_channel_attention": (ops.window_channel_attention.default, (qkv, out, heads, 2, c // 2)),
        "transposed_attention": (
            ops.transposed_attention.default,
            (random_qkv((1, 3 * c, 8, 12), torch.float32, device, seed=2), temperature, heads),
        ),
    }


@pytest.mark.parametrize("name", ["window_attention", "window_channel_attention", "transposed_attention"])
def test_custom_op_registration(name, device):
    """Schema (what is mutated), fake kernel vs real kernel, and tracing through AOT dispatch."""
    op, args = _opcheck_cases(device)[name]
    torch.library.opcheck(op, args, test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_dynamic"))


def test_importing_the_models_does_not_import_triton():
    code = "import sys, swintormer.models, swintormer.kernels; assert 'triton' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_fake_kernel_gives_output_shape_and_checks_inputs():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        out = torch.ops.swintormer.transposed_attention(torch.empty(2, 96, 24, 40), torch.ones(4, 1, 1), 4)
        assert out.shape == (2, 32, 24, 40)
        with pytest.raises(ValueError, match="windows of 8x8 do not tile"):
            qkv = torch.empty(5, 48, 8, 8)
            torch.ops.swintormer.window_channel_attention(qkv, torch.empty(1, 16, 16, 16), 1, 0, 8)
