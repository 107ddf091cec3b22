"""``swintormer train``: train a stage (the restorer; the diffusion denoiser where installed)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path

from swintormer.errors import SwintormerError

log = logging.getLogger(__name__)

EPILOG = """examples:
  swintormer train --synthetic --model swintormer-tiny --out runs/tiny           # bundled photographs
  swintormer train --data DPDD --model swintormer-dpdd --crop 256 --batch 9 --out runs/dpdd   # the DPDD layout
  swintormer train --data DPDD --model swintormer-dpdd --out runs/dpdd --resume auto
"""


def _add_data_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    src = g.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", metavar="DIR", help="DPDD-layout root (train/, optional val/ with inputC|inputL|inputR|target)")
    src.add_argument("--synthetic", action="store_true", help="the bundled training photographs, defocused on the fly")
    g.add_argument("--crop", type=int, default=128, help="training crop size, a multiple of what the model needs (default 128)")
    g.add_argument("--cache", action="store_true", help="keep decoded DPDD images in memory (small datasets)")
    g.add_argument("--recipe", action="append", default=[], metavar="FIELD=VALUE",
                   help="with --synthetic: change a field of the defocus recipe, repeatable, e.g. in_focus_prob=0.2, bokeh_prob=0.3, photo_scale=0.6,1, collage_prob=0.5, color_prob=0.5, "
                        "max_radius=0.5,8, read_noise=0,0.003 (see swintormer/data/synthetic.py); validation keeps the default")


def _add_optim_options(p: argparse.ArgumentParser) -> None:
    from swintormer.training import TrainConfig

    d = TrainConfig()
    g = p.add_argument_group("optimisation (defaults: the reference's)")
    g.add_argument("--steps", type=int, default=d.steps, help=f"optimisation steps (default {d.steps})")
    g.add_argument("--batch", type=int, default=d.batch, help=f"crops per step (default {d.batch})")
    g.add_argument("--lr", type=float, default=d.lr, help=f"peak AdamW learning rate (default {d.lr})")
    g.add_argument("--min-lr", type=float, default=d.min_lr, help=f"learning rate at the end of the cosine (default {d.min_lr})")
    g.add_argument("--weight-decay", type=float, default=d.weight_decay, help=f"AdamW weight decay (default {d.weight_decay})")
    g.add_argument("--warmup", type=int, default=d.warmup, help=f"linear warm-up steps (default {d.warmup})")
    g.add_argument("--clip-grad", type=float, default=d.clip_grad, help=f"gradient-norm clipping, 0 = off (default {d.clip_grad}, the reference)")
    g.add_argument("--ema", type=float, default=d.ema_decay, help=f"EMA decay of the saved weights, 0 = off (default {d.ema_decay})")
    g.add_argument("--amp", choices=("auto", "off", "bf16", "fp16"), default="auto", help="mixed precision on CUDA (default auto: bf16 where supported)")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train a model (L1 [+ perceptual], AdamW, warm-up + cosine, EMA, resumable)",
        description="Train a stage on a DPDD-layout folder or on the bundled photographs with synthetic defocus. "
        "Writes OUT/last.safetensors (resumable), OUT/model.safetensors (EMA weights, when finished), "
        "OUT/train.csv, OUT/val.csv and OUT/summary.json.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from swintormer.training.stages import STAGES

    p.add_argument("--stage", default="restorer", help=f"what to train: {', '.join(sorted(STAGES))} (default restorer)")
    p.add_argument("--model", metavar="NAME", help="registered variant to train from scratch (see `swintormer models`)")
    p.add_argument("--init", metavar="CKPT", help="start from the weights of one of our checkpoints instead")
    p.add_argument("--out", required=True, metavar="DIR", help="run folder for checkpoints and logs")
    p.add_argument("--resume", metavar="CKPT", help="continue a run from its last.safetensors ('auto': OUT/last.safetensors if present)")
    p.add_argument("--seed", type=int, default=0, help="seeds the initialisation and the data (default 0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--workers", type=int, metavar="N", help="data-loader processes preparing batches ahead "
                   "(default: 0 on a CPU, where they would take the cores training needs; on a GPU, one per "
                   "core but one, at most 16). Batches are the same whatever N")
    p.add_argument("--time-limit", type=float, metavar="MIN", help="stop (resumably) after this many minutes")
    p.add_argument("--log-every", type=int, default=10, help="steps per CSV row (default 10)")
    p.add_argument("--save-every", type=int, default=500, help="steps between checkpoints (default 500)")
    p.add_argument("--val-every", type=int, default=500, help="steps between validations, 0 = never (default 500)")
    p.add_argument("--val-batches", type=int, default=4, help="batches per validation (default 4)")
    p.add_argument("--perceptual-weights", metavar="PATH", help="local VGG16 weights (torchvision layout) to add a perceptual loss")
    p.add_argument("--perceptual-weight", type=float, default=0.01, help="weight of the perceptual loss (default 0.01)")
    p.add_argument("--stage-option", action="append", default=[], metavar="KEY=VALUE", help="stage-specific option (repeatable): restorer loss=l1|psnr (minus the mean per-image PSNR, the evaluation's average); prior-restorer restorer=CKPT, prior_steps=N")
    _add_data_options(p)
    _add_optim_options(p)
    p.set_defaults(func=run)


def _key_values(items: list[str], option: str, key: str = "KEY") -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}`` for a repeatable ``option KEY=VALUE``."""
    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SwintormerError(f"{option} needs {key}=VALUE, got {item!r}")
        pairs[name] = value
    return pairs


