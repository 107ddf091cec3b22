"""The ensemble's python steps called directly, as the server calls them, on small and odd-sized images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from swintormer.errors import SwintormerError
from swintormer.serving.steps import Geometry, ServingLimits, check_origins, check_tiles, decode_layout, postprocess, preprocess
from swintormer.tiling import TilingConfig, plan_tiles, tiled_apply

LIMITS = ServingLimits(channels=3, max_pixels=1_000_000, tiling=TilingConfig(256, 220))
FEATHER = ServingLimits(channels=3, max_pixels=1_000_000, tiling=TilingConfig(256, 220, "feather"))


def _image(shape: tuple[int, ...], dtype) -> np.ndarray:
    rng = np.random.default_rng(sum(shape))
    if dtype == np.float32:
        return rng.random(shape, dtype=np.float32)
    return rng.integers(0, np.iinfo(dtype).max + 1, shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("hw", [(8, 8), (9, 13), (257, 301), (300, 517)])
def test_identity_round_trip_is_exact(hw, dtype):
    image = _image((*hw, 3), dtype)
    tiles, origins, geometry = preprocess(image, "HWC", LIMITS)
    plan = plan_tiles(*hw, LIMITS.tiling.tile, LIMITS.tiling.stride)
    assert tiles.dtype == np.float32 and tiles.shape == (len(plan.origins), 3, 256, 256)
    assert [tuple(o) for o in origins.tolist()] == plan.origins and origins.dtype == np.int32
    g = Geometry.from_array(geometry)
    assert (g.height, g.width, g.plan_height, g.plan_width) == (*hw, plan.height, plan.width)
    assert 0.0 <= tiles.min() and tiles.max() <= 1.0
    dtype_name, out = postprocess(tiles, geometry, LIMITS)
    assert dtype_name == {np.uint8: "UINT8", np.uint16: "UINT16", np.float32: "FP32"}[dtype]
    assert out.dtype == dtype and np.array_equal(out, image)


def test_chw_layout_and_a_real_restoration_match_the_streaming_tiler():
    image = _image((3, 257, 301), np.uint16)
    tiles, origins, geometry = preprocess(image, "CHW", LIMITS)
    restored = tiles * 0.7 + 0.1
    _, out = postprocess(restored, geometry, FEATHER)
    want = tiled_apply(lambda t, o: t * 0.7 + 0.1, image.transpose(1, 2, 0), 3, TilingConfig(256, 220, "feather", 3), out_dtype=np.uint16)
    assert out.shape == image.shape and np.array_equal(out, want.transpose(2, 0, 1))
    assert not np.array_equal(out, image)


def test_postprocess_takes_the_restored_tiles_not_the_input():
    """A postprocess that returned anything but the merge of what it was given would fail here."""
    image = _image((40, 60, 3), np.uint8)
    tiles, _, geometry = preprocess(image, "HWC", LIMITS)
    _, out = postprocess(np.ones_like(tiles), geometry, LIMITS)
    assert np.array_equal(out, np.full_like(image, 255))


@pytest.mark.parametrize(
    "image, layout, needle",
    [
        (np.zeros((64, 64, 4), np.uint8), "HWC", "4 channels"),
        (np.zeros((64, 64, 2), np.uint8), "HWC", "2 channels"),
        (np.zeros((7, 64, 3), np.uint8), "HWC", "at least 8"),
        (np.zeros((64, 64), np.uint8), "HWC", "rank 3"),
        (np.zeros((1001, 1000, 3), np.uint8), "HWC", "limit"),
        (np.full((16, 16, 3), np.nan, np.float32), "HWC", "NaN"),
        (np.zeros((16, 16, 3), np.int32), "HWC", "dtype"),
        (np.zeros((16, 16, 3), np.uint8), "WHC", "LAYOUT"),
    ],
)
def test_preprocess_rejects_bad_images(image, layout, needle):
    with pytest.raises(SwintormerError, match=needle):
        preprocess(image, layout, LIMITS)


def test_postprocess_rejects_a_malformed_geometry():
    with pytest.raises(SwintormerError, match="9 entries"):
        postprocess(np.zeros((1, 3, 256, 256), np.float32), np.zeros(5, np.int64), LIMITS)


@pytest.mark.parametrize("layout", ["HWC", "CHW"])
def test_grayscale_comes_back_grayscale_as_the_channel_mean(layout):
    gray = _image((40, 70, 1), np.uint16)
    image = gray if layout == "HWC" else np.ascontiguousarray(gray.transpose(2, 0, 1))
    tiles, _, geometry = preprocess(image, layout, LIMITS)
    assert tiles.shape[1] == 3 and np.array_equal(tiles[:, 0], tiles[:, 2])  # restored as RGB
    restored = tiles * np.array([0.5, 0.7, 0.9], np.float32)[None, :, None, None]
    _, out = postprocess(restored, geometry, LIMITS)
    assert out.shape == image.shape and out.dtype == np.uint16
    want = np.clip(np.rint(gray / 65535.0 * 0.7 * 65535), 0, 65535)  # the mean of the three channels' gains
    hwc = out if layout == "HWC" else out.transpose(1, 2, 0)
    assert np.abs(hwc.astype(np.int64) - want).max() <= 1


# --- a hostile client calling a step directly ----------------------------------------------------


def _geometry(**changes) -> np.ndarray:
    image = _image((300, 517, 3), np.uint8)
    _, _, geometry = preprocess(image, "HWC", LIMITS)
    g = Geometry.from_array(geometry)
    return Geometry(**{**g.__dict__, **changes}).to_array()


@pytest.mark.parametrize(
    "changes, needle",
    [
        ({"stride": 1}, "stride 1"),
        ({"tile": 64}, "tile 64"),
        ({"height": 6000, "width": 6000, "plan_height": 6000, "plan_width": 6000}, "6000x6000"),
        ({"dtype_index": 7}, "dtype index 7"),
        ({"layout_index": -1}, "layout index -1"),
        ({"channels": 6}, "6 channels"),
        ({"plan_width": 40000}, "tile plan"),
        ({"height": 2}, "517x2"),
    ],
)
def test_postprocess_refuses_forged_geometry_before_allocating(changes, needle):
    tiles = np.zeros((6, 3, 256, 256), np.float32)
    with pytest.raises(SwintormerError, match=needle):
        postprocess(tiles, _geometry(**changes), LIMITS)


def test_postprocess_refuses_tiles_that_do_not_fit_the_geometry():
    with pytest.raises(SwintormerError, match="RESTORED holds 5 tiles; GEOMETRY's image has 6"):
        postprocess(np.zeros((5, 3, 256, 256), np.float32), _geometry(), LIMITS)
    with pytest.raises(SwintormerError, match=r"RESTORED must be \[N, 3, 256, 256\]"):
        postprocess(np.zeros((6, 3, 128, 128), np.float32), _geometry(), LIMITS)


def test_tile_and_origin_checks():
    with pytest.raises(SwintormerError, match=f"1 to {LIMITS.max_tiles}"):
        check_tiles(np.zeros((LIMITS.max_tiles + 1, 3, 256, 256), np.float32)[:, :, :1, :1].repeat(256, 2).repeat(256, 3), LIMITS)
    assert check_tiles(np.zeros((4, 3, 256, 256), np.float32), LIMITS) == 4
    with pytest.raises(SwintormerError, match=r"ORIGINS must be \[4, 2\]"):
        check_origins(np.zeros((3, 2), np.int32), 4, LIMITS)
    with pytest.raises(SwintormerError, match="outside"):
        check_origins(np.full((1, 2), 2**31 - 1, np.int64), 1, LIMITS)


@pytest.mark.parametrize("raw, needle", [(np.array([b"\xff\xfe"], dtype=object), "ASCII"), (np.array([b"NHWC"], dtype=object), "got 'NHWC'"),
                                         (np.array([], dtype=object), "one value")])
def test_layout_is_decoded_strictly(raw, needle):
    with pytest.raises(SwintormerError, match=needle):
        decode_layout(raw)
    assert decode_layout(np.array([b"chw"], dtype=object)) == "CHW" and decode_layout(None) == "HWC"


def test_thin_images_are_limited_by_their_padded_area_and_max_tiles_bounds_every_plan():
    with pytest.raises(SwintormerError, match="padded to whole 256-pixel tiles"):
        preprocess(np.zeros((8, 20000, 3), np.uint8), "HWC", ServingLimits(3, 200_000))  # 160k pixels, 5 MP padded
    limits = ServingLimits(3, 1_000_000)
    for h, w in [(1000, 1000), (256, 3906), (3906, 256), (8, 3906), (257, 3890), (999, 1001), (300, 3333)]:
        if h * w <= limits.max_pixels:
            plan = plan_tiles(max(h, 256), max(w, 256), 256, 220)
            if plan.height * plan.width <= limits.max_plan_pixels:
                assert len(plan.origins) <= limits.max_tiles, (h, w)
