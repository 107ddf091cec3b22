"""The prior's training stages chained end to end: autoencoder -> denoiser -> prior restorer -> deblur."""

from __future__ import annotations

import pytest
import torch

from swintormer.checkpoint import save_checkpoint
from swintormer.data.photos import load_photo, split_photos
from swintormer.data.sources import SyntheticPairs
from swintormer.data.synthetic import DefocusRecipe
from swintormer.errors import SwintormerError
from swintormer.backends import BackendRequest
from swintormer.backends.torch import tile_fn
from swintormer.model import DeblurModel
from swintormer.tiling import TilingConfig, tiled_apply
from swintormer.registry import build_model
from swintormer.training import StageOptions, TrainConfig, Trainer, build_task

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = dict(batch=2, warmup=1, log_every=1, save_every=0, val_every=0)


def _run(stage: str, options: StageOptions, folder, crop: int, steps: int = 3):
    torch.manual_seed(0)
    task = build_task(stage, options)
    source = SyntheticPairs(split_photos("train")[:1], DefocusRecipe(max_radius=(2.0, 3.0)), crop=crop, seed=1)
    trainer = Trainer(task, source, TrainConfig(steps=steps, **FAST), folder)
    result = trainer.fit(progress=False)
    return result, trainer


@pytest.mark.slow
def test_prior_stages_chain_into_a_deployable_model(tmp_path):
    ae, _ = _run("autoencoder", StageOptions(model="ae-f4-tiny"), tmp_path / "ae", crop=32)
    den, _ = _run("denoiser", StageOptions(model="denoiser-tiny", init=ae.model), tmp_path / "den", crop=32)
    plain = tmp_path / "plain.safetensors"
    torch.manual_seed(1)
    base = build_model("swintormer-tiny")
    save_checkpoint(plain, {"restorer": base}, {"model": "swintormer-tiny"})
    options = StageOptions(model="swintormer-tiny-prior", init=den.model, extra={"restorer": str(plain), "prior_steps": "2"})
    final, trainer = _run("prior-restorer", options, tmp_path / "prior", crop=128, steps=2)
    model = DeblurModel.load(final.model)
    assert model.has_prior and model.prior.steps == 4 and model.name == "swintormer-tiny-prior"
    # the restorer started from the prior-free one: with a zero prior embedding it computes the same
    fresh = build_task("prior-restorer", options).modules["restorer"].eval()
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        assert torch.allclose(fresh(x, torch.rand(1, 3, 32, 32)), base.eval()(x), atol=1e-6)
    del trainer
    image = load_photo(split_photos("test")[0])[:200, :300]
    out = tiled_apply(tile_fn(model, BackendRequest(device="cpu")), image, 3, TilingConfig(batch=2))
    assert out.shape == (200, 300, 3)


def test_prior_stages_say_what_they_need(tmp_path):
    with pytest.raises(SwintormerError, match="needs --init"):
        build_task("denoiser", StageOptions(model="denoiser-tiny"))
    with pytest.raises(SwintormerError, match="'-prior' variant"):
        build_task("prior-restorer", StageOptions(model="swintormer-tiny", init=_ae_only(tmp_path)))
    with pytest.raises(SwintormerError, match="lacks"):
        build_task("prior-restorer", StageOptions(model="swintormer-tiny-prior", init=_ae_only(tmp_path)))
    with pytest.raises(SwintormerError, match="unknown stage options"):
        build_task("autoencoder", StageOptions(model="ae-f4-tiny", extra={"x": "1"}))


def _ae_only(folder):
    path = folder / "ae.safetensors"
    if not path.exists():
        save_checkpoint(path, {"encoder": build_model("ae-f4-tiny"), "decoder": build_model("ae-f4-tiny", part="decoder")})
    return path
