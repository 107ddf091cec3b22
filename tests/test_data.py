"""Data: PSFs and their dual-pixel disparity, the generator, the photo split, the DPDD layout, augmentation."""

from __future__ import annotations

import itertools
import json
import sys

import numpy as np
import pytest

from swintormer.data.defocus import disk_psf, half_aperture_psf, psf_blur, spatially_varying_blur, view_psf
from swintormer.data.dpdd import DPDD_INDOOR, DPDD_TEST_COUNT, find_split, read_pair, scan_split
from swintormer.data.pairs import AUGMENTATIONS, Pair, augment, collate, crop_window
from swintormer.data.photos import PHOTOS, load_photo, split_photos
from swintormer.data.sources import SyntheticPairs, photo_collage, scaled_window
from swintormer.data.synthetic import DefocusRecipe, level_recipe, quantize, recipe_with, synthesize_defocus
from swintormer.data.writer import write_synthetic_split
from swintormer.errors import SwintormerError
from swintormer.imageio import read_image, write_image


def _centroid_x(image: np.ndarray) -> float:
    weights = image[:, :, 0]
    return float((weights * np.arange(weights.shape[1])[None, :]).sum() / weights.sum())


@pytest.mark.parametrize("radius", [0.8, 2.5, 6.0])
def test_half_apertures_partition_the_disk(radius):
    left, right = half_aperture_psf(radius, "left"), half_aperture_psf(radius, "right")
    assert left.sum() == pytest.approx(1) and right.sum() == pytest.approx(1)
    np.testing.assert_allclose((left + right) / 2, disk_psf(radius), atol=1e-12)
    np.testing.assert_array_equal(right, left[:, ::-1])


def test_dual_pixel_disparity_follows_the_defocus_sign():
    """A point behind the focal plane lands left of itself in the left view, in front of it: right."""
    impulse = np.zeros((41, 41, 3), np.float32)
    impulse[20, 20] = 1.0
    shifts = {}
    for sign in (+1, -1):
        radius = np.full((41, 41), 5.0 * sign, np.float32)
        left = spatially_varying_blur(impulse, radius, view_psf("left"))
        right = spatially_varying_blur(impulse, radius, view_psf("right"))
        shifts[sign] = (_centroid_x(left) - 20, _centroid_x(right) - 20)
    expected = 4 * 5.0 / (3 * np.pi)  # centroid of a half disk of radius 5
    assert shifts[+1][0] == pytest.approx(-expected, rel=0.05) and shifts[+1][1] == pytest.approx(expected, rel=0.05)
    assert shifts[-1][0] == pytest.approx(expected, rel=0.05) and shifts[-1][1] == pytest.approx(-expected, rel=0.05)
    in_focus = spatially_varying_blur(impulse, np.zeros((41, 41), np.float32), view_psf("left"))
    np.testing.assert_array_equal(in_focus, impulse)


def test_spatially_varying_blur_matches_uniform_blur_and_interpolates(rocket):
    image = rocket[:64, :80].astype(np.float32) / 255
    for r in (0.0, 3.0):
        uniform = spatially_varying_blur(image, np.full(image.shape[:2], r, np.float32))
        np.testing.assert_allclose(uniform, psf_blur(image, disk_psf(r)), atol=1e-6)
    half_way = spatially_varying_blur(image, np.full(image.shape[:2], 2.25, np.float32))
    np.testing.assert_allclose(half_way, 0.5 * psf_blur(image, disk_psf(2.0)) + 0.5 * psf_blur(image, disk_psf(2.5)), atol=1e-6)


def test_generator_is_deterministic_by_seed_and_physical(rocket):
    sharp = rocket[:96, :128].astype(np.float32) / 255
    recipe = DefocusRecipe(max_radius=(3.0, 5.0), bits=(8,), dual_pixel=True)
    a = synthesize_defocus(sharp, recipe, np.random.default_rng(7))
    b = synthesize_defocus(sharp, recipe, np.random.default_rng(7))
    c = synthesize_defocus(sharp, recipe, np.random.default_rng(8))
    for view in ("center", "left", "right", "radius"):
        np.testing.assert_array_equal(getattr(a, view), getattr(b, view))
    assert not np.array_equal(a.center, c.center)
    single = synthesize_defocus(sharp, DefocusRecipe(max_radius=(3.0, 5.0), bits=(8,)), np.random.default_rng(7))
    np.testing.assert_array_equal(single.center, a.center)  # the dual-pixel views draw after the centre view
    assert single.left is None and 3.0 <= np.abs(a.radius).max() <= 5.0 + 1e-5
    assert np.allclose(a.center * 255, np.rint(a.center * 255), atol=1e-3)  # on the 8-bit grid
    assert np.abs(a.center - sharp).mean() > 0.005  # it did blur


