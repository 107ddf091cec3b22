"""The diffusion prior: schedulers in closed form, network shapes, deterministic sampling, training signal."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from swintormer.diffusion.config import SchedulerConfig
from swintormer.diffusion.losses import denoiser_loss, first_stage_loss
from swintormer.diffusion.prior import PriorSettings, sample_prior, tile_generators
from swintormer.diffusion.schedulers import DDIMScheduler, DDPMScheduler
from swintormer.errors import SwintormerError
from swintormer.backends import BackendRequest
from swintormer.backends.torch import tile_fn
from swintormer.model import DeblurModel
from swintormer.registry import build_model


def test_reference_schedule_closed_form():
    sched = DDPMScheduler()
    assert sched.betas[0].item() == pytest.approx(0.0015, rel=1e-12)
    assert sched.betas[-1].item() == pytest.approx(0.0155, rel=1e-12)
    # linear in sqrt(beta): the midpoint of sqrt(beta) is the mean of the endpoints' square roots
    sqrt_b = sched.betas.sqrt().numpy()
    assert np.allclose(np.diff(sqrt_b), (0.0155**0.5 - 0.0015**0.5) / 999)
    assert sched.alphas_cumprod[0].item() == pytest.approx(0.9985)
    expected_last = np.prod(1 - np.linspace(0.0015**0.5, 0.0155**0.5, 1000) ** 2)
    assert sched.alphas_cumprod[-1].item() == pytest.approx(expected_last, rel=1e-10)
    lin = DDPMScheduler(SchedulerConfig(num_train_timesteps=100, beta_schedule="linear"))
    assert np.allclose(np.diff(lin.betas.numpy()), (0.0155 - 0.0015) / 99)


@pytest.mark.parametrize("n, first, count", [(5, 801, 5), (10, 901, 10), (20, 951, 20), (50, 981, 50)])
def test_ddim_timesteps(n, first, count):
    s = DDIMScheduler()
    s.set_timesteps(n)
    t = s.timesteps.tolist()
    assert len(t) == count and t[0] == first and t[-1] == 1
    assert all(a - b == 1000 // n for a, b in zip(t, t[1:]))


def test_paper_schedule_of_100_steps():
    s = DDIMScheduler(SchedulerConfig(num_train_timesteps=100))
    s.set_timesteps(20)
    assert s.timesteps.tolist() == list(range(96, 0, -5))


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_add_noise_then_ddim_step_with_true_noise_recovers_x0(eta):
    gen = torch.Generator().manual_seed(3)
    x0 = torch.rand(4, 3, 8, 8, generator=gen) * 2 - 1
    noise = torch.randn(4, 3, 8, 8, generator=gen)
    s = DDIMScheduler(eta=eta)
    s.set_timesteps(20)
    for t in (951, 451, 1):
        xt = s.add_noise(x0, noise, torch.full((4,), t))
        prev, pred_x0 = s.step(noise, t, xt, tile_generators(0, [(0, i) for i in range(4)]))
        assert torch.allclose(pred_x0, x0, atol=1e-4)
        if eta == 0.0:  # deterministic DDIM lands exactly on the previous marginal's mean
            t_prev = t - 50 if t > 1 else 0
            expected = s.add_noise(x0, noise, torch.full((4,), t_prev)) if t > 1 else None
            if expected is not None:
                assert torch.allclose(prev, expected, atol=1e-4)


def test_step_rejects_unknown_timestep_and_bad_counts():
    s = DDIMScheduler()
    with pytest.raises(SwintormerError):
        s.set_timesteps(0)
    s.set_timesteps(10)
    with pytest.raises(SwintormerError, match="not in this schedule"):
        s.step(torch.zeros(1), 500, torch.zeros(1))


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("tile", [256, 512])
def test_encoder_and_denoiser_shapes(batch, tile):
    enc, dec, den = build_model("ae-f4-tiny"), build_model("ae-f4-tiny", part="decoder"), build_model("denoiser-tiny")
    x = torch.rand(batch, 3, tile, tile)
    with torch.no_grad():
        z = enc(x)
        assert z.shape == (batch, 3, tile // 4, tile // 4) and z.abs().max() <= 1
        assert dec(z).shape == x.shape
        eps = den(torch.cat([z, z], 1), torch.randint(0, 1000, (batch,)))
    assert eps.shape == z.shape


def test_reference_sizes():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert abs(count(build_model("ldm-bsr")) / 113.62e6 - 1) < 0.02
    assert abs(count(build_model("ae-f4")) / 22.34e6 - 1) < 0.01
    assert abs(count(build_model("ae-f4", part="decoder")) / 32.96e6 - 1) < 0.01


@pytest.fixture(scope="module")
def prior_model():
    torch.manual_seed(0)
    model = DeblurModel.build("swintormer-tiny-prior")
    torch.nn.init.normal_(model.restorer.prior_embed.proj.weight, std=0.05)  # let the prior matter
    for p in model.denoiser.out.parameters():
        torch.nn.init.normal_(p, std=0.05)  # zero-init output would make eps identically 0
    return model


def test_prior_sampling_is_deterministic_and_batch_independent(prior_model):
    fn = tile_fn(prior_model, BackendRequest(device="cpu", settings=PriorSettings(steps=3, seed=7)))
    tiles = torch.rand(3, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    origins = [(0, 0), (0, 220), (220, 0)]
    a, b = fn(tiles, origins), fn(tiles, origins)
    assert torch.equal(a, b)  # bit-for-bit for a fixed seed
    one_by_one = torch.cat([fn(tiles[i : i + 1], origins[i : i + 1]) for i in range(3)])
    # The noise is bit-identical; batched convolutions round differently by ~1e-6.
    assert (a - one_by_one).abs().max() < 1e-5
    other_seed = tile_fn(prior_model, BackendRequest(device="cpu", settings=PriorSettings(steps=3, seed=8)))(tiles, origins)
    assert (a - other_seed).abs().max() > 1e-4


def test_prior_is_per_tile_and_in_range(prior_model):
    tiles = torch.rand(2, 3, 256, 256)
    enc, den = prior_model.encoder.eval(), prior_model.denoiser.eval()
    sched = DDIMScheduler()
    with torch.no_grad():
        p = sample_prior(tiles, [(0, 0), (5, 5)], enc, den, sched, PriorSettings(steps=2))
        p0 = sample_prior(tiles, [(0, 0), (5, 5)], enc, den, sched, PriorSettings(steps=0))
    assert p.shape == (2, 3, 64, 64) and 0 <= p.min() and p.max() <= 1
    assert torch.allclose(p0, (enc(tiles) + 1) / 2)
    assert not torch.equal(p[0], p[1])


def test_prior_settings_guard():
    plain = DeblurModel.build("swintormer-tiny")
    with pytest.raises(SwintormerError, match="no diffusion prior"):
        plain.settings(steps=5)
    assert plain.settings(steps=0).steps == 0


@pytest.mark.slow
def test_tiny_denoiser_eps_loss_falls_on_real_photos():
    """A few hundred steps of the denoiser objective on real photographs: the training step is wired."""
    from skimage import data

    from swintormer.data.defocus import disk_blur

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    crops = [p[100:164, 100:164].astype(np.float32) / 255 for p in (data.astronaut(), data.coffee(), data.chelsea())]
    sharp = torch.stack([torch.from_numpy(c).permute(2, 0, 1) for c in crops])
    blurry = torch.stack([torch.from_numpy(disk_blur(c, 3)).permute(2, 0, 1) for c in crops])
    encoder, denoiser = build_model("ae-f4-tiny").eval(), build_model("denoiser-tiny")
    opt = torch.optim.AdamW(denoiser.parameters(), lr=1e-3)
    sched = DDPMScheduler()
    losses = []
    for _ in range(150):
        loss = denoiser_loss(denoiser, encoder, sched, blurry, sharp, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-25:]) < 0.7 * np.mean(losses[:25])


def test_first_stage_loss_is_finite_and_differentiable():
    enc, dec = build_model("ae-f4-tiny"), build_model("ae-f4-tiny", part="decoder")
    loss = first_stage_loss(enc, dec, torch.rand(2, 3, 64, 64))
    loss.backward()
    assert torch.isfinite(loss) and enc.conv_in.weight.grad is not None
