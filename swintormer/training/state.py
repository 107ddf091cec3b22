"""Training checkpoints: our safetensors format plus the state that makes a run resume exactly.

The components are stored with their EMA weights (what inference wants), so a training
checkpoint is also a normal model checkpoint. Beside them, under ``train.*`` keys: the raw
weights of the trainable components (``train.raw.<component>.<param>``), the optimiser's tensors
(``train.opt.<param index>.<name>``) and the torch RNG states; the header entry ``train.state``
holds the step, the optimiser's hyper-parameters, the EMA update counts, the grad scaler and the
training config. The learning-rate schedule is a pure function of the step and the config.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import torch
from swintormer.checkpoint import load_checkpoint, load_state_dict_into, save_checkpoint
from swintormer.errors import SwintormerError
from swintormer.training.optim import EMA
from swintormer.training.tasks import TrainTask

__all__ = ["STATE_KEY", "load_training_state", "save_training_state"]

log = logging.getLogger(__name__)

STATE_KEY = "train.state"


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split the optimiser's state dict into tensors (by flat key) and JSON-able values."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entry in state["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"train.opt.{index}.{name}"] = value
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_state(extras: dict[str, torch.Tensor], saved: dict[str, Any]) -> dict[str, Any]:
    """Rebuild an optimiser state dict from :func:`_optimizer_tensors`' two halves."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in extras.items():
        if key.startswith("train.opt."):
            index, name = key[len("train.opt."):].split(".", 1)
            state.setdefault(int(index), {})[name] = value
    for key, value in saved["scalars"].items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in saved["param_groups"]]
    return {"state": state, "param_groups": groups}


def save_training_state(
    path: str | Path,
    task: TrainTask,
    ema: dict[str, EMA],
    optimizer: torch.optim.Optimizer,
    step: int,
    config: Any,
    scaler: torch.amp.GradScaler | None = None,
) -> Path:
    """Write a resumable checkpoint (EMA weights as the components) after ``step`` steps."""
    components = {name: ema[name].module if name in ema else module for name, module in task.modules.items()}
    extras: dict[str, torch.Tensor] = {}
    for name in task.trainable:
        extras.update({f"train.raw.{name}.{k}": v for k, v in task.modules[name].state_dict().items()})
    opt_tensors, opt_saved = _optimizer_tensors(optimizer)
    extras.update(opt_tensors)
    extras["train.rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        extras.update({f"train.rng.cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    state = {
        "step": step,
        "optimizer": opt_saved,
        "ema_updates": {name: e.updates for name, e in ema.items()},
        "scaler": scaler.state_dict() if scaler is not None else None,
        "config": dataclasses.asdict(config),
    }
    return save_checkpoint(path, components, {**task.metadata, STATE_KEY: state}, extra_tensors=extras)


def load_training_state(
    path: str | Path,
    task: TrainTask,
    ema: dict[str, EMA],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[int, dict[str, Any]]:
    """Restore weights, EMA, optimiser, scaler and RNG from :func:`save_training_state`; returns ``(step, config)``."""
    ckpt = load_checkpoint(path)
    if STATE_KEY not in ckpt.metadata:
        raise SwintormerError(f"{path} holds no training state (it is a model-only checkpoint); start from it with --init instead")
    state = json.loads(ckpt.metadata[STATE_KEY])
    for name, module in task.modules.items():
        if name not in ckpt.components or ckpt.components[name].config != module.config:
            raise SwintormerError(f"{path} was trained with a different {name} than this run's; resume with the same model")
        if name in task.trainable:
            prefix = f"train.raw.{name}."
            load_state_dict_into(module, {k[len(prefix):]: v for k, v in ckpt.extras.items() if k.startswith(prefix)}, f"{path} [raw {name}]")
            if name in ema:
                load_state_dict_into(ema[name].module, ckpt.components[name].state_dict(), f"{path} [{name}]")
                ema[name].updates = state["ema_updates"].get(name, 0)
        else:
            load_state_dict_into(module, ckpt.components[name].state_dict(), f"{path} [{name}]")
    optimizer.load_state_dict(_optimizer_state(ckpt.extras, state["optimizer"]))
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(ckpt.extras["train.rng.torch"])
    cuda = [ckpt.extras[k] for k in sorted(ckpt.extras) if k.startswith("train.rng.cuda")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    log.info("resumed from %s at step %d", path, state["step"])
    return int(state["step"]), state["config"]
