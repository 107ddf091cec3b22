"""Triton kernels for the restorers' attention, imported as ``swintormer.kernels``.

Each operation lives in its own file with a private ``@triton.jit`` kernel, a launcher, and a
``torch.library.custom_op`` wrapper. Triton is an optional dependency (``pip install
swintormer[kernels]``); importing this package does not import it.
"""
