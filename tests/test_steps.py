"""The server's pipeline step called directly, as the server calls it, on small and odd-sized images.

:func:`restore_image` is what the ``pipeline`` model runs; here with PyTorch tile functions in
place of the network models, so the validation, the layout and channel handling and the
streamed merge are checked without a server.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from swintormer.errors import SwintormerError
from swintormer.serving.steps import ServingLimits, decode_layout, restore_image, validate_image
from swintormer.tiling import TilingConfig, tiled_apply

LIMITS = ServingLimits(channels=3, max_pixels=1_000_000, tiling=TilingConfig(256, 220))
FEATHER = ServingLimits(channels=3, max_pixels=1_000_000, tiling=TilingConfig(256, 220, "feather", 3))


def identity(tiles, origins):
    return tiles


def _image(shape: tuple[int, ...], dtype) -> np.ndarray:
    rng = np.random.default_rng(sum(shape))
    if dtype == np.float32:
        return rng.random(shape, dtype=np.float32)
    return rng.integers(0, np.iinfo(dtype).max + 1, shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("hw", [(8, 8), (9, 13), (257, 301), (300, 517)])
def test_identity_round_trip_is_exact(hw, dtype):
    image = _image((*hw, 3), dtype)
    name, out = restore_image(image, "HWC", LIMITS, identity)
    assert name == {np.uint8: "UINT8", np.uint16: "UINT16", np.float32: "FP32"}[dtype]
    assert out.dtype == dtype and np.array_equal(out, image)


def test_chw_layout_and_a_real_restoration_match_the_tiler():
    image = _image((3, 257, 301), np.uint16)
    fn = lambda t, o: t * 0.7 + 0.1  # noqa: E731
    _, out = restore_image(image, "CHW", FEATHER, fn)
    want = tiled_apply(fn, image.transpose(1, 2, 0), 3, FEATHER.tiling, out_dtype=np.uint16)
    assert out.shape == image.shape and out.flags.c_contiguous and np.array_equal(out, want.transpose(2, 0, 1))
    assert not np.array_equal(out, image)


def test_the_output_is_the_tile_functions_not_the_input():
    image = _image((40, 60, 3), np.uint8)
    _, out = restore_image(image, "HWC", LIMITS, lambda t, o: torch.ones_like(t))
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
def test_bad_images_are_refused_before_any_work(image, layout, needle):
    calls = []
    with pytest.raises(SwintormerError, match=needle):
        restore_image(image, layout, LIMITS, lambda t, o: calls.append(1) or t)
    assert calls == []


@pytest.mark.parametrize("layout", ["HWC", "CHW"])
def test_grayscale_comes_back_grayscale_as_the_channel_mean(layout):
    gray = _image((40, 70, 1), np.uint16)
    image = gray if layout == "HWC" else np.ascontiguousarray(gray.transpose(2, 0, 1))
    seen = []

    def gains(tiles, origins):
        seen.append(tiles.shape[1])
        assert torch.equal(tiles[:, 0], tiles[:, 2])  # restored as RGB
        return tiles * torch.tensor([0.5, 0.7, 0.9])[None, :, None, None]

    _, out = restore_image(image, layout, LIMITS, gains)
    assert out.shape == image.shape and out.dtype == np.uint16 and seen == [3]
    want = np.clip(np.rint(gray / 65535.0 * 0.7 * 65535), 0, 65535)  # the mean of the three channels' gains
    hwc = out if layout == "HWC" else out.transpose(1, 2, 0)
    assert np.abs(hwc.astype(np.int64) - want).max() <= 1


@pytest.mark.parametrize("raw, needle", [(np.array([b"\xff\xfe"], dtype=object), "ASCII"), (np.array([b"NHWC"], dtype=object), "got 'NHWC'"),
                                         (np.array([], dtype=object), "one value")])
def test_layout_is_decoded_strictly(raw, needle):
    with pytest.raises(SwintormerError, match=needle):
        decode_layout(raw)
    assert decode_layout(np.array([b"chw"], dtype=object)) == "CHW" and decode_layout(None) == "HWC"


def test_thin_images_are_limited_by_their_padded_area():
    with pytest.raises(SwintormerError, match="padded to whole 256-pixel tiles"):
        validate_image(np.zeros((8, 20000, 3), np.uint8), "HWC", ServingLimits(3, 200_000))  # 160k pixels, 5 MP padded
    assert validate_image(np.zeros((8, 700, 3), np.uint8), "HWC", ServingLimits(3, 200_000)).shape == (8, 700, 3)


def test_memory_is_one_batch_at_a_time():
    """The tile function sees batches of at most ``tiling.batch`` tiles: the image is never tiled whole."""
    sizes = []
    image = _image((700, 900, 3), np.uint8)
    restore_image(image, "HWC", ServingLimits(3, 1_000_000, TilingConfig(batch=3)), lambda t, o: sizes.append(len(o)) or t)
    assert max(sizes) == 3 and sum(sizes) == 4 * 4  # tile rows at 0, 220, 440, 444; columns at 0, 220, 440, 644


@pytest.mark.parametrize("channels", [3, 6])
@pytest.mark.parametrize("max_pixels", [10_000_000, 256 * 256])
def test_warm_up_runs_the_request_path_within_the_limits(channels, max_pixels, monkeypatch):
    import swintormer.serving.steps as steps

    seen = []
    real = steps.restore_image
    monkeypatch.setattr(steps, "restore_image", lambda image, *a: seen.append(image.shape) or real(image, *a))
    steps.warm_up(ServingLimits(channels=channels, max_pixels=max_pixels, tiling=TilingConfig(tile=256, stride=220)))
    assert seen == [(256, 476 if max_pixels > 256 * 476 else 256, channels)]
