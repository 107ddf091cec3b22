"""Generate the Triton model repository: the ensembles, their steps and the network models.

One ensemble per accepted image dtype (``deblur_uint8``, ``deblur_uint16``, ``deblur_fp32``),
each ``preprocess -> [prior] -> restore -> postprocess``. ``prior`` and ``restore`` are BLS loops
over the network models ``encoder``/``denoiser``/``restorer``, which batch dynamically across
requests. Flavour ``cpu``: the networks are python-backend models running ONNX Runtime (what the
bundled server runs); ``gpu``: ``tensorrt_plan`` models on ``KIND_GPU`` with the engines'
profiles, the python steps exchanging GPU tensors by DLPack. Every tensor name and shape comes
from the export specs.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from swintormer.diffusion.config import SchedulerConfig
from swintormer.diffusion.prior import PriorSettings
from swintormer.errors import SwintormerError
from swintormer.export.specs import BATCH, ExportSpec
from swintormer.serving.config import EnsembleStep, ModelConfig, TensorConfig
from swintormer.serving.dtypes import IMAGE_DTYPES
from swintormer.serving.steps import Geometry, ServingLimits
from swintormer.tiling import TilingConfig, check_tile

__all__ = ["MANIFEST", "RepositoryPlan", "check_served_tiling", "ensemble_name", "model_configs", "write_repository"]

TEMPLATES = Path(__file__).resolve().parent / "triton_models"
MANIFEST = "swintormer-repository.json"


def check_served_tiling(restorer: ExportSpec, tiling: TilingConfig) -> None:
    """The server's tiles must be what the restorer graph takes (a size in its range, if dynamic)."""
    tile, side = tiling.tile, restorer.inputs[0].shape[2]
    if isinstance(side, int):
        if tile != side:
            raise SwintormerError(f"the server would cut {tile}-pixel tiles, but the restorer graph takes {side}x{side}; "
                                  f"export the graphs with --tile {tile}")
        return
    lo, _, hi = restorer.dim_ranges[side]
    if not lo <= tile <= hi:
        raise SwintormerError(f"the server's tile {tile} is outside the restorer graph's range {lo}..{hi}")
    check_tile(tile, lo)


def ensemble_name(dtype_name: str) -> str:
    """``"UINT8" -> "deblur_uint8"``: the model a client calls for images of that dtype."""
    return f"deblur_{dtype_name.lower()}"


@dataclass(frozen=True)
class RepositoryPlan:
    """What to write: specs and artifacts (``.onnx`` for cpu, ``.plan`` for gpu) per network."""

    flavour: str
    specs: dict[str, ExportSpec]
    artifacts: dict[str, Path]
    limits: ServingLimits
    prior: PriorSettings | None = None
    scheduler: SchedulerConfig | None = None
    model_name: str = ""
    instances: int = 1

    def __post_init__(self) -> None:
        if self.flavour not in ("cpu", "gpu"):
            raise SwintormerError(f"flavour must be 'cpu' or 'gpu', got {self.flavour!r}")
        if set(self.specs) != set(self.artifacts):
            raise SwintormerError(f"artifacts {sorted(self.artifacts)} do not match specs {sorted(self.specs)}")
        check_served_tiling(self.specs["restorer"], self.limits.tiling)

    @property
    def has_prior(self) -> bool:
        return "denoiser" in self.specs


def _batched(t) -> TensorConfig:
    """A spec tensor as a batching model's config entry (batch axis dropped; rank-1 -> [1] + reshape)."""
    if t.shape[0] != BATCH:
        raise SwintormerError(f"{t.name}: the first axis must be the batch axis")
    dims = tuple(-1 if isinstance(d, str) else d for d in t.shape[1:])
    return TensorConfig(t.name, t.dtype, dims or (1,), reshape=() if not dims else None)


def _network_config(plan: RepositoryPlan, spec: ExportSpec) -> ModelConfig:
    common = dict(
        name=spec.component, inputs=tuple(map(_batched, spec.inputs)), outputs=tuple(map(_batched, spec.outputs)),
        max_batch_size=spec.max_batch, dynamic_batching=True, count=plan.instances,
    )
    if plan.flavour == "gpu":
        return ModelConfig(platform="tensorrt_plan", kind="KIND_GPU", **common)
    return ModelConfig(backend="python", kind="KIND_CPU", parameters={"artifact": "model.onnx"}, **common)