def test_in_focus_scenes_and_recipe_overrides(rocket):
    sharp = rocket[:64, :64].astype(np.float32) / 255
    base = DefocusRecipe(max_radius=(3.0, 5.0), bits=(16,), read_noise=(0.0, 0.0), shot_noise=(0.0, 0.0))
    focused = recipe_with(base, {"in_focus_prob": "1"})
    sample = synthesize_defocus(sharp, focused, np.random.default_rng(0))
    assert not sample.radius.any() and np.abs(sample.center - sharp).max() < 1e-4  # left sharp (16-bit rounding)
    # a zero share draws nothing, so the default recipe's realisations (and the test split) are unchanged
    again = synthesize_defocus(sharp, recipe_with(base, {"in_focus_prob": "0"}), np.random.default_rng(0))
    np.testing.assert_array_equal(again.center, synthesize_defocus(sharp, base, np.random.default_rng(0)).center)
    assert recipe_with(base, {"max_radius": "1,2", "bits": "8"}).max_radius == (1.0, 2.0)
    # a target with a depth of field of its own: sharp in front of the focal depth, blurred behind it
    bokeh = synthesize_defocus(sharp, recipe_with(focused, {"bokeh_prob": "1"}), np.random.default_rng(0))
    changed = np.abs(bokeh.target - sharp).max(axis=2) > 0.02
    assert 0.05 < changed.mean() < 0.95 and np.abs(bokeh.center - bokeh.target).max() < 1e-4
    for bad, message in [({"radius": "1"}, "unknown recipe field 'radius'"), ({"max_radius": "4"}, "needs low,high"),
                         ({"in_focus_prob": "often"}, "in_focus_prob='often'"),
                         ({"bokeh_prob": "1.5"}, "a probability, between 0 and 1"),
                         ({"photo_scale": "0,1"}, "must be positive")]:  # fmt: skip
        with pytest.raises(SwintormerError, match=message):
            recipe_with(base, bad)


def test_quantize_levels():
    x = np.linspace(0, 1, 1000, dtype=np.float32)
    assert len(np.unique(quantize(x, 8))) == 256
    assert np.abs(quantize(x, 16) - x).max() <= 0.5 / 65535 + 1e-7


def test_photo_split_is_fixed_and_holds_out_the_sample_and_duplicates():
    test = {p.name for p in split_photos("test")}
    train = {p.name for p in split_photos("train")}
    assert {"chelsea", "rocket"} <= test and not test & train
    assert all(p.source != "cat" for p in PHOTOS)  # skimage's cat IS chelsea
    stereo = {p.split for p in PHOTOS if p.source == "stereo_motorcycle"}
    assert stereo == {"train"}
    sources = {p.source for p in split_photos("test")}
    assert not sources & {p.source for p in split_photos("train")}  # across packages too (PyWavelets' camera)
    gray = load_photo(next(p for p in PHOTOS if p.name == "camera"), max_side=64)
    assert gray.shape == (64, 64, 3) and np.array_equal(gray[:, :, 0], gray[:, :, 2])
    assert {p.package for p in split_photos("train")} == {"skimage", "pywt", "sklearn", "matplotlib"}


@pytest.mark.parametrize("name", ["aero", "china", "grace_hopper"])
def test_photographs_of_the_train_extra_load_as_rgb(name):
    photo = next(p for p in PHOTOS if p.name == name)
    image = load_photo(photo, max_side=100)
    assert image.dtype == np.float32 and image.shape[2] == 3 and max(image.shape[:2]) == 100
    assert 0 <= image.min() and image.max() <= 1 and image.std() > 0.05


def test_a_missing_photo_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # what `import sklearn` meets when it is not installed
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(SwintormerError, match=r"ships with scikit-learn, which is not installed: pip install 'swintormer\[train\]'"):
        load_photo(next(p for p in PHOTOS if p.name == "china"))


