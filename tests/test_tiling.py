"""Tiled inference: exact for identity, faithful for a real model, memory bounded by one band."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from swintormer.errors import SwintormerError
from swintormer.padding import pad_to_multiple, reflect_pad_to
from swintormer.tiling import Blend, TilingConfig, blend_weights, plan_tiles, tile_starts, tiled_apply


#: mean |tiled - whole| / mean |whole - input| on the interior, for the bundled default model.
#: Measured 0.41 for the run-12a default and for run 11b (swintormer/assets/README.md), 0.66 for
#: run 8, 0.562 for run 1 and 0.5 for the random-weight default. The ratio's denominator is what
#: the model changes on this in-focus photograph (runs 8 and later were trained to leave sharp
#: detail alone), so the absolute bound below is the one that tracks tiling.
TILING_TOLERANCE = 0.6
#: the same discrepancy in absolute terms: mean |tiled - whole| on the interior (measured 0.039/255
#: for run 12a, 0.037/255 for run 11b, 0.245/255 for run 8, 0.42/255 for run 1)
TILING_ABS_TOLERANCE = 0.12 / 255


def identity(tiles, origins):
    return tiles


def test_tile_starts_reference_rule():
    assert tile_starts(256, 256, 220) == [0]
    assert tile_starts(100, 256, 220) == [0]
    assert tile_starts(480, 256, 220) == [0, 220, 224]
    assert tile_starts(1120, 256, 220) == [0, 220, 440, 660, 864]


@pytest.mark.parametrize("size", [(100, 77), (256, 256), (427, 640), (480, 1000), (31, 700)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("blend", ["uniform", "feather"])
def test_identity_is_exact(size, dtype, blend):
    rng = np.random.default_rng(0)
    if dtype == np.float32:
        img = rng.random((*size, 3), dtype=np.float32)
    else:
        img = rng.integers(0, np.iinfo(dtype).max, (*size, 3)).astype(dtype)
    out = tiled_apply(identity, img, 3, TilingConfig(256, 220, blend, 3), out_dtype=dtype)
    assert out.dtype == dtype and np.array_equal(out, img)


def test_whole_image_mode_and_batches_are_equivalent():
    img = np.random.default_rng(1).random((300, 333, 3), dtype=np.float32)
    calls = []

    def record(tiles, origins):
        calls.append(list(origins))
        return tiles * 0.5

    whole = tiled_apply(record, img, 3, TilingConfig(tile=0))
    assert calls == [[(0, 0)]] and np.allclose(whole, img * 0.5)
    a = tiled_apply(lambda t, o: t * 0.5, img, 3, TilingConfig(128, 100, batch=1))
    b = tiled_apply(lambda t, o: t * 0.5, img, 3, TilingConfig(128, 100, batch=64))
    assert np.array_equal(a, b)


def test_output_channels_differ_from_input():
    img = np.random.default_rng(2).random((300, 300, 6), dtype=np.float32)
    out = tiled_apply(lambda t, o: t[:, :3], img, 3)
    assert out.shape == (300, 300, 3) and np.array_equal(out, img[:, :, :3])


def test_bad_arguments_are_clear():
    img = np.zeros((64, 64, 3), np.float32)
    with pytest.raises(SwintormerError, match="stride"):
        plan_tiles(64, 64, 256, 300)
    with pytest.raises(SwintormerError, match="tile outputs have shape"):
        tiled_apply(lambda t, o: t[:, :, :10], img, 3)
    with pytest.raises(SwintormerError, match="blend"):
        tiled_apply(identity, img, 3, TilingConfig(blend="median"))
    with pytest.raises(SwintormerError, match="batch"):
        TilingConfig(batch=0)
    with pytest.raises(SwintormerError, match="multiple of 128"):
        TilingConfig(300, 220).validate(128)
    assert TilingConfig(blend="feather").blend is Blend.FEATHER and TilingConfig(0).validate(128).tile == 0


def test_reflect_padding_larger_than_image_and_single_pixel():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    y = reflect_pad_to(x, 20, 30)
    assert y.shape == (1, 1, 20, 30) and torch.equal(y[..., :3, :4], x)
    assert torch.equal(y[..., 3, :4], x[..., 1, :])  # reflect, not replicate
    one = reflect_pad_to(torch.ones(1, 2, 1, 1), 5, 5)
    assert torch.equal(one, torch.ones(1, 2, 5, 5))
    padded, size = pad_to_multiple(torch.zeros(1, 3, 256, 256), 256)
    assert padded.shape[-2:] == (256, 256) and size == (256, 256)


@pytest.mark.slow
def test_real_model_tiled_agrees_with_whole_image_on_interior(rocket):
    """Tiling changes what each pixel sees only near tile borders; away from them it agrees."""
    from swintormer.model import DeblurModel

    model = DeblurModel.load().restorer  # the bundled default
    fn = lambda t, o: model(t)  # noqa: E731
    img = rocket[:300, :500]
    with torch.no_grad():
        whole = tiled_apply(fn, img, 3, TilingConfig(tile=0))
        tiled = tiled_apply(fn, img, 3, TilingConfig(256, 220, batch=4))
    interior = np.abs(whole - tiled)[32:-32, 32:-32]
    change = np.abs(whole - img / 255.0)[32:-32, 32:-32]
    # Stated tolerance: away from the image border, tiling moves the output by less than
    # TILING_TOLERANCE of what the model itself changes (its receptive field is a whole tile, so
    # the context a tile sees differs from the whole image's).
    assert interior.mean() < TILING_TOLERANCE * change.mean()
    assert interior.mean() < TILING_ABS_TOLERANCE


_MEMORY_PROBE = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np, torch
    from swintormer.tiling import tiled_apply
    side = int(sys.argv[1])
    conv = torch.nn.Conv2d(3, 3, 3, padding=1)
    img = np.random.default_rng(0).integers(0, 255, (side, side, 3), dtype=np.uint8)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with torch.no_grad():
        out = tiled_apply(lambda t, o: conv(t), img, 3, out_dtype=np.uint8)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"base_kb": base, "peak_kb": peak, "image_bytes": img.nbytes}))
    """
)


