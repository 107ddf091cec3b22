"""Checkpoint files: upstream state dicts read safely, and our own safetensors format.

This is the file-format layer; :meth:`swintormer.model.DeblurModel.load` is the loader every
entry point calls, on top of it.

Upstream (BasicSR) files are ``torch.save({"params": state_dict})``, sometimes with
``"params_ema"``; plain state dicts and ``.safetensors`` files are accepted too. Pickles are
loaded with ``weights_only=True`` so a file from the internet cannot run code.

Our format is one ``.safetensors`` file holding one or more components (``restorer``, later
``encoder`` and ``denoiser``), tensors keyed ``<component>.<param>``, and a JSON header entry per
component with its config, so a checkpoint alone rebuilds its model.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from swintormer.errors import SwintormerError
from swintormer.registry import build_from_config, config_class

__all__ = [
    "FORMAT",
    "Checkpoint",
    "is_our_format",
    "load_checkpoint",
    "load_state_dict_into",
    "read_state_dict",
    "save_checkpoint",
]

log = logging.getLogger(__name__)

FORMAT = "swintormer-rt/1"

def _read_file(path: Path) -> Any:
    if not path.is_file():
        raise SwintormerError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise SwintormerError(f"{path} is not a readable .safetensors file ({exc})") from None
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unpickling failed"
        raise SwintormerError(
            f"{path} is not a plain-tensor PyTorch checkpoint, or it is damaged ({first}); "
            "only files of tensors are loaded, never arbitrary pickled objects"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise SwintormerError(f"{path} could not be read as a PyTorch or safetensors checkpoint ({exc})") from None


def read_state_dict(path: str | Path, param_key: str = "auto") -> dict[str, torch.Tensor]:
    """The state dict inside an upstream file.

    ``param_key="auto"`` takes ``params_ema`` when present (BasicSR's weights for evaluation),
    else ``params``, else ``state_dict``, else the file itself. A ``module.`` prefix left by
    DataParallel is removed.
    """
    path = Path(path)
    obj = _read_file(path)
    if not isinstance(obj, dict):
        raise SwintormerError(f"{path} holds a {type(obj).__name__}, not a state dict")
    if param_key == "auto":
        key = next((k for k in ("params_ema", "params", "state_dict") if isinstance(obj.get(k), dict)), None)
    else:
        if param_key not in obj:
            raise SwintormerError(f"{path} has no {param_key!r} entry; it has: {sorted(obj)[:10]}")
        key = param_key
    if key is not None:
        log.info("using %r weights from %s", key, path)
        obj = obj[key]
    state = {k.removeprefix("module."): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise SwintormerError(f"{path} contains no tensors")
    return state


def _listing(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... and {len(keys) - limit} more" if len(keys) > limit else "")


def _check_fit(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor], source: str) -> None:
    """Raise one readable error listing missing, unexpected and mis-shaped keys (shapes only: ``own``
    may live on the meta device)."""
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [
        f"{k} (checkpoint {list(state[k].shape)} vs model {list(own[k].shape)})"
        for k in sorted(set(own) & set(state))
        if state[k].shape != own[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys: {_listing(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys: {_listing(unexpected)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches: {_listing(mismatched, 4)}")
    if problems:
        raise SwintormerError(
            f"{source} does not fit this model ({'; '.join(problems)}); "
            "check that the model/arch and config match the checkpoint"
        )


def load_state_dict_into(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> nn.Module:
    """Strict load that raises one readable error listing missing, unexpected and mis-shaped keys."""
    own = module.state_dict()
    _check_fit(own, state, source)
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)
    return module


def save_checkpoint(
    path: str | Path,
    components: dict[str, nn.Module],
    metadata: dict[str, Any] | None = None,
    extra_tensors: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write ``components`` (each with a dataclass ``.config``) to one ``.safetensors`` file.

    ``extra_tensors`` (e.g. the optimiser state of a training checkpoint) are stored under their
    own keys, which must not start with a component name; :func:`load_checkpoint` returns them
    in ``Checkpoint.extras``. The file is written to a temporary name and then renamed, so an
    interrupted write never leaves a damaged checkpoint behind.
    """
    from safetensors.torch import save_file

    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    for key, value in (extra_tensors or {}).items():
        if key.split(".", 1)[0] in components:
            raise ValueError(f"extra tensor {key!r} collides with component {key.split('.', 1)[0]!r}")
        tensors[key] = value.detach().cpu().contiguous()
    header: dict[str, str] = {"format": FORMAT}
    for name, module in components.items():
        cfg = module.config
        header[f"{name}.config_type"] = type(cfg).__name__
        header[f"{name}.config"] = json.dumps(dataclasses.asdict(cfg), sort_keys=True)
        for key, value in module.state_dict().items():
            tensors[f"{name}.{key}"] = value.detach().cpu().contiguous()
    for key, value in (metadata or {}).items():
        header[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    save_file(tensors, str(partial), metadata=header)
    partial.replace(path)
    return path


@dataclasses.dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns: modules by component name and the header."""

    components: dict[str, nn.Module]
    metadata: dict[str, str]
    path: Path
    #: tensors that belong to no component (training state), by key
    extras: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)

    @property
    def restorer(self) -> nn.Module:
        return self.components["restorer"]


#: More parameters than any model of these families has (swintormer-dpdd: 25M, ldm-bsr: 114M):
#: a header naming a bigger config is refused before anything is allocated.
MAX_PARAMETERS = 2_000_000_000


def _config_from_header(header: dict[str, str], name: str, path: Path) -> Any:
    cls = config_class(header.get(f"{name}.config_type", ""))
    try:
        return cls.from_dict(json.loads(header[f"{name}.config"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise SwintormerError(f"{path} [{name}]: its config is not valid ({type(exc).__name__}: {exc})") from None


def _build_checked(cfg: Any, state: dict[str, torch.Tensor], source: str) -> nn.Module:
    """The module for ``cfg`` loaded with ``state``, after checking on the meta device (no memory)
    that the config is plausible and that the tensors fit it."""
    try:
        with torch.device("meta"):
            skeleton = build_from_config(cfg)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise SwintormerError(f"{source}: its config cannot build a model ({exc})") from None
    count = sum(p.numel() for p in skeleton.parameters())
    if count > MAX_PARAMETERS:
        raise SwintormerError(f"{source}: its config describes {count:,} parameters, which no model of these families "
                              "has; the file is damaged or not a Swintormer-RT checkpoint")
    _check_fit(skeleton.state_dict(), state, source)
    return load_state_dict_into(build_from_config(cfg), state, source)


def is_our_format(path: str | Path) -> bool:
    """Whether ``path`` is a ``.safetensors`` file of ours (a config in its header)."""
    from safetensors import safe_open

    if Path(path).suffix != ".safetensors":
        return False
    try:
        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get("format") == FORMAT
    except Exception:  # unreadable: the upstream reader raises its own clear error
        return False


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Rebuild every component of one of our ``.safetensors`` checkpoints (eval mode, CPU)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise SwintormerError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except Exception as exc:  # safetensors raises several types for damaged files
        raise SwintormerError(
            f"{path} is not a readable .safetensors checkpoint ({exc}); "
            "upstream .pth files are converted with `swintormer convert`"
        ) from None
    if header.get("format") != FORMAT:
        raise SwintormerError(
            f"{path} is a .safetensors file but not a Swintormer-RT checkpoint (no config inside); "
            "convert upstream weights with `swintormer convert`"
        )
    state = _read_file(path)
    names = sorted({k.split(".", 1)[0] for k in header if k.endswith(".config_type")})
    components = {}
    for name in names:
        cfg = _config_from_header(header, name, path)
        prefix = f"{name}."
        part = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        components[name] = _build_checked(cfg, part, f"{path} [{name}]").eval()
    extras = {k: v for k, v in state.items() if k.split(".", 1)[0] not in components}
    return Checkpoint(components=components, metadata=header, path=path, extras=extras)
