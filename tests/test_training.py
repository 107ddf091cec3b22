"""Training: it learns, it resumes to the same trajectory, its checkpoints hold the state; the perceptual loss."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from swintormer.checkpoint import load_checkpoint, save_checkpoint
from swintormer.cli import main
from swintormer.data.sources import DPDDPairs, SyntheticPairs
from swintormer.data.photos import split_photos
from swintormer.data.synthetic import DefocusRecipe
from swintormer.errors import SwintormerError
from swintormer.registry import build_model
from swintormer.training import StageOptions, TrainConfig, Trainer, build_task
from swintormer.training.optim import warmup_cosine_lr

pytestmark = pytest.mark.usefixtures("one_thread")

#: restormer-tiny on 32x32 crops: a few hundredths of a second per step on a CPU
FAST = dict(batch=2, warmup=2, log_every=1, save_every=0, val_every=0)


@pytest.fixture(scope="module")
def photos_source():
    recipe = DefocusRecipe(max_radius=(2.0, 4.0))
    return SyntheticPairs(split_photos("train")[:2], recipe, crop=32, seed=3)


def _losses(folder) -> list[float]:
    with open(folder / "train.csv", newline="") as f:
        return [float(row["loss"]) for row in csv.DictReader(f)]


def _trainer(source, folder, **config) -> Trainer:
    torch.manual_seed(0)
    task = build_task("restorer", StageOptions(model="restormer-tiny"))
    return Trainer(task, source, TrainConfig(**{**FAST, **config}), folder)


def test_resume_reproduces_the_loss_trajectory_and_weights(photos_source, tmp_path):
    straight = _trainer(photos_source, tmp_path / "a", steps=6)
    straight.fit(progress=False)
    first = _trainer(photos_source, tmp_path / "b", steps=6)
    stopped = first.fit(stop_at=3, progress=False)
    assert stopped.step == 3 and not stopped.finished
    second = _trainer(photos_source, tmp_path / "b", steps=6)  # a fresh process would build exactly this
    second.resume(tmp_path / "b" / "last.safetensors")
    assert second.fit(progress=False).finished
    assert _losses(tmp_path / "b") == _losses(tmp_path / "a") and len(_losses(tmp_path / "a")) == 6
    for name, key in (("a", "model.safetensors"), ("b", "model.safetensors")):
        assert (tmp_path / name / key).is_file()
    ema_a = load_checkpoint(tmp_path / "a" / "last.safetensors")
    ema_b = load_checkpoint(tmp_path / "b" / "last.safetensors")
    for k, v in ema_a.restorer.state_dict().items():
        assert torch.equal(v, ema_b.restorer.state_dict()[k]), k
    for k, v in ema_a.extras.items():
        assert torch.equal(v, ema_b.extras[k]), k
    # the exported model is the EMA, not the raw weights
    raw = {k[len("train.raw.restorer."):]: v for k, v in ema_a.extras.items() if k.startswith("train.raw.restorer.")}
    model = load_checkpoint(tmp_path / "a" / "model.safetensors").restorer.state_dict()
    assert any(not torch.equal(raw[k], model[k]) for k in model)


def test_data_loader_workers_give_the_same_run(photos_source, tmp_path):
    """Batches prepared by two worker processes are the in-process ones, so the loss trajectory is too."""
    in_process = _trainer(photos_source, tmp_path / "a", steps=4)
    in_process.fit(progress=False)
    workers = _trainer(photos_source, tmp_path / "b", steps=4, workers=2)
    workers.step = 1
    batches = list(workers.batches(3))
    assert len(batches) == 2
    for step, batch in zip((1, 2), batches):
        assert all(torch.equal(batch[k], in_process.batch(step)[k]) for k in ("input", "target"))
    workers.step = 0
    workers.fit(progress=False)
    assert _losses(tmp_path / "b") == _losses(tmp_path / "a")


def test_short_run_lowers_the_loss_on_held_back_pairs(tmp_path):
    """Thirty steps on one defocused photo: the L1 on pairs it never trained on falls below the blurry input's.

    The fresh restorer starts as the identity (its output convolution is zeroed), so ``before``
    is the blurry input's own L1 and any decrease is deblurring (1.8% on the development machine).
    """
    recipe = DefocusRecipe(max_radius=(3.0, 3.0), uniform_prob=1.0, shot_noise=(0, 0), read_noise=(0, 0), bits=(16,))
    source = SyntheticPairs(split_photos("train")[:1], recipe, crop=32, seed=0)
    held_back = source.with_recipe(recipe, seed=99, augment=False)
    trainer = _trainer(source, tmp_path, steps=30, batch=4, lr=2e-3, warmup=3, clip_grad=None)
    probe = trainer.batch(0, held_back)

    def loss() -> float:
        with torch.no_grad():
            return float(trainer.task.loss_fn(trainer.task.modules, probe)[0])

    before = loss()
    trainer.fit(progress=False)
    after = loss()
    assert after < 0.99 * before, (before, after)


def test_schedule_warms_up_then_anneals():
    lrs = [warmup_cosine_lr(s, 100, 1e-3, 10, 1e-5) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:])) and lrs[-1] < 1.1e-5
    assert warmup_cosine_lr(100, 100, 1e-3, 10, 1e-5) == pytest.approx(1e-5)


def test_train_cli_on_a_dpdd_folder_writes_logs_and_checkpoints(capsys, tmp_path):
    from swintormer.data.writer import write_synthetic_split

    write_synthetic_split(tmp_path / "data", "train", variants=1, max_side=96, dual_pixel=False, progress=False)
    out = tmp_path / "run"
    args = ["train", "--data", tmp_path / "data", "--model", "restormer-tiny", "--crop", "32", "--steps", "4",
            "--batch", "2", "--warmup", "1", "--log-every", "2", "--out", out, "--cache"]
    assert main([str(a) for a in args]) == 0, capsys.readouterr().err
    assert [int(r["step"]) for r in csv.DictReader(open(out / "train.csv"))] == [2, 4]
    assert load_checkpoint(out / "model.safetensors").restorer.config.arch == "restormer"
    assert (out / "summary.json").is_file()
    code = main([str(a) for a in args[:-3] + ["--out", out, "--resume", "auto", "--steps", "4"]])
    assert code == 0  # already finished: resumes at step 4 and exits
    assert main([str(a) for a in ["train", "--synthetic", "--model", "swintormer-tiny", "--crop", "100", "--out", out]]) == 2
    assert "not a multiple of" in capsys.readouterr().err
    assert main([str(a) for a in args + ["--recipe", "in_focus_prob=0.2"]]) == 2  # a DPDD folder has its own blur
    assert "--recipe applies to --synthetic" in capsys.readouterr().err
    assert main([str(a) for a in args + ["--workers", "-1"]]) == 2
    assert "--workers must be 0" in capsys.readouterr().err


def test_dpdd_source_crops_all_views_alike(tmp_path):
    from swintormer.data.writer import write_synthetic_split

    write_synthetic_split(tmp_path, "train", variants=1, max_side=96, progress=False)
    source = DPDDPairs(tmp_path, "train", "dual", crop=24, seed=1, augment=False)
    pair = source.sample(0)
    assert pair.input.shape == (24, 24, 6) and pair.target.shape == (24, 24, 3)
    np.testing.assert_array_equal(source.sample(0).input, pair.input)  # deterministic by (seed, index)
    with pytest.raises(SwintormerError, match="smaller than"):
        DPDDPairs(tmp_path, "train", "single", crop=512).sample(0)


def test_checkpoint_extras_round_trip_and_collisions(tmp_path):
    model = build_model("restormer-tiny")
    path = save_checkpoint(tmp_path / "x.safetensors", {"restorer": model}, {"model": "restormer-tiny"}, {"train.step": torch.tensor(3)})
    assert int(load_checkpoint(path).extras["train.step"]) == 3
    with pytest.raises(ValueError, match="collides"):
        save_checkpoint(tmp_path / "y.safetensors", {"restorer": model}, None, {"restorer.extra": torch.zeros(1)})
    with pytest.raises(SwintormerError, match="no training state"):
        _trainer(SyntheticPairs(split_photos("train")[:1], crop=32), tmp_path / "r", steps=2).resume(path)


def test_perceptual_loss_from_local_vgg16_weights(tmp_path):
    from swintormer.training.perceptual import PerceptualLoss, VGG16Features, load_vgg16_features

    torch.manual_seed(0)
    state = {f"features.{k}": v for k, v in VGG16Features().features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # torchvision files carry the classifier too
    torch.save(state, tmp_path / "vgg16.pth")
    loss = PerceptualLoss(load_vgg16_features(tmp_path / "vgg16.pth"))
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    y = torch.rand(1, 3, 32, 32)
    assert float(loss(y, y)) == 0.0
    value = loss(x, y)
    value.backward()
    assert float(value.detach()) > 0 and x.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in loss.parameters())
    task = build_task("restorer", StageOptions(model="restormer-tiny", perceptual_weights=tmp_path / "vgg16.pth"))
    _, metrics = task.loss_fn({**task.modules, **task.helpers}, {"input": y, "target": y})
    assert "perceptual" in metrics
    with pytest.raises(SwintormerError, match="never downloads"):
        load_vgg16_features(tmp_path / "missing.pth")


def test_psnr_pixel_loss_is_minus_the_mean_image_psnr_and_trains():
    task = build_task("restorer", StageOptions(model="restormer-tiny", extra={"loss": "psnr"}))
    target = torch.rand(2, 3, 32, 32)
    noisy = target + torch.tensor([0.01, 0.1]).view(2, 1, 1, 1) * torch.randn(2, 3, 32, 32)
    loss, metrics = task.loss_fn(task.modules, {"input": noisy, "target": target})  # the fresh model is the identity
    per_image = 10 * torch.log10(1 / (noisy - target).pow(2).flatten(1).mean(1))
    assert float(loss.detach()) == pytest.approx(-float(per_image.mean()) / 10, rel=1e-5)
    assert metrics["psnr"] == pytest.approx(metrics["psnr_input"], abs=1e-4)  # clamped, as evaluation does
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in task.modules["restorer"].parameters())
    for extra, message in [({"loss": "l2"}, "choose from l1, psnr"), ({"los": "psnr"}, "takes only the stage option loss")]:
        with pytest.raises(SwintormerError, match=message):
            build_task("restorer", StageOptions(model="restormer-tiny", extra=extra))