def _stage_options(args: argparse.Namespace):
    from swintormer.training import StageOptions

    return StageOptions(
        model=args.model, init=Path(args.init) if args.init else None,
        perceptual_weights=Path(args.perceptual_weights) if args.perceptual_weights else None,
        perceptual_weight=args.perceptual_weight, extra=_key_values(args.stage_option, "--stage-option"),
    )


def _config(args: argparse.Namespace, device: "torch.device") -> "TrainConfig":
    from swintormer.training import TrainConfig

    for name in ("steps", "batch", "log_every"):
        if getattr(args, name) < 1:
            raise SwintormerError(f"--{name.replace('_', '-')} must be at least 1")
    if args.workers is not None and args.workers < 0:
        raise SwintormerError("--workers must be 0 (batches prepared in the training process) or more")
    return TrainConfig(
        steps=args.steps, batch=args.batch, lr=args.lr, min_lr=args.min_lr, weight_decay=args.weight_decay,
        betas=(0.9, 0.99), warmup=args.warmup, clip_grad=args.clip_grad or None, ema_decay=args.ema, amp=args.amp,
        log_every=args.log_every, save_every=args.save_every, val_every=args.val_every, val_batches=args.val_batches,
        workers=_workers(args.workers, device),
    )


def _workers(asked: int | None, device: "torch.device") -> int:
    if asked is not None:
        return asked
    return 0 if device.type == "cpu" else max(0, min(16, (os.cpu_count() or 1) - 1))


def _recipe(items: list[str]):
    from swintormer.data.synthetic import TRAIN_RECIPE, recipe_with

    return recipe_with(TRAIN_RECIPE, _key_values(items, "--recipe", "FIELD"))


def _resume_path(args: argparse.Namespace) -> Path | None:
    if args.resume == "auto":
        path = Path(args.out) / "last.safetensors"
        return path if path.is_file() else None
    return Path(args.resume) if args.resume else None


def run(args: argparse.Namespace) -> int:
    import torch

    from swintormer.data.sources import training_sources
    from swintormer.backends.torch import resolve_device
    from swintormer.training import Trainer, build_task

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    config = _config(args, device)
    torch.manual_seed(args.seed)
    task = build_task(args.stage, _stage_options(args))
    if args.crop % task.size_multiple:
        raise SwintormerError(f"--crop {args.crop} is not a multiple of {task.size_multiple}, which this model needs")
    train, val = training_sources(args.data, task.in_channels, args.crop, args.seed, args.cache, _recipe(args.recipe))
    trainer = Trainer(task, train, config, args.out, device, val_source=val if args.val_every else None)
    resume = _resume_path(args)
    if resume is not None:
        trainer.resume(resume)
    limit = args.time_limit * 60 if args.time_limit else None
    result = trainer.fit(time_limit=limit)
    _write_summary(args, result, device)
    if result.finished:
        log.info("finished %d steps in %.1f min; model: %s", result.step, result.seconds / 60, result.model)
    else:
        log.info("stopped at step %d of %d (model so far: %s); continue with --resume %s", result.step, config.steps, result.model, result.checkpoint)
    return 0


def _write_summary(args: argparse.Namespace, result, device) -> None:
    """``OUT/summary.json``: the arguments, versions and where the run ended (the seconds are this invocation's)."""
    import torch

    summary = {
        "arguments": {k: v for k, v in vars(args).items() if k != "func"},
        "stage": args.stage, "seed": args.seed, "step": result.step, "finished": result.finished,
        "seconds": round(result.seconds, 1), "last_loss": result.loss, "validation": result.val,
        "device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__,
        "python": platform.python_version(), "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    path = Path(args.out) / "summary.json"
    path.write_text(json.dumps(summary, indent=1) + "\n")
