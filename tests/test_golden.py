"""The bundled sample through the command line gives the stored golden output, on every backend.

The server gives it too (``tests/test_serving.py``). A change that moves a pixel by more than
one level, or the PSNR by more than 0.02 dB, fails here.
"""

from __future__ import annotations

import pytest

from swintormer.cli import main
from swintormer.imageio import read_image

from golden import BLURRY, assert_golden, reference


@pytest.mark.parametrize("backend", ["torch", pytest.param("onnxruntime", marks=pytest.mark.slow)])
def test_deblur_command_gives_the_golden_output(capsys, tmp_path, backend):
    out = tmp_path / "sample.png"
    code = main(["deblur", str(BLURRY), "-o", str(out), "--backend", backend])
    err = capsys.readouterr().err
    assert code == 0, err
    assert_golden(read_image(out).array, f"swintormer deblur --backend {backend}")


def test_golden_check_catches_an_unchanged_input():
    """The check itself can fail: the blurry input is not the golden output."""
    blurry = read_image(BLURRY).array
    assert blurry.shape == reference().shape
    with pytest.raises(AssertionError):
        assert_golden(blurry, "the input")
