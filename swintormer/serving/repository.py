"""Generate the Triton model repository: the ensembles, the pipeline and the network models.

One ensemble per accepted image dtype (``deblur_uint8``, ``deblur_uint16``, ``deblur_fp32``),
each a single call of ``pipeline``: a python (BLS) model that validates the image and streams its
tiles, one batch at a time, through the network models ``encoder``/``denoiser`` (the prior) and
``restorer`` into a band merged in place (:func:`swintormer.serving.steps.restore_image`). The
networks batch the tiles of concurrent requests dynamically and warm up when they load
(``model_warmup``). Flavour ``cpu``: the networks are python-backend models running ONNX
Runtime (what the bundled server runs); ``gpu``: ``tensorrt_plan`` models on ``KIND_GPU`` with
the engines' profiles, the pipeline exchanging GPU tensors by DLPack. Every tensor name and shape
comes from the export specs.
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
from swintormer.serving.config import EnsembleStep, ModelConfig, TensorConfig, Warmup
from swintormer.serving.dtypes import IMAGE_DTYPES, ensemble_name
from swintormer.serving.steps import ServingLimits
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
    #: instances of the pipeline model: requests deblurred at once (their tiles batch together)
    pipelines: int = 2
    #: the cpu flavour's graph runtime (onnxruntime or openvino), its precision and threads per instance
    runtime: str = "onnxruntime"
    run_precision: str = "fp32"
    threads: int = 0

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


def warmup_batches(max_batch: int) -> list[int]:
    """Batch sizes a model is warmed at: every one the pipeline can send (a full batch and any
    remainder), largest first; above 16 the powers of two and the largest."""
    if max_batch <= 16:
        return list(range(max_batch, 0, -1))
    return sorted({max_batch, *(2**i for i in range(max_batch.bit_length()) if 2**i <= max_batch)}, reverse=True)


def _warmup(spec: ExportSpec) -> tuple[Warmup, ...]:
    """Random inputs at every batch size the pipeline sends, so no shape is new to the first request
    (ONNX Runtime plans memory per shape; TensorRT picks tactics per profile)."""
    sizes = {k: v[1] for k, v in spec.dim_ranges.items()}
    inputs = {}
    for t in spec.inputs:
        entry = _batched(t)
        dims = tuple(sizes[d] if isinstance(d, str) else d for d in t.shape[1:]) or (1,)
        inputs[t.name] = (entry.dtype, dims)
    return tuple(Warmup(f"{spec.component}-batch{b}", b, inputs) for b in warmup_batches(spec.max_batch))


def _network_config(plan: RepositoryPlan, spec: ExportSpec) -> ModelConfig:
    common = dict(
        name=spec.component, inputs=tuple(map(_batched, spec.inputs)), outputs=tuple(map(_batched, spec.outputs)),
        max_batch_size=spec.max_batch, dynamic_batching=True, count=plan.instances, warmup=_warmup(spec),
    )
    if plan.flavour == "gpu":
        return ModelConfig(platform="tensorrt_plan", kind="KIND_GPU", **common)
    params = {"artifact": "model.onnx", "runtime": plan.runtime, "precision": plan.run_precision, "threads": str(plan.threads)}
    return ModelConfig(backend="python", kind="KIND_CPU", parameters=params, **common)


def _pipeline_config(plan: RepositoryPlan) -> ModelConfig:
    """The BLS model every ensemble calls: validation, streamed tiles through the networks, the merge."""
    device = "cuda" if plan.flavour == "gpu" else "cpu"
    params = {"device": device, "limits": plan.limits.to_json()}
    if plan.has_prior:
        params.update(prior=json.dumps(asdict(plan.prior or PriorSettings())),
                      scheduler=json.dumps(asdict(plan.scheduler or SchedulerConfig())))
    images = tuple(TensorConfig(f"IMAGE_{d}", t.name, (-1, -1, -1), optional=True) for d, t in IMAGE_DTYPES.items())
    outputs = tuple(TensorConfig(f"OUTPUT_{d}", t.name, (-1, -1, -1)) for d, t in IMAGE_DTYPES.items())
    return ModelConfig("pipeline", images + (TensorConfig("LAYOUT", "bytes", (1,), optional=True),), outputs,
                       backend="python", parameters=params, count=plan.pipelines)


def _ensemble(plan: RepositoryPlan, dtype_name: str) -> ModelConfig:
    np_name = IMAGE_DTYPES[dtype_name].name
    step = EnsembleStep("pipeline", {f"IMAGE_{dtype_name}": "IMAGE", "LAYOUT": "LAYOUT"}, {f"OUTPUT_{dtype_name}": "OUTPUT"})
    return ModelConfig(
        ensemble_name(dtype_name),
        (TensorConfig("IMAGE", np_name, (-1, -1, -1)), TensorConfig("LAYOUT", "bytes", (1,), optional=True)),
        (TensorConfig("OUTPUT", np_name, (-1, -1, -1)),),
        platform="ensemble", steps=(step,),
    )


def model_configs(plan: RepositoryPlan) -> list[ModelConfig]:
    """Every model of the repository, networks first."""
    networks = [_network_config(plan, plan.specs[c]) for c in ("encoder", "denoiser", "restorer") if c in plan.specs]
    return networks + [_pipeline_config(plan)] + [_ensemble(plan, d) for d in IMAGE_DTYPES]


_TEMPLATE_FOR = {"pipeline": "pipeline.py"}


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
