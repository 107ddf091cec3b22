"""The trainer: any :class:`~swintormer.training.tasks.TrainTask` on any pair source.

Per step: the learning rate from the warm-up + cosine schedule, the batch for that step (pairs
``step * batch ... step * batch + batch - 1`` of the source, so the data depend only on the step,
whether drawn in the training process or by ``workers`` data-loader processes ahead of it),
the task's loss under autocast (bf16, or fp16 with a grad scaler, on CUDA only), backward,
gradient-norm clipping, an AdamW step and an EMA update. Every ``save_every`` steps and at the
end it writes ``last.safetensors`` (resumable); at the end (finished or stopped) also
``model.safetensors``, the EMA weights alone, which every other command loads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

import torch

from swintormer.data.pairs import PairSource, collate
from swintormer.errors import SwintormerError
from swintormer.progress import Progress
from swintormer.training.logger import MetricsLog
from swintormer.training.optim import EMA, build_optimizer, warmup_cosine_lr
from swintormer.training.state import load_training_state, save_training_state
from swintormer.training.tasks import Batch, TrainTask

__all__ = ["StepBatches", "TrainConfig", "TrainResult", "Trainer"]

log = logging.getLogger(__name__)

Amp = Literal["auto", "off", "bf16", "fp16"]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; the defaults are the reference's (docs/architecture.md, "Reference facts") where it has one."""

    steps: int = 10_000
    batch: int = 8
    lr: float = 3e-4
    min_lr: float = 1e-6
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.99)
    warmup: int = 500
    clip_grad: float | None = 0.01
    ema_decay: float = 0.999
    amp: Amp = "auto"
    log_every: int = 10
    save_every: int = 1000
    val_every: int = 0
    val_batches: int = 4
    #: data-loader processes preparing batches ahead of the step (0: in the training process)
    workers: int = 0


@dataclass
class TrainResult:
    """Where a :meth:`Trainer.fit` call ended."""

    step: int
    finished: bool
    seconds: float
    loss: float
    checkpoint: Path
    model: Path
    val: dict[str, float]