@pytest.mark.slow
def test_peak_memory_bounded_by_one_band_not_the_image():
    """16 MP through the tiler costs the input and output arrays plus one band, nothing more."""

    def probe(side: int) -> dict:
        res = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, str(side)], capture_output=True, text=True, check=True)
        return json.loads(res.stdout)

    small, large = probe(1000), probe(4000)
    growth = (large["peak_kb"] - large["base_kb"]) * 1024
    # input (already in base) + output uint8 image + one float64 band (6 MB) + one tile batch:
    # allow the output plus 64 MB; full-image float accumulators would need > 400 MB.
    assert growth < large["image_bytes"] + 64 * 2**20, growth


# --- the merge against an independent brute-force reference --------------------------------------

#: Feather weights of an 8x8 tile at stride 5 (a 3-pixel overlap), in thirds, written out by hand:
#: the distance to the nearest tile edge over the overlap width, capped at 1.
FEATHER_8_5_THIRDS = [
    [1, 1, 1, 1, 1, 1, 1, 1],
    [1, 2, 2, 2, 2, 2, 2, 1],
    [1, 2, 3, 3, 3, 3, 2, 1],
    [1, 2, 3, 3, 3, 3, 2, 1],
    [1, 2, 3, 3, 3, 3, 2, 1],
    [1, 2, 3, 3, 3, 3, 2, 1],
    [1, 2, 2, 2, 2, 2, 2, 1],
    [1, 1, 1, 1, 1, 1, 1, 1],
]


def _starts(length: int, tile: int, stride: int) -> list[int]:
    """The reference rule, written independently: every ``stride`` while a tile fits short of the end, then the end."""
    starts, s = [], 0
    while s + tile < length:
        starts.append(s)
        s += stride
    if not starts or starts[-1] != length - tile:
        starts.append(max(length - tile, 0))
    return starts


def _ramp(tile: int, stride: int) -> np.ndarray:
    i = np.arange(tile)
    return np.minimum(np.minimum(i + 1, tile - i) / max(tile - stride, 1), 1.0)


def _brute_force(fn, image: np.ndarray, tile: int, stride: int, blend: str) -> np.ndarray:
    """Whole-image float64 accumulators, one tile at a time, each weighted as the blend says."""
    h, w, _ = image.shape
    num = np.zeros((h, w, 3))
    den = np.zeros((h, w, 1))
    ramp = _ramp(tile, stride)
    weights = np.minimum.outer(ramp, ramp) if blend == "feather" else np.ones((tile, tile))
    for y in _starts(h, tile, stride):
        for x in _starts(w, tile, stride):
            crop = torch.from_numpy(np.ascontiguousarray(image[y : y + tile, x : x + tile].transpose(2, 0, 1)))[None]
            out = fn(crop, [(y, x)])[0].double().numpy().transpose(1, 2, 0)
            num[y : y + tile, x : x + tile] += out * weights[:, :, None]
            den[y : y + tile, x : x + tile] += weights[:, :, None]
    return num / den


def _origin_dependent(tiles: torch.Tensor, origins) -> torch.Tensor:
    """A tile function whose output depends on where the tile is, so blend weights do not cancel."""
    shift = torch.tensor([0.03 * np.sin(y / 37.0 + x / 53.0) + 0.001 * ((y * 7 + x * 3) % 11) for y, x in origins])
    return tiles * 0.8 + shift.to(tiles.dtype)[:, None, None, None]


@pytest.mark.parametrize("blend", ["uniform", "feather"])
@pytest.mark.parametrize("size, tile, stride, batch", [((300, 517), 256, 220, 3), ((61, 47), 16, 11, 5), ((40, 64), 8, 5, 64)])
def test_merge_matches_brute_force_reference(blend, size, tile, stride, batch):
    img = np.random.default_rng(4).random((*size, 3), dtype=np.float32)
    got = tiled_apply(_origin_dependent, img, 3, TilingConfig(tile, stride, blend, batch))
    want = _brute_force(_origin_dependent, img, tile, stride, blend)
    assert np.abs(got - want).max() < 1e-6
    if blend == "feather":  # and the blend matters: uniform weights give another image
        assert np.abs(_brute_force(_origin_dependent, img, tile, stride, "uniform") - want).max() > 1e-3


def test_feather_weights_are_the_literal_ramp():
    plan = plan_tiles(8, 8, 8, 5)
    assert torch.allclose(blend_weights(plan, "feather"), torch.tensor(FEATHER_8_5_THIRDS, dtype=torch.float64) / 3)
    assert torch.equal(blend_weights(plan, "uniform"), torch.ones(8, 8, dtype=torch.float64))
    assert np.allclose(_ramp(8, 5) * 3, [1, 2, 3, 3, 3, 3, 2, 1])
