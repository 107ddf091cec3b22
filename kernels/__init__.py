"""Triton kernels for the restorers' attention, imported as ``swintormer.kernels``.

Each operation lives in its own file with a private ``@triton.jit`` kernel, a launcher, and a
``torch.library.custom_op`` wrapper (registered as ``torch.ops.swintormer.<name>`` on import):

- ``window_attention``: Swintormer's shifted-window cosine attention;
- ``window_channel_attention``: Swintormer's channel attention inside each window;
- ``transposed_attention``: Restormer's MDTA over the whole image.

Triton is an optional dependency (``pip install swintormer[kernels]``); importing this package
does not import it, only the operation modules do.
"""

import os

import torch

__all__ = ["SUPPORTED_DTYPES", "is_interpreting"]

#: What the kernels compute in (no bf16: Triton's interpreter and sm_75 GPUs have none).
SUPPORTED_DTYPES = (torch.float16, torch.float32)


def is_interpreting() -> bool:
    """Whether Triton runs kernels on the CPU through its interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
