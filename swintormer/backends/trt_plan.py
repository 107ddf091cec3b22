"""What the TensorRT runtime decides before it touches a GPU: profiles, buffers, graph keys.

NVIDIA's own demos (demoDiffusion, the TensorRT samples) run an engine by choosing the
optimisation profile that covers the request's shapes, binding I/O buffers allocated once for
those shapes, capturing the enqueue in a CUDA graph once and replaying it, and letting the
engines of one model share one device-memory block (they run one after another on one stream).
This module holds those decisions as plain functions and data, so they are tested on a CPU;
:mod:`swintormer.backends.tensorrt` applies them with TensorRT and CUDA.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from swintormer.errors import SwintormerError

__all__ = ["BufferKey", "BufferPool", "Profile", "select_profile", "shared_memory_bytes"]

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Profile:
    """One optimisation profile of an engine: ``{input: (min, opt, max) shapes}``."""

    index: int
    shapes: Mapping[str, tuple[Shape, Shape, Shape]]

    def covers(self, shapes: Mapping[str, Shape]) -> bool:
        for name, shape in shapes.items():
            if name not in self.shapes:
                return False
            lo, _, hi = self.shapes[name]
            if len(shape) != len(lo) or any(not a <= s <= b for a, s, b in zip(lo, shape, hi)):
                return False
        return True

    def volume(self) -> int:
        """Elements of the largest shapes (a smaller profile means less memory)."""
        total = 0
        for _, _, hi in self.shapes.values():
            n = 1
            for d in hi:
                n *= d
            total += n
        return total


def select_profile(profiles: Sequence[Profile], shapes: Mapping[str, Shape], engine: str = "engine") -> Profile:
    """The smallest profile whose ranges hold every input's shape; a clear error if none does."""
    fitting = [p for p in profiles if p.covers(shapes)]
    if not fitting:
        ranges = "; ".join(f"profile {p.index}: " + ", ".join(f"{n} {lo}..{hi}" for n, (lo, _, hi) in p.shapes.items()) for p in profiles)
        asked = ", ".join(f"{n} {tuple(s)}" for n, s in shapes.items())
        raise SwintormerError(f"{engine}: no optimisation profile takes {asked} ({ranges}); rebuild the engine for these "
                              "shapes (export --batch / --tile) or send smaller batches")
    return min(fitting, key=lambda p: (p.volume(), p.index))


@dataclass(frozen=True)
class BufferKey:
    """Identifies one set of I/O buffers and the CUDA graph captured on them."""

    engine: str
    profile: int
    shapes: tuple[tuple[str, Shape], ...]

    @classmethod
    def of(cls, engine: str, profile: int, shapes: Mapping[str, Shape]) -> "BufferKey":
        return cls(engine, profile, tuple(sorted((n, tuple(int(d) for d in s)) for n, s in shapes.items())))


class BufferPool:
    """Buffers allocated once per key (``allocate(shape, dtype) -> buffer``), least recently used
    dropped beyond ``capacity`` keys (with whatever ``on_evict`` releases: the key's CUDA graph)."""

    def __init__(self, allocate: Callable[[Shape, object], object], capacity: int = 32,
                 on_evict: Callable[[BufferKey], None] | None = None) -> None:
        if capacity < 1:
            raise SwintormerError("a buffer pool needs room for at least one key")
        self.allocate, self.capacity, self.on_evict = allocate, capacity, on_evict
        self._entries: OrderedDict[BufferKey, dict[str, object]] = OrderedDict()
        self.allocations = 0

    def get(self, key: BufferKey, tensors: Mapping[str, tuple[Shape, object]]) -> tuple[dict[str, object], bool]:
        """``(buffers by name, new)`` for ``key``; ``tensors`` gives each buffer's ``(shape, dtype)``."""
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key], False
        while len(self._entries) >= self.capacity:
            old, _ = self._entries.popitem(last=False)
            if self.on_evict is not None:
                self.on_evict(old)
        buffers = {name: self.allocate(tuple(shape), dtype) for name, (shape, dtype) in tensors.items()}
        self.allocations += len(buffers)
        self._entries[key] = buffers
        return buffers, True

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: BufferKey) -> bool:
        return key in self._entries


def shared_memory_bytes(sizes: Mapping[str, int], alignment: int = 256) -> int:
    """One device-memory block for engines that never run at the same time: the largest need, aligned."""
    if not sizes:
        return 0
    need = max(int(s) for s in sizes.values())
    return -(-need // alignment) * alignment