def _amp_dtype(amp: Amp, device: torch.device) -> torch.dtype | None:
    if amp == "off" or device.type != "cuda":
        if amp in ("bf16", "fp16") and device.type != "cuda":
            log.warning("mixed precision is for CUDA devices; training in float32 on %s", device)
        return None
    if amp == "fp16" or (amp == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.float16
    return torch.bfloat16


class StepBatches(torch.utils.data.Dataset):
    """Item ``i``: the collated batch of step ``first + i`` (pairs ``step * batch`` onwards of ``source``)."""

    def __init__(self, source: PairSource, batch: int, first: int, end: int) -> None:
        self.source, self.size, self.first, self.end = source, batch, first, end

    def __len__(self) -> int:
        return max(0, self.end - self.first)

    def __getitem__(self, i: int) -> Batch:
        step = self.first + i
        return collate([self.source.sample(step * self.size + j) for j in range(self.size)])


def _quiet_worker(_: int) -> None:
    """One thread per data-loader worker (OpenCV would otherwise start one per core in each)."""
    import cv2

    cv2.setNumThreads(1)


class Trainer:
    """Train ``task`` on ``source`` into ``out_dir`` (logs and checkpoints)."""

    def __init__(
        self, task: TrainTask, source: PairSource, config: TrainConfig, out_dir: str | Path,
        device: torch.device = torch.device("cpu"), val_source: PairSource | None = None,
    ) -> None:
        self.task, self.source, self.config, self.val_source = task, source, config, val_source
        self.out_dir, self.device = Path(out_dir), device
        for name, module in {**task.modules, **task.helpers}.items():
            module.to(device)
            if name not in task.trainable:
                module.eval().requires_grad_(False)
        params = [p for name in task.trainable for p in task.modules[name].parameters() if p.requires_grad]
        if not params:
            raise SwintormerError("nothing to train: the trainable components have no parameters that require gradients")
        self.params = params
        self.optimizer = build_optimizer(params, config.lr, config.weight_decay, config.betas)
        self.ema = {name: EMA(task.modules[name], config.ema_decay) for name in task.trainable} if config.ema_decay > 0 else {}
        self.amp_dtype = _amp_dtype(config.amp, device)
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.step = 0

    def resume(self, path: str | Path) -> None:
        """Continue from a checkpoint written by this trainer (weights, EMA, optimiser, RNG, step)."""
        self.step, saved = load_training_state(path, self.task, self.ema, self.optimizer, self.scaler)
        current = dataclasses.asdict(self.config)
        current.pop("workers")  # how batches are prepared does not change them
        changed = {k: (saved.get(k), v) for k, v in current.items() if k in saved and saved[k] != (list(v) if isinstance(v, tuple) else v)}
        if changed:
            log.warning("resuming with settings that differ from the checkpoint's (saved, now): %s", changed)

    def batch(self, step: int, source: PairSource | None = None) -> Batch:
        """The batch of ``step``: pairs ``step * batch`` onwards of ``source`` (default: the training source)."""
        return self._to_device(StepBatches(source or self.source, self.config.batch, step, step + 1)[0])

    def _to_device(self, batch: Batch) -> Batch:
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def batches(self, end: int) -> Iterator[Batch]:
        """The batches of steps ``self.step .. end - 1`` in order, on the device (``config.workers`` processes ahead)."""
        steps = StepBatches(self.source, self.config.batch, self.step, end)
        if self.config.workers <= 0:
            return (self._to_device(steps[i]) for i in range(len(steps)))
        loader = torch.utils.data.DataLoader(
            steps, batch_size=None, shuffle=False, num_workers=self.config.workers, prefetch_factor=4,
            pin_memory=self.device.type == "cuda", worker_init_fn=_quiet_worker,
            multiprocessing_context="spawn",  # forked workers hang in OpenCV/OpenMP pools the parent started
        )
        return (self._to_device(b) for b in loader)

    def _modules(self, averaged: bool) -> dict[str, torch.nn.Module]:
        modules = {**self.task.modules, **self.task.helpers}
        if averaged:
            modules.update({name: e.module for name, e in self.ema.items()})
        return modules

    def train_step(self, batch: Batch) -> tuple[float, dict[str, float]]:
        """One optimisation step; returns the loss and the metrics (with ``grad_norm``)."""
        for name in self.task.trainable:
            self.task.modules[name].train()
        autocast = torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype else contextlib.nullcontext()
        with autocast:
            loss, metrics = self.task.loss_fn(self._modules(averaged=False), batch)
        if not torch.isfinite(loss):
            raise SwintormerError(f"the loss became {float(loss)} at step {self.step + 1}; lower --lr or keep --clip-grad on")
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        limit = self.config.clip_grad if self.config.clip_grad else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, limit))
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        for name, e in self.ema.items():
            e.update(self.task.modules[name])
        return float(loss.detach()), {**metrics, "grad_norm": grad_norm}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean loss and metrics of the (EMA) model on the first ``val_batches`` batches of the validation source."""
        if self.val_source is None:
            return {}
        modules = self._modules(averaged=True)
        for module in modules.values():
            module.eval()
        totals: dict[str, float] = {}
        for i in range(self.config.val_batches):
            loss, metrics = self.task.loss_fn(modules, self.batch(i, self.val_source))
            for key, value in {"loss": float(loss), **metrics}.items():
                totals[key] = totals.get(key, 0.0) + value / self.config.val_batches
        return totals

    def save(self, name: str = "last.safetensors") -> Path:
        """Write the resumable checkpoint ``out_dir/name``."""
        return save_training_state(self.out_dir / name, self.task, self.ema, self.optimizer, self.step, self.config, self.scaler)

    def export(self, name: str = "model.safetensors") -> Path:
        """Write the (EMA) weights alone: the checkpoint inference loads."""
        from swintormer.checkpoint import save_checkpoint

        components = {n: self.ema[n].module if n in self.ema else m for n, m in self.task.modules.items()}
        return save_checkpoint(self.out_dir / name, components, self.task.metadata)

    def fit(self, stop_at: int | None = None, time_limit: float | None = None, progress: bool | None = None) -> TrainResult:
        """Train until ``config.steps`` (or step ``stop_at``, or ``time_limit`` seconds); checkpoint and log on the way."""
        cfg, start = self.config, time.perf_counter()
        end = min(cfg.steps, stop_at if stop_at is not None else cfg.steps)
        metrics_log = MetricsLog(self.out_dir, resume_step=self.step)
        window: list[tuple[float, dict[str, float]]] = []
        last_loss, val, tick = float("nan"), {}, time.perf_counter()
        batches = self.batches(end)
        try:
            with Progress(cfg.steps, "training", "steps", progress, initial=self.step, leave=True) as bar:
                for batch in batches:
                    lr = warmup_cosine_lr(self.step, cfg.steps, cfg.lr, cfg.warmup, cfg.min_lr)
                    for group in self.optimizer.param_groups:
                        group["lr"] = lr
                    last_loss, metrics = self.train_step(batch)
                    self.step += 1
                    window.append((last_loss, metrics))
                    bar.set_postfix(loss=f"{last_loss:.4f}", lr=f"{lr:.2e}")
                    bar.update(1)
                    if self.step % cfg.log_every == 0 or self.step == end:
                        now = time.perf_counter()
                        row = {"loss": sum(w[0] for w in window) / len(window), "lr": lr, "it_per_s": len(window) / (now - tick)}
                        row.update({k: sum(w[1][k] for w in window) / len(window) for k in window[0][1]})
                        metrics_log.write("train", self.step, row)
                        window, tick = [], now
                    if cfg.val_every and self.step % cfg.val_every == 0:
                        val = self.validate()
                        metrics_log.write("val", self.step, val)
                        log.info("step %d: validation %s", self.step, ", ".join(f"{k} {v:.4g}" for k, v in val.items()))
                    if cfg.save_every and self.step % cfg.save_every == 0:
                        self.save()
                    if time_limit is not None and time.perf_counter() - start > time_limit:
                        log.info("time limit reached at step %d; resume with --resume", self.step)
                        break
        finally:
            batches.close()  # stops the data-loader workers
            metrics_log.close()
        checkpoint, model = self.save(), self.export()
        return TrainResult(self.step, self.step >= cfg.steps, time.perf_counter() - start, last_loss, checkpoint, model, val)
