"""What the interpreter lets through and the Triton compiler does not: globals read by ``@triton.jit`` bodies.

Under ``TRITON_INTERPRET=1`` a kernel may read any module global; compiled for a GPU, it may read
only ``tl.constexpr`` values, other jitted functions and modules (a plain ``float`` global fails
with "Cannot access global variable ... from within @jit'ed function"). This bug reached a GPU
once (swintormer-rt, the first H200 session), so the rule is checked here, on the CPU.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import textwrap
import types

import pytest
import triton
import triton.language as tl

import swintormer.kernels._common as common
import swintormer.kernels.transposed_attention as transposed
import swintormer.kernels.window_attention as window
import swintormer.kernels.window_channel_attention as window_channel

MODULES = (common, transposed, window, window_channel)


def _jitted(module: types.ModuleType) -> list[tuple[str, object]]:
    """``(name, python function)`` of every ``@triton.jit`` function defined in ``module``."""
    found = {}
    for name, value in vars(module).items():
        fn = value
        while hasattr(fn, "fn"):  # autotuner -> JITFunction (or InterpretedFunction) -> the function
            fn = fn.fn
        if fn is not value and isinstance(fn, types.FunctionType) and fn.__module__ == module.__name__:
            found.setdefault(fn, name)
    return [(name, fn) for fn, name in found.items()]


def _free_names(fn) -> set[str]:
    """Names a function reads but neither takes as an argument nor assigns."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    func = tree.body[0]
    bound = {a.arg for a in func.args.args + func.args.kwonlyargs}
    loads, stores = set(), set()
    for node in ast.walk(func):
        if isinstance(node, ast.Name):
            (loads if isinstance(node.ctx, ast.Load) else stores).add(node.id)
    return loads - bound - stores


def _allowed(value: object) -> bool:
    return (
        isinstance(value, (types.ModuleType, tl.constexpr))
        or hasattr(value, "fn")  # another jitted function (compiled or interpreted)
        or isinstance(value, triton.runtime.jit.KernelInterface)
    )


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_jit_bodies_read_only_constexpr_globals(module):
    functions = _jitted(module)
    assert functions, f"no @triton.jit functions found in {module.__name__}"
    bad = []
    for name, fn in functions:
        for free in sorted(_free_names(fn)):
            if free in fn.__globals__:
                value = fn.__globals__[free]
                if not _allowed(value):
                    bad.append(f"{name} reads {free} = {value!r} ({type(value).__name__})")
            elif not hasattr(builtins, free):
                bad.append(f"{name} reads {free}, which is not defined")
    assert not bad, "globals a compiled kernel cannot read (make them tl.constexpr):\n" + "\n".join(bad)
