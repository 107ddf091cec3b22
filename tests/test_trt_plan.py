"""The TensorRT runtime's decisions, on a CPU: which profile, which buffers, which graph key."""

from __future__ import annotations

import pytest
import torch

from swintormer.backends.trt_plan import BufferKey, BufferPool, Profile, select_profile, shared_memory_bytes
from swintormer.errors import SwintormerError
from swintormer.export.specs import component_specs
from swintormer.model import DeblurModel

SMALL = Profile(0, {"image": ((1, 3, 256, 256), (4, 3, 256, 256), (8, 3, 256, 256))})
LARGE = Profile(1, {"image": ((1, 3, 256, 256), (16, 3, 256, 256), (32, 3, 256, 256))})


def test_the_smallest_profile_that_holds_the_shapes_is_chosen():
    assert select_profile([LARGE, SMALL], {"image": (8, 3, 256, 256)}).index == 0
    assert select_profile([LARGE, SMALL], {"image": (9, 3, 256, 256)}).index == 1
    assert select_profile([SMALL], {"image": (1, 3, 256, 256)}).index == 0


@pytest.mark.parametrize("shape", [(33, 3, 256, 256), (4, 3, 512, 256), (4, 3, 256)])
def test_shapes_no_profile_takes_are_one_clear_error(shape):
    with pytest.raises(SwintormerError, match="restorer: no optimisation profile takes image") as err:
        select_profile([SMALL, LARGE], {"image": shape}, "restorer")
    assert "profile 1: image (1, 3, 256, 256)..(32, 3, 256, 256)" in str(err.value) and "rebuild the engine" in str(err.value)


def test_an_input_the_profile_does_not_know_is_not_covered():
    assert not SMALL.covers({"image": (1, 3, 256, 256), "prior": (1, 4, 32, 32)})


def test_the_export_specs_profile_is_what_the_runtime_selects_from():
    spec = component_specs(DeblurModel.load(), tile=256, max_batch=8)["restorer"]
    profile = Profile(0, spec.profile())
    for batch in range(1, 9):
        assert profile.covers({"image": (batch, 3, 256, 256)})
    assert not profile.covers({"image": (9, 3, 256, 256)})


def test_buffer_keys_are_per_engine_profile_and_shapes_in_any_order():
    a = BufferKey.of("restorer", 0, {"image": (8, 3, 256, 256), "prior": (8, 4, 32, 32)})
    b = BufferKey.of("restorer", 0, {"prior": [8, 4, 32, 32], "image": (8, 3, 256, 256)})
    assert a == b and hash(a) == hash(b)
    assert a != BufferKey.of("restorer", 1, {"image": (8, 3, 256, 256), "prior": (8, 4, 32, 32)})
    assert a != BufferKey.of("encoder", 0, {"image": (8, 3, 256, 256), "prior": (8, 4, 32, 32)})
    assert a != BufferKey.of("restorer", 0, {"image": (7, 3, 256, 256), "prior": (7, 4, 32, 32)})


def test_buffers_are_allocated_once_per_key_and_the_oldest_key_goes_with_its_graph():
    evicted = []
    pool = BufferPool(lambda shape, dtype: torch.empty(shape, dtype=dtype), capacity=2, on_evict=evicted.append)
    spec = {"image": ((2, 3, 8, 8), torch.float32), "restored": ((2, 3, 8, 8), torch.float32)}
    k1, k2, k3 = (BufferKey.of("restorer", 0, {"image": (b, 3, 8, 8)}) for b in (2, 3, 4))
    first, new = pool.get(k1, spec)
    again, new_again = pool.get(k1, spec)
    assert new and not new_again and again["image"] is first["image"] and pool.allocations == 2
    assert first["image"].shape == (2, 3, 8, 8) and first["image"].data_ptr() != first["restored"].data_ptr()
    pool.get(k2, spec)
    pool.get(k1, spec)  # k1 used last: k2 is the oldest
    pool.get(k3, spec)
    assert evicted == [k2] and k1 in pool and k3 in pool and len(pool) == 2 and pool.allocations == 6


def test_one_block_serves_every_engine_of_a_model():
    assert shared_memory_bytes({"encoder": 1000, "denoiser": 70_000, "restorer": 5_000}) == 70_144
    assert shared_memory_bytes({}) == 0
    with pytest.raises(SwintormerError):
        BufferPool(lambda s, d: None, capacity=0)


def test_the_engine_is_built_with_the_export_specs_profile():
    """The builder's Polygraphy profile (what ``CreateConfig`` gets) is the spec's, input by input,
    for every component of a prior model (the denoiser's int64 timestep included)."""
    pytest.importorskip("polygraphy")
    from swintormer.export.trt_engine import engine_profile

    for name, spec in component_specs(DeblurModel.load(expect="swintormer-tiny-prior"), tile=256, max_batch=8).items():
        profile = engine_profile(spec)
        assert list(profile) == [t.name for t in spec.inputs], name
        for tensor, (lo, opt, hi) in spec.profile().items():
            got = profile[tensor]
            assert (tuple(got.min), tuple(got.opt), tuple(got.max)) == (lo, opt, hi), (name, tensor)
    assert tuple(engine_profile(component_specs(DeblurModel.load(), tile=256, max_batch=8)["restorer"])["image"].max) == (8, 3, 256, 256)