def _step_configs(plan: RepositoryPlan) -> list[ModelConfig]:
    r = plan.specs["restorer"]
    c, t = r.inputs[0].shape[1], r.inputs[0].shape[2]
    t = t if isinstance(t, int) else -1  # a dynamic-size restorer still gets the server's tiles
    tiles = TensorConfig("TILES", "float32", (-1, c, t, t))
    origins = TensorConfig("ORIGINS", "int32", (-1, 2))
    geometry = TensorConfig("GEOMETRY", "int64", (Geometry.SIZE,))
    restored = TensorConfig("RESTORED", "float32", (-1, r.outputs[0].shape[1], t, t))
    device = "cuda" if plan.flavour == "gpu" else "cpu"
    common = {"device": device, "max_batch": str(r.max_batch), "limits": plan.limits.to_json()}
    images = tuple(TensorConfig(f"IMAGE_{d}", t.name, (-1, -1, -1), optional=True) for d, t in IMAGE_DTYPES.items())
    outputs = tuple(TensorConfig(f"OUTPUT_{d}", t.name, (-1, -1, -1)) for d, t in IMAGE_DTYPES.items())
    configs = [
        ModelConfig("preprocess", images + (TensorConfig("LAYOUT", "bytes", (1,), optional=True),), (tiles, origins, geometry),
                    backend="python", parameters={"limits": plan.limits.to_json()}),
        ModelConfig("postprocess", (restored, geometry), outputs, backend="python",
                    parameters={"limits": plan.limits.to_json()}),
    ]
    restore_inputs = (tiles,)
    if plan.has_prior:
        p = plan.specs["restorer"].inputs[1]
        prior = TensorConfig("PRIOR", "float32", (-1, *p.shape[1:]))
        restore_inputs = (tiles, prior)
        params = {**common, "prior": json.dumps(asdict(plan.prior or PriorSettings())),
                  "scheduler": json.dumps(asdict(plan.scheduler or SchedulerConfig()))}
        configs.append(ModelConfig("prior", (tiles, origins), (prior,), backend="python", parameters=params))
    configs.append(ModelConfig("restore", restore_inputs, (restored,), backend="python", parameters=common))
    return configs


def _ensemble(plan: RepositoryPlan, dtype_name: str) -> ModelConfig:
    np_name = IMAGE_DTYPES[dtype_name].name
    pre_out = {"TILES": "tiles", "GEOMETRY": "geometry"} | ({"ORIGINS": "origins"} if plan.has_prior else {})
    steps = [EnsembleStep("preprocess", {f"IMAGE_{dtype_name}": "IMAGE", "LAYOUT": "LAYOUT"}, pre_out)]
    restore_in = {"TILES": "tiles"}
    if plan.has_prior:
        steps.append(EnsembleStep("prior", {"TILES": "tiles", "ORIGINS": "origins"}, {"PRIOR": "prior"}))
        restore_in["PRIOR"] = "prior"
    steps.append(EnsembleStep("restore", restore_in, {"RESTORED": "restored"}))
    steps.append(EnsembleStep("postprocess", {"RESTORED": "restored", "GEOMETRY": "geometry"}, {f"OUTPUT_{dtype_name}": "OUTPUT"}))
    return ModelConfig(
        ensemble_name(dtype_name),
        (TensorConfig("IMAGE", np_name, (-1, -1, -1)), TensorConfig("LAYOUT", "bytes", (1,), optional=True)),
        (TensorConfig("OUTPUT", np_name, (-1, -1, -1)),),
        platform="ensemble", steps=tuple(steps),
    )


def model_configs(plan: RepositoryPlan) -> list[ModelConfig]:
    """Every model of the repository, networks first."""
    networks = [_network_config(plan, plan.specs[c]) for c in ("encoder", "denoiser", "restorer") if c in plan.specs]
    return networks + _step_configs(plan) + [_ensemble(plan, d) for d in IMAGE_DTYPES]


_TEMPLATE_FOR = {"preprocess": "preprocess.py", "postprocess": "postprocess.py", "prior": "prior.py", "restore": "restore.py"}


def _place(src: Path, dst: Path) -> None:
    """Hard-link when possible (large graphs), else copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _write_model(root: Path, cfg: ModelConfig, plan: RepositoryPlan) -> None:
    tmp = root / f".{cfg.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    version = tmp / "1"
    version.mkdir(parents=True)
    (tmp / "config.pbtxt").write_text(cfg.to_pbtxt())
    if cfg.name in plan.artifacts:
        if plan.flavour == "gpu":
            _place(plan.artifacts[cfg.name], version / "model.plan")
        else:
            _place(plan.artifacts[cfg.name], version / "model.onnx")
            shutil.copyfile(TEMPLATES / "onnx_model.py", version / "model.py")
    elif cfg.name in _TEMPLATE_FOR:
        shutil.copyfile(TEMPLATES / _TEMPLATE_FOR[cfg.name], version / "model.py")
    final = root / cfg.name
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)


def write_repository(out_dir: str | Path, plan: RepositoryPlan) -> list[str]:
    """Write (or rewrite) the repository under ``out_dir``; returns the model names.

    Models a previous run generated that this one does not are removed; other files are kept.
    """
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    configs = model_configs(plan)
    names = [c.name for c in configs]
    manifest = root / MANIFEST
    if manifest.is_file():
        for stale in set(json.loads(manifest.read_text()).get("models", [])) - set(names):
            shutil.rmtree(root / stale, ignore_errors=True)
    for cfg in configs:
        _write_model(root, cfg, plan)
    info = {"models": names, "flavour": plan.flavour, "model": plan.model_name, "limits": json.loads(plan.limits.to_json())}
    manifest.write_text(json.dumps(info, indent=2) + "\n")
    return names
