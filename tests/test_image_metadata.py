"""What a photo file says besides its pixels survives a deblur: orientation, colour profile, alpha."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from swintormer.cli import main
from swintormer.image_metadata import read_metadata
from swintormer.imageio import read_image, write_image


@pytest.fixture(scope="module")
def photo(rocket) -> np.ndarray:
    """A real photograph, not square, so every turn shows in the shape: ``[48, 72, 3]`` uint8."""
    return np.ascontiguousarray(rocket[100:148, 150:222])


@pytest.fixture(scope="module")
def rgb_profile() -> bytes:
    """A real RGB ICC profile (LittleCMS's sRGB: Pillow makes no other RGB one)."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _with_exif_orientation(pixels: np.ndarray, orientation: int, fmt: str) -> bytes:
    image, exif = Image.fromarray(pixels), Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))
    return buffer.getvalue()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_pixels_come_out_the_way_viewers_show_them(tmp_path, photo, orientation):
    """Every EXIF orientation turns the pixels exactly as Pillow's exif_transpose does (PNG, exact)."""
    path = tmp_path / "turned.png"
    path.write_bytes(_with_exif_orientation(photo, orientation, "PNG"))
    assert read_metadata(path.read_bytes()).orientation == orientation
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    got = read_image(path).array
    assert got.shape == expected.shape and np.array_equal(got, expected)


def test_a_phone_jpeg_is_deblurred_upright(tmp_path, photo):
    """A portrait JPEG stored landscape with orientation 6 comes back as a portrait image."""
    src = tmp_path / "phone.jpg"
    src.write_bytes(_with_exif_orientation(photo, 6, "JPEG"))
    shown = np.asarray(ImageOps.exif_transpose(Image.open(src)).convert("RGB")).astype(np.int16)
    assert np.abs(read_image(src).array.astype(np.int16) - shown).mean() < 1.0  # two libjpeg builds, same image
    assert main(["deblur", str(src), "-o", str(tmp_path / "out.png"), "--backend", "torch"]) == 0
    assert read_image(tmp_path / "out.png").array.shape == (72, 48, 3)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_the_colour_profile_goes_into_the_output(capsys, tmp_path, photo, rgb_profile, suffix):
    src = tmp_path / f"in{suffix}"
    Image.fromarray(photo).save(src, icc_profile=rgb_profile)
    assert read_image(src).icc_profile == rgb_profile
    out = tmp_path / f"out{suffix}"
    assert main(["deblur", str(src), "-o", str(out), "--backend", "torch", "--compare"]) == 0
    assert Image.open(out).info.get("icc_profile") == rgb_profile
    assert Image.open(tmp_path / "out_compare.png").info.get("icc_profile") == rgb_profile
    restored = read_image(out)  # still a whole, undamaged file for the strict decoder
    assert restored.icc_profile == rgb_profile and restored.array.shape == photo.shape
    assert "colour profile" not in capsys.readouterr().err


def test_a_profile_longer_than_one_jpeg_segment_is_split_and_read_back(tmp_path, photo):
    """JPEG APP2 segments hold 65519 profile bytes: a 150 kB profile takes three, in order."""
    noise = bytes(np.random.default_rng(0).integers(0, 256, 150_000, dtype=np.uint8))
    profile = noise[:16] + b"RGB " + noise[20:]  # the header's colour space, the rest opaque
    write_image(tmp_path / "big.jpg", photo, icc_profile=profile)
    assert Image.open(tmp_path / "big.jpg").info["icc_profile"] == profile
    assert read_image(tmp_path / "big.jpg").icc_profile == profile


def test_formats_without_a_profile_say_so(caplog, tmp_path, photo, rgb_profile):
    write_image(tmp_path / "out.tif", photo, icc_profile=rgb_profile)
    assert "colour profile is not written to .tif files" in caplog.text and "write .png or .jpg" in caplog.text


def test_a_profile_for_other_pixels_is_not_written(caplog, tmp_path, photo, rgb_profile):
    """A Lab (or CMYK) profile does not describe the RGB pixels written, nor an RGB one gray pixels."""
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    write_image(tmp_path / "lab.png", photo, icc_profile=lab)
    write_image(tmp_path / "gray.png", photo[:, :, :1], icc_profile=rgb_profile)
    assert "describes Lab pixels, not the RGB ones written" in caplog.text
    assert "describes RGB pixels, not the GRAY ones written" in caplog.text
    assert "icc_profile" not in Image.open(tmp_path / "lab.png").info and "icc_profile" not in Image.open(tmp_path / "gray.png").info


@pytest.mark.parametrize("bits", [8, 16])
def test_alpha_is_carried_over_unchanged(tmp_path, photo, bits):
    """An RGBA photo's transparency comes back bit for bit; its colour is restored, not copied."""
    colour = photo.astype(np.uint16) * 257 if bits == 16 else photo
    ramp = np.linspace(0, 1, photo.shape[1], dtype=np.float32)[None, :, None].repeat(photo.shape[0], axis=0)
    alpha = (ramp * (65535 if bits == 16 else 255)).astype(colour.dtype)
    src = write_image(tmp_path / "in.png", colour, alpha=alpha)
    assert main(["deblur", str(src), "-o", str(tmp_path / "out.png"), "--backend", "torch"]) == 0
    out = read_image(tmp_path / "out.png")
    assert out.array.dtype == colour.dtype and out.alpha is not None and np.array_equal(out.alpha, alpha)
    assert not np.array_equal(out.array, colour)


def test_gray_with_alpha_and_outputs_without_alpha(capsys, tmp_path, photo):
    """Gray + alpha comes back RGBA (OpenCV writes no 2-channel PNG); a JPEG output warns that the alpha is dropped."""
    gray = Image.fromarray(photo).convert("L")
    Image.merge("LA", (gray, Image.new("L", gray.size, 99))).save(tmp_path / "la.png")
    assert main(["deblur", str(tmp_path / "la.png"), "-o", str(tmp_path / "la-out.png"), "--backend", "torch"]) == 0
    out = read_image(tmp_path / "la-out.png")
    assert out.alpha is not None and (out.alpha == 99).all()
    assert np.array_equal(out.array[:, :, 0], out.array[:, :, 2])  # still gray
    assert main(["deblur", str(tmp_path / "la.png"), "-o", str(tmp_path / "la-out.jpg"), "--backend", "torch"]) == 0
    assert "no alpha channel; the input's transparency is not kept" in capsys.readouterr().err
    assert read_image(tmp_path / "la-out.jpg").alpha is None


def test_an_empty_file_says_it_is_empty(capsys, tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    assert main(["deblur", str(tmp_path / "empty.png"), "-o", str(tmp_path / "o.png"), "--backend", "torch"]) == 2
    assert "empty.png is empty (0 bytes)" in capsys.readouterr().err
