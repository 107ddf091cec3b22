"""Which implementation runs the restorers' attention: the PyTorch reference or the Triton kernels.

- ``"torch"``: the plain-PyTorch reference of :mod:`swintormer.layers.attention`; the only one
  exporting (ONNX, ``torch.export``, tracing) ever uses, whatever is asked for.
- ``"triton"``: the fused kernels of :mod:`swintormer.kernels` (forward only, fp16/fp32). Needs
  Triton and a CUDA device, or ``TRITON_INTERPRET=1`` for CPU tensors (slow; for tests).
- ``"auto"`` (the default): ``"triton"`` for CUDA tensors when Triton is installed and autograd is
  not recording through the attention, ``"torch"`` otherwise (CPU, training, export).

The attention modules hold the choice in a plain attribute (``attention_backend``), not in the
state dict; :func:`swintormer.models.set_attention_backend` sets it on a whole model.
"""

from __future__ import annotations

import functools
import importlib.util

import torch

from swintormer.errors import SwintormerError
from swintormer.kernels import SUPPORTED_DTYPES, is_interpreting

__all__ = ["BACKENDS", "check_backend", "exporting", "fused_swin_attention", "fused_transposed_attention", "use_kernels"]

BACKENDS = ("auto", "torch", "triton")


@functools.lru_cache(maxsize=1)
def triton_installed() -> bool:
    """Whether the ``triton`` package can be imported (checked without importing it)."""
    return importlib.util.find_spec("triton") is not None


def exporting() -> bool:
    """Whether the module runs under an exporter or tracer (a graph is being written, not computed)."""
    return torch.compiler.is_exporting() or torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()



def check_backend(backend: str) -> None:
    """Raise :class:`SwintormerError` unless ``backend`` is known and can run here."""
    if backend not in BACKENDS:
        raise SwintormerError(f"unknown attention backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend != "triton":
        return
    if not triton_installed():
        raise SwintormerError("attention backend 'triton' needs Triton: pip install swintormer[kernels]")
    if not torch.cuda.is_available() and not is_interpreting():
        raise SwintormerError(
            "attention backend 'triton' needs a CUDA GPU (or TRITON_INTERPRET=1 to run the kernels on the "
            "CPU, slowly); use 'torch' or 'auto'"
        )


def use_kernels(backend: str, qkv: torch.Tensor, *params: torch.Tensor) -> bool:
    """Whether an attention module set to ``backend`` runs the Triton kernels on ``qkv`` now.

    ``params`` are the module's own inputs to the op (logit scale, temperature): the kernels have
    no backward, so ``"auto"`` falls back to torch when autograd records and ``"triton"`` raises;
    likewise for dtypes other than fp16/fp32.
    """
    if backend == "torch" or exporting() or qkv.device.type == "meta":
        return False
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (qkv, *params))
    if backend == "auto":
        return qkv.is_cuda and qkv.dtype in SUPPORTED_DTYPES and not needs_grad and triton_installed()
    if qkv.dtype not in SUPPORTED_DTYPES:
        raise SwintormerError(
            f"the Triton attention kernels take float16 or float32, not {qkv.dtype}; "
            "use attention backend 'auto' or 'torch'"
        )
    if needs_grad:
        raise SwintormerError(
            "the Triton attention kernels are forward-only: run under torch.no_grad()/inference_mode(), "
            "or use attention backend 'auto' or 'torch' for training"
        )
    if not qkv.is_cuda and not is_interpreting():
        raise SwintormerError(f"attention backend 'triton' got a {qkv.device.type} tensor; it needs CUDA tensors")
    return True


def _load_ops() -> None:
    """Import the kernel modules, which register the ``torch.ops.swintormer`` ops."""
    import swintormer.kernels.transposed_attention  # noqa: F401
    import swintormer.kernels.window_attention  # noqa: F401
    import swintormer.kernels.window_channel_attention  # noqa: F401


def fused_swin_attention(
    qkv: torch.Tensor,
    logit_scale: torch.Tensor,
    bias_table: torch.Tensor,
    num_heads: int,
    shift: int,
    image_size: tuple[int, int],
) -> torch.Tensor:
    """Both branches of Swintormer's attention, written where ``project_out`` wants them.

    Args:
        qkv: ``[Bw, 3C, M, M]``, the per-window depthwise-conv output.
        logit_scale: ``[h, 1, 1]``; bias_table: ``[(2M-1)^2, h]`` (``16*sigmoid`` of the CPB MLP).
        image_size: ``(H, W)`` of the image before it was rolled by ``-shift`` and partitioned.

    Returns:
        ``[B, C, H, W]``: window attention in channels ``[0, C/2)``, channel attention in
        ``[C/2, C)``, un-partitioned and rolled back, i.e. the reference's concatenation followed
        by ``window_reverse`` and the roll back (``project_out`` is 1x1, so it commutes with both).
    """
    _load_ops()
    bw, c3, m, _ = qkv.shape
    height, width = image_size
    c = c3 // 3
    out = qkv.new_empty(bw // ((height // m) * (width // m)), c, height, width)
    torch.ops.swintormer.window_attention(qkv, logit_scale, bias_table, out, num_heads, shift, 0)
    torch.ops.swintormer.window_channel_attention(qkv, out, num_heads, shift, c // 2)
    return out


def fused_transposed_attention(qkv: torch.Tensor, temperature: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Restormer's MDTA on the depthwise-conv output: ``[B, 3C, H, W] -> [B, C, H, W]``."""
    _load_ops()
    return torch.ops.swintormer.transposed_attention(qkv, temperature, num_heads)
