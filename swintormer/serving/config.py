"""Triton model configs as dataclasses, rendered to ``config.pbtxt`` through Triton's own protobuf.

``to_proto`` builds a ``model_config_pb2.ModelConfig`` (the schema shipped in tritonclient), so
a field Triton does not know fails at generation time, and ``parse_config`` reads a written file
back through the same schema (what the validation tests use).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from swintormer.serving.dtypes import config_type

__all__ = ["EnsembleStep", "ModelConfig", "TensorConfig", "Warmup", "parse_config"]


def _pb():
    from tritonclient.grpc import model_config_pb2

    return model_config_pb2


@dataclass(frozen=True)
class TensorConfig:
    """One input or output; ``dims`` exclude the batch axis when the model batches."""

    name: str
    dtype: str
    dims: tuple[int, ...]
    optional: bool = False
    reshape: tuple[int, ...] | None = None


@dataclass(frozen=True)
class EnsembleStep:
    model: str
    inputs: dict[str, str]  # the step model's input name -> ensemble tensor name
    outputs: dict[str, str]  # the step model's output name -> ensemble tensor name


@dataclass(frozen=True)
class Warmup:
    """One ``model_warmup`` sample: the model runs it when it loads, so the first request finds its
    sessions, arenas and kernels ready. ``inputs`` maps each input to its ``(dtype, dims)``."""

    name: str
    batch_size: int
    inputs: dict[str, tuple[str, tuple[int, ...]]]


@dataclass(frozen=True)
class ModelConfig:
    name: str
    inputs: tuple[TensorConfig, ...]
    outputs: tuple[TensorConfig, ...]
    backend: str = ""  # "python"
    platform: str = ""  # "tensorrt_plan" or "ensemble"
    max_batch_size: int = 0
    kind: str = "KIND_CPU"
    count: int = 1
    dynamic_batching: bool = False
    max_queue_delay_us: int = 2000
    parameters: dict[str, str] = field(default_factory=dict)
    steps: tuple[EnsembleStep, ...] = ()
    warmup: tuple[Warmup, ...] = ()

    def to_proto(self):
        pb = _pb()
        cfg = pb.ModelConfig(name=self.name, max_batch_size=self.max_batch_size)
        if self.backend:
            cfg.backend = self.backend
        if self.platform:
            cfg.platform = self.platform
        for tensors, target, cls in ((self.inputs, cfg.input, pb.ModelInput), (self.outputs, cfg.output, pb.ModelOutput)):
            for t in tensors:
                entry = cls(name=t.name, data_type=pb.DataType.Value(config_type(t.dtype)), dims=list(t.dims))
                if t.optional:
                    entry.optional = True
                if t.reshape is not None:
                    entry.reshape.shape.extend(t.reshape)
                    entry.reshape.SetInParent()
                target.append(entry)
        if self.platform != "ensemble":
            kind = pb.ModelInstanceGroup.Kind.Value(self.kind)
            cfg.instance_group.append(pb.ModelInstanceGroup(kind=kind, count=self.count))
        if self.dynamic_batching:
            cfg.dynamic_batching.max_queue_delay_microseconds = self.max_queue_delay_us
        for key, value in self.parameters.items():
            cfg.parameters[key].string_value = str(value)
        for w in self.warmup:
            sample = cfg.model_warmup.add(name=w.name, batch_size=w.batch_size)
            for name, (dtype, dims) in w.inputs.items():
                sample.inputs[name].data_type = pb.DataType.Value(config_type(dtype))
                sample.inputs[name].dims.extend(dims)
                sample.inputs[name].random_data = True
        for step in self.steps:
            s = cfg.ensemble_scheduling.step.add(model_name=step.model, model_version=-1)
            s.input_map.update(step.inputs)
            s.output_map.update(step.outputs)
        return cfg

    def to_pbtxt(self) -> str:
        from google.protobuf import text_format

        return text_format.MessageToString(self.to_proto())


def parse_config(path: str | Path):
    """Parse a ``config.pbtxt`` with Triton's ``ModelConfig`` schema (raises on unknown fields)."""
    from google.protobuf import text_format

    return text_format.Parse(Path(path).read_text(), _pb().ModelConfig())