def test_exported_photographs_stand_in_for_a_missing_package(monkeypatch, tmp_path):
    from swintormer.data.photos import PHOTO_DIR_ENV, export_photos, main

    china = next(p for p in PHOTOS if p.name == "china")
    original = load_photo(china)
    assert main(["--export", str(tmp_path)]) == 0  # the CLI a GPU session's preparation runs
    assert sorted(f.stem for f in tmp_path.glob("*.png")) == sorted(p.name for p in PHOTOS)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    monkeypatch.setenv(PHOTO_DIR_ENV, str(tmp_path))
    np.testing.assert_array_equal(load_photo(china), original)  # the very same pixels
    (tmp_path / "china.png").unlink()
    with pytest.raises(SwintormerError, match=f"or set {PHOTO_DIR_ENV}"):
        load_photo(china)
    assert export_photos(tmp_path / "one", [next(p for p in PHOTOS if p.name == "coins")])[0].is_file()


def test_scaled_window_zooms_out_and_keeps_the_default_draws():
    ramp = np.tile(np.arange(300, dtype=np.float32)[None, :, None] / 300, (200, 1, 3))
    plain = scaled_window(ramp, 64, (1.0, 1.0), np.random.default_rng(3))
    y, x = crop_window(200, 300, 64, np.random.default_rng(3))
    np.testing.assert_array_equal(plain, ramp[y : y + 64, x : x + 64])  # (1, 1) draws nothing extra
    half = scaled_window(ramp, 64, (0.5, 0.5), np.random.default_rng(3))
    assert half.shape == (64, 64, 3)
    np.testing.assert_allclose(np.diff(half[32, 8:56, 0]), 2 / 300, rtol=1e-3)  # twice the content per pixel
    small = scaled_window(ramp[:40, :40], 64, (0.8, 0.9), np.random.default_rng(0))  # padded, then resized
    assert small.shape == (64, 64, 3) and 0 <= small.min() and small.max() <= 1


def test_photo_collage_overlays_anti_aliased_ellipses_of_other_photographs():
    base = np.zeros((96, 96, 3), dtype=np.float32)
    others = [np.ones((120, 150, 3), dtype=np.float32)]  # a white "photograph": coverage shows as brightness
    rng = np.random.default_rng(5)
    out = photo_collage(base, others, (3, 3), (1.0, 1.0), rng)
    assert out.shape == base.shape and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    covered = out[:, :, 0]
    assert 0.02 < (covered > 0.5).mean() < 0.98  # some of the window covered, not all
    edge = (covered > 0.05) & (covered < 0.95)
    assert edge.any() and edge.mean() < 0.2  # anti-aliased boundaries: a thin band of partial coverage
    again = photo_collage(base, others, (3, 3), (1.0, 1.0), np.random.default_rng(5))
    np.testing.assert_array_equal(out, again)  # deterministic by seed
    with pytest.raises(SwintormerError, match="1 <= LOW <= HIGH"):
        recipe_with(DefocusRecipe(), {"collage_layers": "4,2"})


def test_collage_and_color_shares_change_crops_only_when_asked():
    photos = split_photos("train")[:3]
    images = [load_photo(p, max_side=160) for p in photos]
    base = DefocusRecipe(max_radius=(1.0, 2.0), bits=(16,))

    def crop(recipe: DefocusRecipe, index: int = 4) -> np.ndarray:
        return SyntheticPairs(photos, recipe, crop=32, seed=2, augment=False, images=images).sample(index).target

    plain = crop(base)
    np.testing.assert_array_equal(plain, crop(recipe_with(base, {"collage_prob": "0", "color_prob": "0"})))  # draws nothing
    assert not np.array_equal(plain, crop(recipe_with(base, {"collage_prob": "1"})))
    colour = recipe_with(base, {"color_prob": "1"})
    permuted = [crop(colour, i) for i in range(12)]
    originals = [crop(base, i) for i in range(12)]
    assert any(not np.array_equal(p, o) for p, o in zip(permuted, originals))
    for p, o in zip(permuted, originals):  # the same window (drawn before the colour draw), channels permuted
        assert any(np.array_equal(p, o[:, :, list(order)]) for order in itertools.permutations(range(3)))


def test_augmentations_are_identical_across_views_and_all_distinct():
    rng = np.random.default_rng(0)
    inputs = rng.random((6, 10, 6), dtype=np.float32)
    target = inputs[:, :, :3] * 2 + 1  # a pixelwise function of the input: survives only identical transforms
    seen = set()
    for k in range(AUGMENTATIONS):
        a, t = augment([inputs, target], k)
        np.testing.assert_array_equal(t, a[:, :, :3] * 2 + 1)
        seen.add(a.tobytes() + bytes(a.shape))
    assert len(seen) == AUGMENTATIONS
    a, t = augment([inputs, target], 5)  # a quarter turn: [6, 10] -> [10, 6]
    batch = collate([Pair(a, t), Pair(a, t)])
    assert batch["input"].shape == (2, 6, 10, 6) and batch["target"].shape == (2, 3, 10, 6)


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    write_synthetic_split(root, "test", levels=(3.0,), max_side=64, progress=False)
    return root


def test_written_split_round_trips_16_bit_and_pairs_up(synthetic_root):
    split = scan_split(find_split(synthetic_root), "dual")
    assert len(split.pairs) == len(split_photos("test"))
    assert split.categories["chelsea_r3"] == "indoor" and split.categories["rocket_r3"] == "outdoor"
    inputs, target = read_pair(split.pairs[0])
    assert inputs.shape[2] == 6 and inputs.dtype == np.uint16 and target.dtype == np.uint16
    name = split.pairs[0].name
    # regenerate the same realisation: the files hold it exactly, to 16 bits
    from swintormer.data.writer import synthetic_jobs

    job = next(j for j in synthetic_jobs("test", levels=(3.0,)) if j[0] == name)
    sample = synthesize_defocus(load_photo(job[1], 64), job[2], np.random.default_rng(job[3]))
    np.testing.assert_array_equal(read_image(split.pairs[0].inputs[0]).array, np.rint(sample.right * 65535).astype(np.uint16))


def test_seen_split_is_the_test_recipe_on_the_training_photographs():
    from swintormer.data.writer import synthetic_jobs

    seen, test = synthetic_jobs("seen", levels=(2.0, 4.0)), synthetic_jobs("test", levels=(2.0, 4.0))
    assert {j[1].name for j in seen} == {p.name for p in split_photos("train")} and len(seen) == 2 * len(split_photos("train"))
    assert {j[2] for j in seen} == {j[2] for j in test}  # the same two level recipes
    assert not {j[3] for j in seen} & {j[3] for j in test}  # realisations of their own
    with pytest.raises(SwintormerError, match="unknown synthetic split 'val'"):
        synthetic_jobs("val")


def test_dpdd_layout_errors_are_clear(synthetic_root, tmp_path):
    with pytest.raises(SwintormerError, match="not a DPDD-layout folder"):
        find_split(tmp_path)
    broken = tmp_path / "test"
    for view in ("target", "inputC"):
        (broken / view).mkdir(parents=True)
    img = np.zeros((16, 16, 3), np.uint16)
    write_image(broken / "target" / "a.png", img)
    write_image(broken / "target" / "b.png", img)
    write_image(broken / "inputC" / "a.png", img)
    with pytest.raises(SwintormerError, match="inputC/ has 1 images but target/ has 2"):
        scan_split(broken, "single")
    write_image(broken / "inputC" / "b.png", img.astype(np.uint8))
    with pytest.raises(SwintormerError, match="mixes bit depths"):
        scan_split(broken, "single")
    write_image(broken / "inputC" / "b.png", np.zeros((16, 20, 3), np.uint16))
    with pytest.raises(SwintormerError, match="different sizes"):
        scan_split(broken, "single")
    with pytest.raises(SwintormerError, match="missing folder"):
        scan_split(broken, "dual")


def test_dpdd_test_set_categories(tmp_path):
    assert len(DPDD_INDOOR) == 37 and max(DPDD_INDOOR) < DPDD_TEST_COUNT
    from swintormer.data.dpdd import _categories

    names = [f"img{i}" for i in range(DPDD_TEST_COUNT)]
    cats = _categories(tmp_path, names)
    assert cats["img8"] == "indoor" and cats["img0"] == "outdoor" and list(cats.values()).count("indoor") == 37
    (tmp_path / "categories.json").write_text(json.dumps({"img0": "kitchen"}))
    with pytest.raises(SwintormerError, match="indoor"):
        _categories(tmp_path, names)
